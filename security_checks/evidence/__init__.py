"""Evidence for auditors: sealed, signed, chained bundles (bundle.py), their archive in S3 with Object
Lock or a read-only directory (archive.py), and the spool that holds bundles while S3 is away."""
