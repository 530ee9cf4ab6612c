"""The one runner: every command that judges the estate is a job (a choice of steps) handed to it.

    lock the home -> open the run -> [lab harness, demo only] -> steps -> waivers, once ->
    verdicts (on the run's date) -> commit: run + findings + verdicts + evidence index + RAP
    transition, in one transaction, or nothing

Nothing else opens a run, applies waivers, computes a Cyber Essentials or PSN verdict or changes
the Remediation Action Plan. So what a command prints is what it stored (it prints the outcome
this returns, read back from the store), a waived finding shows as accepted in every output, and
a run killed at any point leaves no partial run and no half-updated plan.

A run records what it was: the estate digest it assessed, the job, every step that ran, failed or
was skipped (with why: --only/--skip, --check, not root, nothing to do), and the checks whose
steps ran, which is what may close a RAP item.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from fnmatch import fnmatchcase
from functools import cached_property, partial
from typing import Any, Protocol

from . import __version__
from .checks import make_finding, name_network, registry
from .compliance.rap import transition
from .compliance.timescales import policy
from .compliance.verdict import run_verdicts
from .findings import Finding, FindingBrief, Status
from .model.loader import LoadedEstate
from .model.scope import scope_statement
from .remediation import RapItem, RapUpdate
from .step import InputRefused, Step, StepContext, StepResult, is_root
from .store import Commit, RunInfo, Store
from .store.lock import writer_lock
from .testhooks import pause_at
from .verdicts import FrameworkVerdict
from .waivers import apply_waivers

STEP_FAILED = "assess.step_failed"
# A full, over-quota or read-only disk under the home: the run stops whole rather than commit a
# partial picture (the step's "error" would itself be written to the disk that has no room).
DISK_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
# Young-generation collections every 100,000 allocations instead of 700 (see collections_deferred).
_RUN_GC_THRESHOLD = (100_000, 100, 100)


@contextlib.contextmanager
def collections_deferred() -> Iterator[None]:
    """The cyclic garbage collector runs less often while a run builds, commits and reads back its findings.

    A run with tens of thousands of findings (an ITHC tester's Nessus file: 20,000) allocates
    millions of small, mostly long-lived objects (models, detail dicts, RAP items, rows), and with
    the default thresholds the collector rescans that growing heap over and over: a quarter of the
    CPU of `estate scan import` of a 50 MB file (bench/bench_ithc.py). Collections are rarer, not
    off: cyclic garbage is still reclaimed, and only when, never what, changes. Restored on exit
    (the setting is the process's, so a thread running meanwhile collects less often too)."""
    saved = gc.get_threshold()
    if saved[0]:   # 0: automatic collection is off already; leave it so
        gc.set_threshold(*(max(a, b) for a, b in zip(saved, _RUN_GC_THRESHOLD, strict=False)))
    try:
        yield
    finally:
        gc.set_threshold(*saved)


class RunAborted(Exception):
    """The run stopped before it could commit; nothing was stored (the message says why)."""


@dataclass(frozen=True)
class Job:
    kind: str                        # the run kind stored: assess, scan, scan-import, devices-audit...
    steps: tuple[Step, ...]
    description: str
    # A complete, unfiltered run of this job looks at the whole estate for its checks, so an item
    # it no longer finds may close (assess, infra plan). A scan of one scope or one site may not.
    full_scope: bool = False
    compliance: bool = True          # compute and store the framework verdicts


@dataclass(frozen=True)
class Selection:
    only: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()          # fnmatch patterns of check ids to keep (empty: all)
    exclude_checks: tuple[str, ...] = ()

    @property
    def filtered(self) -> bool:
        return bool(self.only or self.skip or self.checks or self.exclude_checks)

    def check_selected(self, check_id: str) -> bool:
        if check_id == STEP_FAILED:
            return True
        if self.checks and not any(fnmatchcase(check_id, p) for p in self.checks):
            return False
        return not any(fnmatchcase(check_id, p) for p in self.exclude_checks)

    def as_dict(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in (("only", self.only), ("skip", self.skip), ("checks", self.checks),
                                         ("exclude_checks", self.exclude_checks)) if v}


class Harness(Protocol):
    """The demo lab (security_checks/lab/harness.py): sets up what the demo's steps scan and audit."""

    name: str
    description: str

    def session(self, ctx: StepContext) -> AbstractContextManager[StepResult]: ...


@dataclass
class RunOutcome:
    run: RunInfo
    briefs: list[FindingBrief]         # every finding as stored (read back), as a summary shows it
    verdicts: list[FrameworkVerdict]
    rap: dict[str, int]
    read_findings: Callable[[], list[Finding]] = field(repr=False)   # the run's findings, from the store
    data: dict[str, dict[str, Any]] = field(default_factory=dict)   # each step's command output
    recovered: list[str] = field(default_factory=list)

    @cached_property
    def findings(self) -> list[Finding]:
        """Every finding as stored, read back and decoded on first use: a summary needs only the briefs,
        and decoding an ITHC import's 20,000 findings costs more than judging them did."""
        return self.read_findings()


def step_checks(step: Step) -> list[str]:
    return sorted(c for c in registry() if any(fnmatchcase(c, p) for p in step.checks))


def validate_selection(job: Job, sel: Selection) -> list[str]:
    """Problems with --only/--skip/--check/--exclude-check against the job (each one line)."""
    names = {s.name for s in job.steps}
    problems = [f"unknown step {n!r} (steps: {', '.join(s.name for s in job.steps)})"
                for n in (*sel.only, *sel.skip) if n not in names]
    ids = set(registry())
    for p in (*sel.checks, *sel.exclude_checks):
        if not any(fnmatchcase(c, p) for c in ids):
            problems.append(f"no check matches {p!r} (see `estate checks`)")
    return problems


class Runner:
    def __init__(self, loaded: LoadedEstate, home: Any, *, say: Callable[[str], None] = lambda m: None,
                 today: date | None = None, wait: float = 0.0,
                 on_wait: Callable[[str, float], None] | None = None):
        self.loaded, self.home, self.say = loaded, home, say
        self.today = today or date.today()
        self.wait, self.on_wait = wait, on_wait

    def run(self, job: Job, *, options: dict[str, Any] | None = None, selection: Selection | None = None,
            harness: Harness | None = None, on_step: Callable[[int, int, str], None] | None = None) -> RunOutcome:
        sel = selection or Selection()
        with writer_lock(self.home, f"estate {job.kind}", wait=self.wait, on_wait=self.on_wait), \
                Store(self.home, writer=True) as store, collections_deferred():
            for note in store.recovered:
                self.say(f"recovered: {note}")
            writer = store.begin(job.kind, estate_dir=str(self.loaded.root), estate_digest=self.loaded.digest)
            try:
                commit, data = self._execute(job, sel, writer, options or {}, harness, on_step)
                pause_at("run:before-commit")
                update = store.commit(commit)
            except BaseException as exc:
                where = _abandon(store, writer, f"stopped before commit: {type(exc).__name__}: {exc}"[:300])
                if where:
                    self.say(f"nothing was stored; the partial evidence is kept in {where}")
                raise
            info = store.get_run(writer.id)
            assert info is not None
            return RunOutcome(run=info, briefs=store.briefs(writer.id), verdicts=store.verdicts(writer.id),
                              rap=update.counts, data=data, recovered=store.recovered,
                              read_findings=partial(_stored_findings, self.home, writer.id))

    # -- the steps -----------------------------------------------------------------------------

    def _execute(self, job: Job, sel: Selection, writer: Any, options: dict[str, Any], harness: Harness | None,
                 on_step: Callable[[int, int, str], None] | None) -> tuple[Commit, dict[str, dict[str, Any]]]:
        root = is_root()
        planned = frozenset(s.name for s in job.steps if not self._skip_reason(s, sel, root))
        ctx = StepContext(loaded=self.loaded, run=writer, home=self.home, is_root=root, today=self.today,
                          say=self.say, options=options, planned=planned)
        records: list[dict[str, Any]] = []
        findings: list[Finding] = []
        data: dict[str, dict[str, Any]] = {}
        checks_run: set[str] = set()
        with contextlib.ExitStack() as stack:
            if harness is not None:
                t0 = time.monotonic()
                res = stack.enter_context(_harness(harness, ctx))
                records.append(_record(harness.name, harness.description, res, time.monotonic() - t0, harness=True))
            for step in job.steps:
                why = self._skip_reason(step, sel, root)
                if on_step and not why:
                    ordered = [s.name for s in job.steps if s.name in planned]
                    on_step(ordered.index(step.name), len(ordered), step.description)
                if why:
                    records.append({"name": step.name, "description": step.description, "status": "skipped",
                                    "summary": why, "findings": 0, "seconds": 0.0})
                    continue
                ctx.earlier = list(findings)
                t0 = time.monotonic()
                try:
                    result = step.fn(ctx)
                except InputRefused:
                    raise
                except Exception as exc:  # one engine failing must not lose the others' findings
                    if isinstance(exc, OSError) and exc.errno in DISK_ERRORS:
                        raise   # the state directory's own disk: no part of this run can be kept
                    ref = writer.write_evidence(f"errors/{step.name}.txt", traceback.format_exc(),
                                                f"traceback of the failed step {step.name}")
                    result = StepResult(findings=[make_finding(
                        STEP_FAILED, f"step:{step.name}", Status.ERROR, key=step.name,
                        observed=f"{type(exc).__name__}: {exc}", expected="the step completes", evidence=[ref])],
                        summary=f"{type(exc).__name__}: {exc}")
                    records.append({**_record(step.name, step.description, result, time.monotonic() - t0),
                                    "status": "error"})
                    findings += result.findings
                    continue
                kept = [f for f in result.findings if sel.check_selected(f.check_id)]
                _check_known(step, kept)
                findings += kept
                data[step.name] = result.data
                records.append(_record(step.name, step.description, result, time.monotonic() - t0,
                                       count=len(kept)))
                if not result.skipped:
                    checks_run.update(c for c in step_checks(step) if sel.check_selected(c))
        _no_duplicates(findings)
        estate = self.loaded.estate
        network = estate.organisation.public_sector_network
        _name_network(findings, network)
        apply_waivers(findings, estate.waivers, self.today)
        verdicts = run_verdicts(estate, findings, self.today, self.loaded.root) if job.compliance else []
        verdicts = [_named_verdict(v, network) for v in verdicts]
        stamp = datetime.now(UTC).replace(microsecond=0).isoformat()
        full = job.full_scope and not sel.filtered

        def rap(items: dict[str, RapItem]) -> RapUpdate:
            return transition(items, findings, estate, self.today, run_id=writer.id, full_scope=full,
                              checks_run=checks_run, stamp=stamp)

        return Commit(writer=writer, job=job.kind, findings=findings, steps=records, full_scope=full,
                      assessed_on=self.today, tool_versions=tool_versions(), selection=sel.as_dict(),
                      checks_run=sorted(checks_run), context=_context(self.loaded, self.today), verdicts=verdicts,
                      rap=rap), data

    @staticmethod
    def _skip_reason(step: Step, sel: Selection, root: bool) -> str | None:
        if sel.only and step.name not in sel.only:
            return "not chosen (--only " + ", ".join(sel.only) + ")"
        if step.name in sel.skip:
            return "left out (--skip)"
        if (sel.checks or sel.exclude_checks) and step.checks and \
                not any(sel.check_selected(c) for c in step_checks(step)):
            return "none of its checks selected (--check/--exclude-check)"
        if step.needs_root and not root:
            return f"needs root: {step.needs_root}"
        return None


@contextlib.contextmanager
def _harness(harness: Harness, ctx: StepContext) -> Iterator[StepResult]:
    with harness.session(ctx) as res:
        ctx.provisions = res.data
        yield res


def _record(name: str, description: str, result: StepResult, seconds: float, *, count: int | None = None,
            harness: bool = False) -> dict[str, Any]:
    status = "skipped" if result.skipped else "ran"
    return {"name": name, "description": description, "status": status,
            "summary": result.skipped if result.skipped else result.summary,
            "findings": len(result.findings) if count is None else count, "seconds": round(seconds, 1),
            **({"harness": True} if harness else {})}


def _check_known(step: Step, findings: list[Finding]) -> None:
    if not step.checks:
        return
    for check_id in {f.check_id for f in findings} - {STEP_FAILED}:   # each check once, not each finding
        if not any(fnmatchcase(check_id, p) for p in step.checks):
            raise RuntimeError(f"step {step.name} emitted {check_id}, which it does not declare (Step.checks)")


def _name_network(findings: list[Finding], network: str) -> None:
    """The council's network name where check metadata says "{network}" (checks.py, name_network)."""
    for f in findings:
        for name in ("title", "remediation", "observed", "expected"):
            text = getattr(f, name)
            named = name_network(text, network)
            if named is not text:   # set only what changes: a model's assignment costs more than the check
                setattr(f, name, named)


def _named_verdict(v: FrameworkVerdict, network: str) -> FrameworkVerdict:
    # Every text of a verdict (framework title, requirement titles and wording, reasons) comes from
    # the catalogue, which says "{network}"; the name is escaped for the JSON it is placed in.
    text = v.model_dump_json()
    named = name_network(text, json.dumps(network)[1:-1])
    return v if named == text else FrameworkVerdict.model_validate_json(named)


def _no_duplicates(findings: list[Finding]) -> None:
    seen: set[str] = set()
    for f in findings:
        fid = f.id
        if fid in seen:
            raise RuntimeError(f"finding {fid} ({f.check_id} on {f.asset} {f.key}) reported twice in one run")
        seen.add(fid)


def _stored_findings(home: Any, run_id: str) -> list[Finding]:
    """A committed run's findings, from the store (the run is immutable once committed)."""
    with Store(home) as store:
        return store.findings(run_id)


def _abandon(store: Store, writer: Any, reason: str) -> str | None:
    """Keep what a run that will not commit wrote (quarantine); an empty staging directory just goes."""
    staging = writer.staging
    if not staging.exists() or store.get_run(writer.id) is not None:
        return None   # committed (the rename is what failed): the next writer puts it in place
    if not any(p.is_file() for p in staging.rglob("*")):
        shutil.rmtree(staging)   # nothing was written: there is no evidence to keep
        return None
    name = store.abandon(writer, reason)
    return str(store.quarantine_dir / name) if name else None


def _context(loaded: LoadedEstate, today: date) -> dict[str, Any]:
    """What reports show beside the findings, as it was when the run assessed (so no report needs the estate)."""
    e = loaded.estate
    waivers = []
    for w in e.waivers:
        d = w.model_dump(mode="json")
        d["state"] = "active" if w.expires >= today else "expired"
        d["target"] = w.finding or " on ".join(x for x in (w.check, w.asset) if x)
        waivers.append(d)
    return {
        "organisation": e.organisation.name,
        "nation": e.organisation.nation.value,
        "network": e.organisation.public_sector_network,
        "ce_version": e.organisation.ce_version,
        # No "estate_dir" here: nothing that renders the context reads it, and the context is kept
        # with the run (its row, its manifest beside the evidence files), which should not carry the
        # directory the operator ran from: which estate was assessed is the run's digest. The
        # run record keeps the directory (store.begin in Runner.run) because the operator's own
        # messages need it ("run X assessed the estate DIR": cli/common.same_estate, evidence seal).
        "scope": scope_statement(e),
        "waivers": waivers,
        "remediation_policy": policy(e),
        "contacts": [c.model_dump() for c in e.organisation.contacts],
    }


def tool_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"estate": __version__, "python": sys.version.split()[0]}
    for pkg in ("pulumi", "pulumi-azure-native", "ansible-core", "ansible-runner", "python-nmap", "scapy"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out
