"""The findings store: all SQL of the product lives in this package (see core.py for the layout)."""

from .core import (
    MANIFEST,
    Commit,
    EvidenceFile,
    EvidenceMismatch,
    RunInfo,
    RunWriter,
    Store,
    default_home,
    now,
    operator_name,
    sha256_file,
)
from .db import StoreError

__all__ = ["MANIFEST", "Commit", "EvidenceFile", "EvidenceMismatch", "RunInfo", "RunWriter", "Store", "StoreError",
           "default_home", "now", "operator_name", "sha256_file"]
