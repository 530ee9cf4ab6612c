"""Builders for report and evidence tests: a small control catalogue of our own and a store with real runs.

The runs are made by the one runner, from steps that return findings built as the engines build
them (evidence files written through the run), over two runs, so deltas, trends, waivers, verdicts
and the Remediation Action Plan have history to show, all as a command would store them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest

from security_checks import catalogue
from security_checks.findings import EvidenceKind, EvidenceRef, Finding, Severity, Status
from security_checks.model.loader import LoadedEstate, load_estate
from security_checks.model.schema import Attestation, Waiver
from security_checks.runner import Job, Runner
from security_checks.step import Step, StepContext, StepResult
from security_checks.store import Store

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "inventory" / "demo"

CATALOGUE_YAML = """
framework: cyber-essentials
version: "3.3"
prefix: CE3.3
title: Cyber Essentials requirements for IT infrastructure v3.3 (test fixture)
source: test fixture
requirements:
  - {id: FW-1, control: firewalls, title: Default deny inbound, requirement: Block unauthenticated inbound.,
     checks: [t.undeclared_port]}
  - {id: FW-2, control: firewalls, title: Admin interface not exposed, requirement: No internet admin.,
     checks: [t.admin_exposed], auto_fail: false}
  - {id: SC-1, control: secure_configuration, title: Default passwords changed, requirement: Change them.,
     checks: [t.default_password]}
  - {id: SUM-1, control: security_update_management, title: High fixes in 14 days, requirement: Patch.,
     checks: [t.missing_patch], auto_fail: true}
  - {id: UAC-1, control: user_access_control, title: Leavers process, requirement: Disable leavers., manual: true}
  - {id: UAC-2, control: user_access_control, title: Password guidance, requirement: Tell users., manual: true}
  - {id: MP-1, control: malware_protection, title: Anti-malware, requirement: Run it., checks: [t.no_av]}
"""


def finding(check_id: str, asset: str, status: Status, severity: Severity = Severity.HIGH, key: str = "",
            controls: tuple[str, ...] = (), site: str | None = None, evidence: list[EvidenceRef] | None = None,
            remediation: str = "Close the port or declare it in the estate.") -> Finding:
    return Finding(check_id=check_id, asset=asset, key=key, title=f"{check_id} title", status=status,
                   severity=Severity.INFO if status is Status.PASS else severity, source="test",
                   controls=list(controls), observed="observed thing", expected="expected thing",
                   remediation=remediation, site=site, evidence=evidence or [], evidence_kind=EvidenceKind.OBSERVED)


WAIVER_OK = Waiver(check="t.default_password", asset="device:printer-*", justification="Printer vendor patch due; "
                   "isolated VLAN", approved_by="Gareth Lloyd (Head of ICT)", approved_on=date(2026, 10, 1),
                   expires=date(2027, 3, 31), reference="RISK-0042")
WAIVER_EXPIRED = Waiver(check="t.no_av", asset="host:kiosk-1", justification="Kiosk replaced soon, accepted",
                        approved_by="Aisha Okafor (Security Lead)", approved_on=date(2026, 6, 1),
                        expires=date(2026, 10, 31), reference="RISK-0031")
ATTESTATION = Attestation(requirement="CE3.3:UAC-1", statement="Leavers are disabled on the last day by HR feed.",
                          attested_by="Priya Shah (HR Systems)", attested_on=date(2026, 11, 1),
                          evidence=["attestations/leavers.pdf"])
TODAY = date(2026, 11, 22)


@contextmanager
def patched_catalogue(root: Path) -> Iterator[Path]:
    """Our own small catalogue in place of the real one (whose contents other work changes)."""
    cat = root / "catalogue"
    cat.mkdir(parents=True, exist_ok=True)
    (cat / "ce-3.3.yaml").write_text(CATALOGUE_YAML)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(catalogue, "CATALOGUE_DIR", cat)
        catalogue.frameworks.cache_clear()
        catalogue._index.cache_clear()
        try:
            yield cat
        finally:
            catalogue.frameworks.cache_clear()
            catalogue._index.cache_clear()


@pytest.fixture
def test_catalogue(tmp_path: Path) -> Iterator[Path]:
    with patched_catalogue(tmp_path) as cat:
        yield cat


def demo_loaded() -> LoadedEstate:
    base = load_estate(DEMO)
    estate = base.estate.model_copy(update={"waivers": [WAIVER_OK, WAIVER_EXPIRED], "attestations": [ATTESTATION]})
    return LoadedEstate(estate=estate, root=base.root, locations=base.locations, digest=base.digest)


@pytest.fixture
def loaded() -> LoadedEstate:
    return demo_loaded()


def _run(home: Path, loaded: LoadedEstate, steps: tuple[Step, ...]) -> str:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ESTATE_OPERATOR", "tester")
        return Runner(loaded, home, today=TODAY).run(Job("assess", steps, "a test's assessment",
                                                          full_scope=True)).run.id


def first_run(home: Path, loaded: LoadedEstate) -> str:
    def scan(ctx: StepContext) -> StepResult:
        ev = ctx.run.write_evidence("scan/selftest.xml", "<nmaprun>first</nmaprun>", "nmap XML")
        return StepResult([
            finding("t.undeclared_port", "host:10.10.30.20", Status.FAIL, key="tcp/23", site="civic-centre",
                    controls=("CE3.3:FW-1",), evidence=[ev]),
            finding("t.missing_patch", "host:10.10.30.21", Status.FAIL, Severity.CRITICAL, key="KB1",
                    controls=("CE3.3:SUM-1",), site="civic-centre", remediation="Apply KB1."),
            finding("t.no_av", "host:kiosk-1", Status.FAIL, Severity.MEDIUM, controls=("CE3.3:MP-1",),
                    site="central-library")], "1 host")

    return _run(home, loaded, (Step("scan", scan, "test scan", ("*",)),))


def second_run(home: Path, loaded: LoadedEstate) -> str:
    def scan(ctx: StepContext) -> StepResult:
        ev = ctx.run.write_evidence("scan/selftest.xml", "<nmaprun>second</nmaprun>", "nmap XML")
        ctx.run.write_evidence("devices/artifacts/x/job_events/1.json", '{"event": "ok"}', "runner event")
        ctx.run.write_evidence("devices/artifacts/x/command", '{"env": {"PASSWORD": "hunter2"}}', "runner command")
        return StepResult([
            finding("t.undeclared_port", "host:10.10.30.20", Status.FAIL, key="tcp/23", site="civic-centre",
                    controls=("CE3.3:FW-1",), evidence=[ev]),
            finding("t.missing_patch", "host:10.10.30.21", Status.PASS, key="KB1", controls=("CE3.3:SUM-1",)),
            finding("t.default_password", "device:printer-3f", Status.FAIL, Severity.HIGH, site="civic-centre",
                    controls=("CE3.3:SC-1",), remediation="Change the printer's admin password."),
            finding("t.no_av", "host:kiosk-1", Status.FAIL, Severity.MEDIUM, controls=("CE3.3:MP-1",),
                    site="central-library", remediation="Install Defender <script>alert(1)</script>."),
            finding("t.admin_exposed", "fw:hq-fortigate", Status.PASS, controls=("CE3.3:FW-2",))], "1 host")

    def lab(ctx: StepContext) -> StepResult:
        return StepResult(skipped="not root: network namespaces need CAP_NET_ADMIN")

    return _run(home, loaded, (Step("scan", scan, "test scan", ("*",)), Step("lab", lab, "lab scan", ("*",))))


def make_two_runs(home: Path, loaded: LoadedEstate) -> tuple[Store, str, str]:
    a = first_run(home, loaded)
    while store_now() == a[:16]:
        time.sleep(0.05)  # run ids sort by the second they started: the second run must start later
    b = second_run(home, loaded)
    return Store(home), a, b


def store_now() -> str:
    from security_checks.store import now

    return now().strftime("%Y%m%dT%H%M%SZ")


@pytest.fixture
def two_runs(tmp_path: Path, test_catalogue: Path, loaded: LoadedEstate) -> tuple[Store, str, str]:
    return make_two_runs(tmp_path / "home", loaded)
