-- A shared (PostgreSQL) store holds the runs of several homes: operators' machines and site
-- scanners, each keeping its own runs' evidence. Each run records which home holds its evidence
-- (the home's identity, <home>/home.id), so a home checks and recovers only its own runs. In a
-- SQLite store, which lives inside its home, every run is the home's own: '' for those before this.
ALTER TABLE runs ADD COLUMN evidence_home TEXT NOT NULL DEFAULT '';
CREATE INDEX runs_by_evidence_home ON runs (evidence_home, id);
