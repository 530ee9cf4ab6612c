-- One runner for every command (security_checks/runner.py): a run records what it was and stores
-- its verdicts, its evidence index and its RAP transition in the same transaction as its findings.

ALTER TABLE runs ADD COLUMN job TEXT NOT NULL DEFAULT '';           -- the command: assess, scan import...
ALTER TABLE runs ADD COLUMN assessed_on TEXT NOT NULL DEFAULT '';   -- the date the verdicts were computed for
ALTER TABLE runs ADD COLUMN selection TEXT NOT NULL DEFAULT '{}';   -- JSON: --only/--skip/--check choices
ALTER TABLE runs ADD COLUMN checks_run TEXT NOT NULL DEFAULT '[]';  -- JSON: check ids whose steps ran
ALTER TABLE runs ADD COLUMN context TEXT NOT NULL DEFAULT '{}';     -- JSON: organisation, network, scope, waivers
ALTER TABLE runs ADD COLUMN rap_update TEXT NOT NULL DEFAULT '{}';  -- JSON: what this run did to the RAP

-- One per framework version per run. data: the FrameworkVerdict without its requirement rows.
CREATE TABLE verdicts (
    run_id     TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    framework  TEXT NOT NULL,
    version    TEXT NOT NULL,
    in_force   INTEGER NOT NULL,
    verdict    TEXT NOT NULL,
    data       TEXT NOT NULL,
    PRIMARY KEY (run_id, framework, version)
);

CREATE TABLE requirement_results (
    run_id     TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    framework  TEXT NOT NULL,
    version    TEXT NOT NULL,
    position   INTEGER NOT NULL,               -- display order: auto-fail first, then the catalogue's
    ref        TEXT NOT NULL,
    status     TEXT NOT NULL,
    data       TEXT NOT NULL,                  -- the RequirementRow as JSON
    PRIMARY KEY (run_id, framework, version, ref)
);

-- Every file of a run's evidence, hashed at commit: reports, bundles and verify read this, and a
-- finding may only cite a file listed here with the same SHA-256.
CREATE TABLE evidence_files (
    run_id     TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    path       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    sha256     TEXT NOT NULL,
    withheld   TEXT,                           -- why it is kept out of reports and bundles (secrets)
    PRIMARY KEY (run_id, path)
);

-- Run directories recovery moved aside instead of deleting (never committed, or unknown to the database).
CREATE TABLE quarantine (
    name       TEXT PRIMARY KEY,               -- the directory's name under quarantine/
    run_id     TEXT NOT NULL,
    reason     TEXT NOT NULL,
    moved_at   TEXT NOT NULL
);

-- Findings stored before evidence kinds existed rested on scans and audits, except the
-- configuration checks made on the estate YAML and the offline plan. (SQLite's JSON functions: a
-- PostgreSQL store starts at this version or later, so it has no such rows; see store/db.py.)
-- sqlite only {
UPDATE findings SET data = json_set(data, '$.evidence_kind',
    CASE WHEN check_id LIKE 'ce.%' OR check_id LIKE 'infra.policy.%' OR check_id = 'patch.unsupported_os'
         THEN 'declared' ELSE 'observed' END)
WHERE json_extract(data, '$.evidence_kind') IS NULL;
UPDATE findings SET data = json_set(json_remove(data, '$.details.accepted'), '$.acceptance',
                                    json_extract(data, '$.details.accepted'))
WHERE json_extract(data, '$.details.accepted') IS NOT NULL;
-- }
