"""Reports for a run: the static HTML site, the board PDF and the machine outputs, all in one directory.

    <out>/index.html            dashboard, trends, delta, findings with filters and remediation
    <out>/controls.html         per-requirement control matrix with drill-down, manual items, attestations
    <out>/audit.html            the run, scope statement, waivers, evidence index (SHA-256), skipped steps
    <out>/board-report.pdf      A4 board report (summary, top risks, matrix, remediation plan)
    <out>/machine/              findings.json, findings.sarif, oscal-*.json, remediation-plan.csv/.xlsx
    <out>/evidence/             the run's evidence files (secrets withheld), linked relatively

The directory is written beside its destination and swapped in whole, so a reader (or a file share)
never sees half a report.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import date
from pathlib import Path

from ..model.loader import LoadedEstate
from ..store import Store
from .context import ReportData, build


def write_reports(store: Store, run_id: str, loaded: LoadedEstate | None, out_dir: Path,
                  today: date | None = None, pdf: bool = True) -> dict[str, Path]:
    data = build(store, run_id, loaded, today)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        written = render_into(data, store.evidence_dir(data.run.id), tmp, pdf=pdf)
        _swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {k: out_dir / p.relative_to(tmp) for k, p in written.items()}


def render_into(data: ReportData, evidence_root: Path, out: Path, pdf: bool = True) -> dict[str, Path]:
    from .html import write_site
    from .machine import write_machine
    from .pdf import write_pdf

    written = write_site(data, evidence_root, out)
    written.update(write_machine(data, out / "machine"))
    if pdf:
        written["pdf"] = write_pdf(data, out / "board-report.pdf")
    return written


def _swap_in(new: Path, dest: Path) -> None:
    os.chmod(new, 0o755)  # noqa: S103 (mkdtemp makes 0700; a report on a share must be readable)
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.rename(dest, old)
        os.rename(new, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(new, dest)


__all__ = ["ReportData", "build", "render_into", "write_reports"]
