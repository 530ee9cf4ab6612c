-- The PSN Remediation Action Plan: one item per failing finding id, kept across runs, with every
-- change recorded in rap_history (and the item as it was before, so an update made by a run that
-- never committed can be undone: see compliance/rap.py).
CREATE TABLE rap_items (
    finding_id       TEXT PRIMARY KEY,          -- the stable finding id (check, asset, key)
    check_id         TEXT NOT NULL,
    asset            TEXT NOT NULL,
    key              TEXT NOT NULL,
    title            TEXT NOT NULL,
    severity         TEXT NOT NULL,
    cvss_vector      TEXT,
    cvss_score       REAL,
    owner            TEXT NOT NULL,
    owner_source     TEXT NOT NULL,             -- where the owner came from (declared host, LOB, rule, default)
    action           TEXT NOT NULL,             -- the remediation text
    target_date      TEXT NOT NULL,             -- ISO date, from opened_on and the severity's timescale
    status           TEXT NOT NULL,             -- open, mitigated, accepted, closed
    acceptance       TEXT,                      -- JSON: justification, approved_by, approved_on, expires, reference
    opened_on        TEXT NOT NULL,             -- ISO date the item was (re)opened
    first_run        TEXT NOT NULL,
    last_seen_run    TEXT NOT NULL,
    retest_run       TEXT,                      -- the run whose result changed the status last
    retest_evidence  TEXT,                      -- JSON list of evidence paths in that run
    updated_at       TEXT NOT NULL
);
CREATE INDEX rap_items_by_status ON rap_items (status, severity);

CREATE TABLE rap_history (
    finding_id   TEXT NOT NULL,
    seq          INTEGER NOT NULL,              -- per item, 1, 2, 3...
    run_id       TEXT NOT NULL,
    at           TEXT NOT NULL,
    from_status  TEXT,                          -- NULL when the item was created
    to_status    TEXT NOT NULL,
    reason       TEXT NOT NULL,
    before       TEXT,                          -- JSON of the item before the change (NULL: created)
    PRIMARY KEY (finding_id, seq)
);
CREATE INDEX rap_history_by_run ON rap_history (run_id);

-- Runs whose findings updated the plan, in order; a run is applied once.
CREATE TABLE rap_runs (
    run_id      TEXT PRIMARY KEY,
    applied_at  TEXT NOT NULL,
    full_scope  INTEGER NOT NULL
);
