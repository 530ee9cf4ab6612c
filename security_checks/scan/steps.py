"""The scan steps of `estate assess`: selftest-scan (any machine), lab-scan and segregation (root).

selftest-scan is the first end-to-end slice of the product: it starts, in this process, the
loopback listeners the estate declares (role selftest) plus the planted undeclared plaintext
listener from the lab's fault list, authorises the scan against the `selftest` scope, runs an
nmap TCP connect scan (works unprivileged), keeps the XML as evidence, produces scan.* findings
and stops the listeners, whatever happens.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..assess import StepContext, StepResult
from ..findings import Finding
from ..lab import build as labbuild
from ..lab.listeners import ListenerSpec, port_is_free, start
from ..lab.topology import Lab, build_lab, load_faults
from ..model.loader import LoadedEstate
from ..store import RunWriter
from . import engine
from .drift import dedupe
from .scope import authorise


def selftest_specs(loaded: LoadedEstate) -> list[ListenerSpec]:
    specs = []
    for h in loaded.estate.declared_hosts:
        if h.role != "selftest":
            continue
        for p in h.ports:
            kind = "http" if p.service == "http" else "ssh" if p.service == "ssh" else "tcp"
            specs.append(ListenerSpec(address=h.address, port=p.port, kind=kind, protocol=p.protocol, name=h.name))
    for f in load_faults()["selftest"]:
        if f.get("action") == "add-listener":
            specs.append(ListenerSpec(address=f["address"], port=int(f["port"]), kind=f["kind"],
                                      protocol=f.get("protocol", "tcp"), name=f"fault-{f['id']}"))
    return specs


def run_selftest(loaded: LoadedEstate, run: RunWriter) -> tuple[list[Finding], str]:
    specs = selftest_specs(loaded)
    if not specs:
        return [], "no selftest hosts declared"
    scope = next((s for s in loaded.estate.scan_scopes if s.loopback), None)
    if scope is None:
        raise RuntimeError("the estate has no loopback scan scope for the self-test (scan_scopes, loopback: true)")
    addresses = sorted({s.address for s in specs}, key=ipaddress.ip_address)
    # Refused targets stop here, before a listener starts or a packet is sent.
    auth = authorise(loaded, addresses, scope_name=scope.name, profile="standard")
    busy = [f"{s.address}:{s.port}" for s in specs if s.protocol == "tcp" and not port_is_free(s.address, s.port)]
    if busy:
        raise RuntimeError(f"self-test ports already in use by another process: {', '.join(busy)}")
    running = start(specs)
    try:
        outcome = engine.scan(loaded, auth, engine.Vantage(name="selftest"), run, "selftest", privileged=False,
                              top_ports=None, targets=addresses, skip_discovery=True,
                              ports_override=({s.port for s in specs if s.protocol == "tcp"}, set()))
    finally:
        running.stop()
    fails = sum(1 for f in outcome.findings if f.failing)
    return outcome.findings, (f"scanned {len(specs)} loopback ports ({', '.join(str(s.port) for s in specs)}): "
                              f"{len(outcome.findings)} findings, {fails} failing")


def selftest_scan(ctx: StepContext) -> StepResult:
    findings, summary = run_selftest(ctx.loaded, ctx.run)
    return StepResult(findings=findings, summary=summary)


class LabBusy(Exception):
    """The lab cannot serve this estate right now (one line for the user)."""


@contextlib.contextmanager
def lab_session(loaded: LoadedEstate, home: Path, log: Any = None) -> Iterator[tuple[Lab, bool]]:
    """The lab, brought up if it was not (and then taken down again afterwards, only then).

    Holds the machine-wide lab lock shared while in use, so nobody's `down` removes it mid-scan.
    """
    import fcntl

    with labbuild.lab_lock() as fh:  # exclusive while deciding and building
        st = labbuild.status(home)
        brought = False
        if not st["up"]:
            try:
                build_lab(loaded.estate)
            except (ValueError, KeyError) as exc:
                raise LabBusy(f"no lab can be derived from this estate ({exc})") from None
            labbuild.up_locked(loaded, home, log=log)
            brought = True
        else:
            state = labbuild.read_state(Path(st["home"])) or {}
            if state.get("estate_digest") != loaded.digest:
                raise LabBusy("the lab on this machine was built from a different estate: `estate lab down`, "
                              "then run again")
        fcntl.flock(fh, fcntl.LOCK_SH)  # others may scan too while this session runs
        try:
            yield build_lab(loaded.estate), brought
        finally:
            if brought:
                fcntl.flock(fh, fcntl.LOCK_EX)
                labbuild.down_locked(home)


def scan_lab(loaded: LoadedEstate, lab: Lab, run: RunWriter, home: Path, profile: str = "standard",
             scope_name: str | None = None, targets: list[str] | None = None) -> tuple[list[Finding], list[str]]:
    """Scan the lab scope from every lab scanner namespace (each over the networks it sits on)."""
    scope = loaded.estate.scope(scope_name) if scope_name else next(s for s in loaded.estate.scan_scopes if s.lab)
    def one(netns: str) -> tuple[list[Finding], str]:
        v = lab.scanner_vantage(netns)
        auth = authorise(loaded, targets or None, scope_name=scope.name, profile=profile, netns=netns)
        if not engine.intersect(auth, v["networks"]):
            return [], f"{netns}: not on the target networks"
        vantage = engine.Vantage(name=netns, netns=netns, networks=v["networks"], addresses=v["addresses"])
        outcome = engine.scan(loaded, auth, vantage, run, netns.removeprefix("est-"), privileged=True,
                              wrapper_dir=labbuild.lab_dir(home) / "bin")
        return outcome.findings, f"{netns}: {len(outcome.live_hosts)} hosts"

    with ThreadPoolExecutor(max_workers=len(lab.scanners) or 1) as pool:
        done = list(pool.map(one, list(lab.scanners)))
    findings = [f for fs, _ in done for f in fs]
    notes = [n for _, n in done]
    return dedupe(findings), notes




def lab_scan(ctx: StepContext) -> StepResult:
    if not ctx.is_root:
        return StepResult(skipped="needs root to build the lab of network namespaces (run estate assess as root)")
    try:
        with lab_session(ctx.loaded, ctx.store.home) as (lab, brought):
            findings, notes = scan_lab(ctx.loaded, lab, ctx.run, ctx.store.home)
    except LabBusy as exc:
        return StepResult(skipped=str(exc))
    fails = sum(1 for f in findings if f.failing)
    return StepResult(findings=findings, summary=f"{'; '.join(notes)}; {len(findings)} findings, {fails} failing"
                      f"{' (lab built and removed for this step)' if brought else ''}")


def segregation(ctx: StepContext) -> StepResult:
    if not ctx.is_root:
        return StepResult(skipped="needs root to probe between the lab's network namespaces")
    from .segregation import run_matrix

    try:
        with lab_session(ctx.loaded, ctx.store.home) as (lab, _brought):
            matrix, findings = run_matrix(ctx.loaded, lab, ctx.run)
    except LabBusy as exc:
        return StepResult(skipped=str(exc))
    return StepResult(findings=findings, summary=f"{len(matrix['flows'])} probes, {matrix['breaches']} breaches, "
                      f"{matrix['allowed_but_blocked']} allowed flows blocked")
