"""Running the identity step on exports the tests write, against the demo council's estate model."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from security_checks.findings import EvidenceRef, Finding
from security_checks.identity.step import identity_step
from security_checks.model.loader import LoadedEstate, load_estate
from security_checks.model.schema import BreakGlassAccount
from security_checks.step import StepContext, StepResult
from tests.identity.graph import BREAK_GLASS, good_export

DEMO = Path(__file__).resolve().parents[2] / "inventory" / "demo"


class Sink:
    """The run's evidence directory, as a step sees it (what it writes is kept for the test to read)."""

    id = "test"

    def __init__(self, root: Path):
        self.evidence_dir = root
        self.written: dict[str, bytes] = {}

    def write_evidence(self, relpath: str, data: bytes | str, description: str = "") -> EvidenceRef:
        self.written[relpath] = data.encode() if isinstance(data, str) else data
        return EvidenceRef(path=relpath, description=description)

    def copy_evidence(self, src: Path, relpath: str, description: str = "") -> EvidenceRef:
        raise AssertionError("the identity step keeps the bytes it judged, never a second read")


@pytest.fixture(scope="session")
def demo() -> LoadedEstate:
    return load_estate(DEMO)


Run = Callable[..., tuple[StepResult, dict[tuple[str, str, str], Finding]]]


@pytest.fixture
def run_identity(demo: LoadedEstate, tmp_path: Path) -> Run:
    """identity_step on an export (good_export's keyword arguments), with the estate's declarations chosen."""
    calls = iter(range(1000))

    def run(*, export: Path | None = None, break_glass: list[dict[str, str]] | None = None,
            lob_edits: dict[str, dict[str, Any]] | None = None, declared: str | None = None,
            no_export: bool = False, **export_args: Any) -> tuple[StepResult, dict[tuple[str, str, str], Finding]]:
        estate = demo.estate.model_copy(deep=True)
        estate.azure.break_glass_accounts = [BreakGlassAccount(**b) for b in
                                             (BREAK_GLASS if break_glass is None else break_glass)]
        estate.azure.entra_export = declared
        for lob in estate.lob_systems:
            for k, v in (lob_edits or {}).get(lob.name, {}).items():
                setattr(lob, k, v)
        loaded = dataclasses.replace(demo, estate=estate)
        options: dict[str, Any] = {}
        if declared is None and not no_export:
            options["entra_export"] = export if export is not None else good_export(tmp_path / f"export-{next(calls)}",
                                                                                     **export_args)
        sink = Sink(tmp_path / "evidence")
        ctx = StepContext(loaded=loaded, run=sink, home=tmp_path / "home", is_root=False,
                          today=date(2026, 11, 22), options=options)
        result = identity_step(ctx)
        result.data["evidence"] = sink.written
        return result, {(f.check_id, f.asset, f.key): f for f in result.findings}

    return run
