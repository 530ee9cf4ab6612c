-- Runs and their findings. A run row exists only once the whole run is committed: findings,
-- evidence and the row go in together or not at all (see store/__init__.py).
CREATE TABLE runs (
    id             TEXT PRIMARY KEY,          -- sortable: 20261122T050512Z-3f9a
    kind           TEXT NOT NULL,             -- assess, scan, scan-import, devices-audit, infra-plan, ...
    started_at     TEXT NOT NULL,             -- ISO 8601, UTC
    finished_at    TEXT NOT NULL,
    operator       TEXT NOT NULL,
    estate_dir     TEXT NOT NULL,
    estate_digest  TEXT NOT NULL,
    full_scope     INTEGER NOT NULL DEFAULT 0, -- 1: every check of its kind ran over the whole scope
    tool_versions  TEXT NOT NULL,             -- JSON object
    steps          TEXT NOT NULL              -- JSON list of {name, status, summary}
);

CREATE TABLE findings (
    run_id    TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    id        TEXT NOT NULL,                  -- stable across runs: hash of check, asset, key
    check_id  TEXT NOT NULL,
    asset     TEXT NOT NULL,
    key       TEXT NOT NULL,
    status    TEXT NOT NULL,
    severity  TEXT NOT NULL,
    source    TEXT NOT NULL,
    site      TEXT,
    data      TEXT NOT NULL,                  -- the whole Finding as JSON
    PRIMARY KEY (run_id, id)
);

CREATE INDEX findings_by_id ON findings (id, run_id);
CREATE INDEX findings_by_status ON findings (run_id, status, severity);
