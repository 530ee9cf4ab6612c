-- Every object of every archived bundle, with the lock the archive itself reported when it was
-- read back after the push (never the date the tool asked for). `estate evidence audit-archive`
-- reads each one again later and records when, and what it found wrong, if anything.
CREATE TABLE evidence_objects (
    destination      TEXT NOT NULL,   -- as in evidence_pushes
    bundle           TEXT NOT NULL,
    key              TEXT NOT NULL,   -- S3 key, or the path under the directory archive
    sha256           TEXT NOT NULL,
    size             INTEGER NOT NULL,
    retain_until     TEXT,            -- ISO 8601, UTC, as read back from the archive; NULL for a directory
    mode             TEXT NOT NULL,   -- COMPLIANCE (S3), or read-only (directory archive)
    version_id       TEXT,            -- the S3 object version the lock is on
    pushed_at        TEXT NOT NULL,
    last_checked_at  TEXT,            -- the last audit-archive that read it
    last_problem     TEXT,            -- what that audit found wrong; NULL when all was well
    PRIMARY KEY (destination, key)
);

CREATE INDEX evidence_objects_by_bundle ON evidence_objects (destination, bundle);
