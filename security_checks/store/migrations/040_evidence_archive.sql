-- Bundles pushed to an archive (S3 with Object Lock, or a read-only directory). A row means every
-- object of the bundle is stored and its lock confirmed, so a later push skips it: nothing is
-- pushed twice. The checksum is that of the bundle's SHA256SUMS: a different bundle under the
-- same name is a conflict, never an overwrite.
CREATE TABLE evidence_pushes (
    destination   TEXT NOT NULL,   -- s3://bucket/prefix@endpoint or dir:/path
    bundle        TEXT NOT NULL,   -- the bundle's directory name (its run id)
    sums_sha256   TEXT NOT NULL,
    objects       INTEGER NOT NULL,
    retain_until  TEXT,            -- ISO 8601, UTC; NULL for a directory archive
    pushed_at     TEXT NOT NULL,
    PRIMARY KEY (destination, bundle)
);
