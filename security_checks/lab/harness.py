"""The demo lab as a harness around a run: it sets up what the product's steps then examine.

Only the CLI brings it in, and only for an estate that declares lab things (a `lab` scan scope,
loopback self-test hosts, a chroot endpoint under the home). The product's steps never import this
package: they receive vantages, probe points and site scanners through StepContext.provisions,
exactly as a real estate's scanner hosts would be described to them. A real council's assessment
therefore never runs a line of lab code.

What a session provides, and for how long (entered before the first step, left after the last):
- self-test: the loopback listeners the estate declares, plus the planted undeclared one
  (faults.yaml, selftest), started in this process: any machine;
- namespaces (root): the lab of network namespaces, built if it is not up and then removed again
  (mode "build"), or used as it is and required up (mode "use"): scanner vantages, probe points
  in each zone, site scanners;
- endpoint (root): the Debian chroot endpoint, built once, with its planted overdue update.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from ..fsutil import umask
from ..model.loader import LoadedEstate
from ..scan.engine import Vantage
from ..scan.vantage import SiteScanner
from ..step import InputRefused, StepContext, StepResult
from . import build as labbuild
from . import nftables
from .listeners import ListenerSpec, port_is_free, start
from .topology import Lab, build_lab, load_faults

# The steps each part of the lab serves: nothing is built for a run that will not use it.
NAMESPACE_STEPS = frozenset({"network-scan", "segregation", "scope-scan", "site-scan", "firewalls"})
ENDPOINT_STEPS = frozenset({"devices", "patch"})


class LabUnavailable(InputRefused):
    """The lab cannot serve this command (one line for the user, exit 2, nothing stored)."""


def declares_lab(loaded: LoadedEstate) -> bool:
    """Whether an estate has anything the harness would set up (the demo does; a real estate does not)."""
    e = loaded.estate
    return any(s.lab for s in e.scan_scopes) or any(h.role == "selftest" for h in e.declared_hosts)


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


@contextlib.contextmanager
def lab_session(loaded: LoadedEstate, home: Path, *, build: bool, log: Any = None) -> Iterator[tuple[Lab, bool]]:
    """The lab, up for the duration: brought up (and down afterwards) only if `build` and it was not up.

    Holds the machine-wide lab lock shared while in use, so nobody's `down` removes it mid-scan.
    """
    import fcntl

    with labbuild.lab_lock() as fh:  # exclusive while deciding and building
        st = labbuild.status(home)
        brought = False
        if not st["up"]:
            if not build:
                raise LabUnavailable("the lab is not up: run `estate lab up` first")
            try:
                build_lab(loaded.estate)
            except (ValueError, KeyError) as exc:
                raise LabUnavailable(f"no lab can be derived from this estate ({exc})") from None
            labbuild.up_locked(loaded, home, log=log)
            brought = True
        else:
            state = labbuild.read_state(Path(st["home"])) or {}
            if state.get("estate_digest") != loaded.digest:
                raise LabUnavailable("the lab on this machine was built from a different estate: `estate lab down`, "
                                     "then run again")
        fcntl.flock(fh, fcntl.LOCK_SH)  # others may scan too while this session runs
        try:
            yield build_lab(loaded.estate), brought
        finally:
            if brought:
                fcntl.flock(fh, fcntl.LOCK_EX)
                labbuild.down_locked(home)


def provisions_of(lab: Lab, loaded: LoadedEstate, home: Path) -> dict[str, Any]:
    scope = next(s for s in loaded.estate.scan_scopes if s.lab)
    vantages = []
    site_scanners: dict[str, SiteScanner] = {}
    for netns in lab.scanners:
        v = lab.scanner_vantage(netns)
        vantages.append(Vantage(name=netns, netns=netns, networks=v["networks"], addresses=v["addresses"]))
        if netns.startswith("est-scan-"):
            site = netns.removeprefix("est-scan-")
            site_scanners[site] = SiteScanner(site=site, netns=netns, networks=v["networks"],
                                              addresses=v["addresses"])
    # The lab's routers, as the inventory the nftables_gateway role configured them with (lab/nftables.py).
    routers = labbuild.lab_dir(labbuild.owner_home(home)) / nftables.INVENTORY_FILE
    return {"vantages": vantages, "vantage_scope": scope.name, "probe_network": lab, "site_scanners": site_scanners,
            "wrapper_dir": labbuild.lab_dir(home) / "bin",
            "lab_firewalls": {"inventory": routers, "hosts": {fw.name: "nftables" for fw in lab.firewalls}}}


class LabHarness:
    name = "lab-harness"
    description = "demo lab harness: self-test listeners, lab namespaces, chroot endpoint (root)"

    def __init__(self, *, selftest: bool = True, namespaces: Literal["build", "use", "none"] = "build",
                 endpoint: bool = True):
        self.selftest, self.namespaces, self.endpoint = selftest, namespaces, endpoint

    @contextlib.contextmanager
    def session(self, ctx: StepContext) -> Iterator[StepResult]:
        provisions: dict[str, Any] = {}
        notes: list[str] = []
        home = Path(ctx.home)
        wants = ctx.planned
        with contextlib.ExitStack() as stack:
            # The lab stands for machines with their own umask: a Debian system whose files only root
            # can read, or a .deb dpkg refuses to build, would not be a fair stand-in.
            stack.enter_context(umask(0o022))
            if self.selftest and "selftest-scan" in wants:
                specs = selftest_specs(ctx.loaded)
                busy = [f"{s.address}:{s.port}" for s in specs if s.protocol == "tcp"
                        and not port_is_free(s.address, s.port)]
                if busy:
                    # Scanning them would judge another process's listeners: the self-test does not run.
                    provisions["loopback_unavailable"] = f"self-test ports in use by another process: {', '.join(busy)}"
                    notes.append(provisions["loopback_unavailable"])
                elif specs:
                    stack.callback(start(specs).stop)
                    provisions["loopback_ports"] = sorted({s.port for s in specs if s.protocol == "tcp"})
                    provisions["loopback_addresses"] = sorted({s.address for s in specs})
                    notes.append(f"{len(specs)} loopback listener(s)")
            lab_scope = any(s.lab for s in ctx.loaded.estate.scan_scopes)
            if self.namespaces != "none" and lab_scope and wants & NAMESPACE_STEPS:
                if not ctx.is_root:
                    notes.append("no lab namespaces: building them needs root")
                else:
                    ctx.say("lab: bringing up the network namespaces" if self.namespaces == "build"
                            else "lab: using the running namespaces")
                    try:
                        lab, brought = stack.enter_context(
                            lab_session(ctx.loaded, home, build=self.namespaces == "build"))
                    except LabUnavailable as exc:
                        if self.namespaces != "build":
                            raise   # a lab scan command asked for the lab: refuse it, one line, exit 2
                        notes.append(f"no lab namespaces: {exc}")   # assess: its lab steps say why they skip
                    else:
                        provisions.update(provisions_of(lab, ctx.loaded, home))
                        notes.append(f"lab namespaces {'built for this run' if brought else 'in use'}")
            if self.endpoint and ctx.is_root and wants & ENDPOINT_STEPS and _lab_endpoints(ctx.loaded):
                from ..compliance.advisories import load_feed
                from .endpoint import EndpointError, ensure_lab_endpoint
                from .patch_fault import plant

                ctx.say("lab: preparing the Debian chroot endpoint")
                try:
                    root = ensure_lab_endpoint(home)
                    declared = ctx.loaded.estate.organisation.advisory_feed
                    plant(root, load_feed(ctx.loaded.root / declared) if declared else None)
                    notes.append("chroot endpoint ready, overdue update planted")
                except (EndpointError, RuntimeError, OSError) as exc:
                    notes.append(f"chroot endpoint unavailable: {exc}")
            yield StepResult(data=provisions, summary="; ".join(notes) or "nothing to set up")


def _lab_endpoints(loaded: LoadedEstate) -> bool:
    from .endpoint import LAB_ENDPOINT

    return any(h.address and Path(h.address) == LAB_ENDPOINT
               for g in loaded.estate.endpoint_groups for h in g.hosts)
