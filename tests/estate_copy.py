"""Copies of the demo estate for tests that change it (shared by the infra test areas)."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "inventory" / "demo"


def copy_demo(dest: Path, edits: dict[str, list[tuple[str, str]]] | None = None) -> Path:
    """A copy of the demo estate with text edits per file (each `old` must occur exactly once)."""
    shutil.copytree(DEMO, dest)
    for name, pairs in (edits or {}).items():
        path = dest / name
        text = path.read_text()
        for old, new in pairs:
            assert text.count(old) == 1, f"{name}: {old!r} occurs {text.count(old)} times"
            text = text.replace(old, new)
        path.write_text(text)
    return dest
