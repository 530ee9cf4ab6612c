"""Reports for a run: the static HTML site, the board PDF and the machine outputs, all in one directory.

    <out>/index.html            dashboard, trends, delta, findings with filters and remediation
    <out>/controls.html         per-requirement control matrix with drill-down, manual items, attestations
    <out>/audit.html            the run, scope statement, waivers, evidence index (SHA-256), skipped steps
    <out>/board-report.pdf      A4 board report (summary, top risks, matrix, remediation plan)
    <out>/machine/              findings.json, findings.sarif, oscal-*.json, remediation-plan.csv/.xlsx
    <out>/evidence/             the run's evidence files (secrets withheld), linked relatively

Everything comes from the store (security_checks/report/context.py). The directory is written
beside its destination and swapped in with one atomic exchange (renameat2 RENAME_EXCHANGE), so a
reader, a file share or a crash never sees half a report or no report at all; what a killed write
leaves behind is removed by the next one.
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
import shutil
from pathlib import Path

from ..fsutil import SHARED_DIR, SHARED_FILE, fsync_dir
from ..procs import pid_alive
from ..store import Store
from ..testhooks import pause_at
from .context import ReportData, build

RENAME_EXCHANGE = 2   # linux/fs.h
AT_FDCWD = -100


def write_reports(store: Store, run_id: str, out_dir: Path, pdf: bool = True) -> dict[str, Path]:
    data = build(store, run_id)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")
    os.mkdir(tmp, 0o700)
    try:
        written = render_into(data, store.evidence_dir(data.run.id), tmp, pdf=pdf)
        _shareable(tmp)
        pause_at("report:before-swap")
        swap_in(tmp, out_dir)
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


def _shareable(root: Path) -> None:
    # A report is for people, on a share: readable by all (the process umask keeps the rest private).
    for dirpath, _dirs, files in os.walk(root):
        os.chmod(dirpath, SHARED_DIR)
        for name in files:
            os.chmod(os.path.join(dirpath, name), SHARED_FILE)


def _renameat2(src: Path, dst: Path, flags: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fn = libc.renameat2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), str(dst))


def swap_in(new: Path, dest: Path) -> None:
    """Put `new` at `dest` in one step. An existing `dest` is exchanged with `new`, then removed."""
    if not dest.exists():
        os.rename(new, dest)
    else:
        try:
            _renameat2(new, dest, RENAME_EXCHANGE)
        except (OSError, AttributeError) as exc:
            if isinstance(exc, OSError) and exc.errno not in (errno.EINVAL, errno.ENOSYS):
                raise
            # A file system without RENAME_EXCHANGE: two renames, the gap as short as it can be.
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}-{secrets.token_hex(3)}")
            os.rename(dest, old)
            os.rename(new, dest)
            new = old
        pause_at("report:after-swap")
        shutil.rmtree(new, ignore_errors=True)   # the previous report, now at the temporary name
    fsync_dir(dest.parent)


def clean_leftovers(dest: Path) -> list[Path]:
    """Temporary directories of report writes that were killed (their process is gone)."""
    removed = []
    for entry in dest.parent.glob(f".{dest.name}.*-*"):
        parts = entry.name.removeprefix(f".{dest.name}.").split("-")
        if len(parts) < 2 or parts[0] not in ("tmp", "old") or not parts[1].isdigit():
            continue
        if not pid_alive(int(parts[1])):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


__all__ = ["ReportData", "build", "clean_leftovers", "render_into", "swap_in", "write_reports"]
