"""Coverage is part of every verdict: met needs every member of what a requirement applies to
examined with a passing observation; declared evidence is "declared, not verified"; nothing about
the tool's inputs ever makes a requirement met.

The estate is the demo's; the findings stand for what each engine would report in the case named.
"""

from __future__ import annotations

import json
import re
import subprocess
from datetime import date
from pathlib import Path

import pytest

from security_checks.catalogue import framework
from security_checks.checks import make_finding
from security_checks.compliance.verdict import AUTO_FAIL, NOT_READY, framework_verdict
from security_checks.findings import EvidenceKind, Finding, Status
from security_checks.model.loader import LoadedEstate, load_estate
from security_checks.report import write_reports
from security_checks.store import Store
from tests.runs import run_with

DEMO = Path(__file__).resolve().parents[2] / "inventory" / "demo"
TODAY = date(2026, 11, 22)


@pytest.fixture(scope="module")
def loaded() -> LoadedEstate:
    return load_estate(DEMO)


def ce(loaded: LoadedEstate, findings: list[Finding], version: str = "3.3") -> dict[str, dict]:  # type: ignore[type-arg]
    v = framework_verdict(framework("cyber-essentials", version), findings, loaded.estate, TODAY, in_force=True,
                          estate_dir=loaded.root)
    rows = {r.id: r.model_dump() for r in v.requirements}
    rows["_verdict"] = {"verdict": v.verdict, "reasons": v.reasons}
    return rows


def devices_total(loaded: LoadedEstate) -> int:
    e = loaded.estate
    return sum(g.count for g in e.endpoint_groups) + sum(1 for h in e.declared_hosts
                                                         if not h.address.startswith("127."))


def test_the_feeds_freshness_alone_never_meets_the_patch_requirement(loaded: LoadedEstate) -> None:
    fresh = make_finding("patch.advisory_feed_stale", "advisory-feed", Status.PASS)
    sum4 = ce(loaded, [fresh])["SUM-4"]
    assert sum4["status"] == "not_assessed" and sum4["reason"] == "its checks did not run in this assessment"


def test_no_device_reached_is_not_assessed_with_the_count(loaded: LoadedEstate) -> None:
    unread = [make_finding("patch.security_update_overdue", "host:lab-debian-01", Status.NOT_ASSESSED,
                           key="patch-state", observed="patch state not read: reading a chroot endpoint needs root"),
              make_finding("patch.advisory_feed_stale", "advisory-feed", Status.PASS)]
    sum4 = ce(loaded, unread)["SUM-4"]
    assert sum4["status"] == "not_assessed"
    assert sum4["reason"] == (f"its checks examined none of the {devices_total(loaded):,} devices "
                              "(1 could not be read)")
    assert sum4["coverage"]["observed"] == 0 and sum4["coverage"]["unread"] == 1


def test_one_device_examined_of_thousands_is_not_met(loaded: LoadedEstate) -> None:
    one = [make_finding("patch.up_to_date", "host:lab-debian-01", Status.PASS)]
    sum4 = ce(loaded, one)["SUM-4"]
    total = devices_total(loaded)
    assert sum4["status"] == "not_assessed"
    assert sum4["reason"].startswith(f"examined 1 of {total:,} devices; {total - 1:,} not examined")


def test_one_cloud_nsg_or_one_site_does_not_make_every_site_firewalled(loaded: LoadedEstate) -> None:
    sites = len(loaded.estate.sites)
    nsg = make_finding("infra.policy.subnet_nsg", "infra-plan:demo", Status.PASS)
    fw1 = ce(loaded, [nsg])["FW-1"]
    assert fw1["status"] == "not_assessed" and fw1["reason"] == f"its checks examined none of the {sites} sites"
    segregated = make_finding("scan.segregation_breach", "zone:corporate@civic-centre", Status.PASS, key="matrix",
                              site="civic-centre")
    fw1 = ce(loaded, [nsg, segregated])["FW-1"]
    assert fw1["status"] == "not_assessed" and fw1["reason"].startswith(f"examined 1 of {sites} sites")


def test_mfa_only_declared_is_declared_not_verified_and_never_meets_an_auto_fail_item(loaded: LoadedEstate) -> None:
    declared = [make_finding("ce.cloud_mfa", f"lob:{lob.name}", Status.PASS) for lob in loaded.estate.lob_systems]
    assert {f.evidence_kind for f in declared} == {EvidenceKind.DECLARED}
    rows = ce(loaded, declared)
    uac7 = rows["UAC-7"]
    assert uac7["status"] == "declared" and uac7["auto_fail"]
    assert uac7["coverage"]["declared"] == len(loaded.estate.lob_systems) and uac7["coverage"]["observed"] == 0
    verdict = rows["_verdict"]
    assert verdict["verdict"] == NOT_READY
    assert any(r.startswith("CE3.3:UAC-7 (auto-fail) declared, not verified") for r in verdict["reasons"])
    # The same observed (a read-back of what each service enforces) is met.
    observed = [f.model_copy(update={"evidence_kind": EvidenceKind.OBSERVED}) for f in declared]
    assert ce(loaded, observed)["UAC-7"]["status"] == "met"


def test_a_failure_is_a_failure_whatever_the_coverage(loaded: LoadedEstate) -> None:
    bad = make_finding("ce.cloud_mfa", f"lob:{loaded.estate.lob_systems[0].name}", Status.FAIL)
    rows = ce(loaded, [bad])
    assert rows["UAC-7"]["status"] == "not_met" and rows["_verdict"]["verdict"] == AUTO_FAIL


def test_no_feed_named_says_why_patch_is_not_assessed(loaded: LoadedEstate) -> None:
    no_feed = make_finding("patch.advisory_feed_stale", "advisory-feed", Status.NOT_ASSESSED,
                           observed="no advisory feed: the estate declares none")
    sum4 = ce(loaded, [no_feed])["SUM-4"]
    assert sum4["status"] == "not_assessed" and "inputs are not current: no advisory feed" in sum4["reason"]


@pytest.mark.slow
def test_declared_reads_the_same_in_the_cli_html_pdf_oscal_and_sarif(tmp_path: Path, loaded: LoadedEstate) -> None:
    declared = [make_finding("ce.cloud_mfa", f"lob:{lob.name}", Status.PASS) for lob in loaded.estate.lob_systems]
    out = run_with(tmp_path / "home", loaded, declared, today=TODAY)
    with Store(tmp_path / "home") as store:
        write_reports(store, out.run.id, tmp_path / "out")
    controls = " ".join(re.sub(r"<[^>]+>", " ", (tmp_path / "out" / "controls.html").read_text()).split())
    assert re.search(r"CE3\.3:UAC-7 .*? declared 0 observed, 27 declared of 27 cloud services", controls)
    pdf = subprocess.run(["pdftotext", "-layout", str(tmp_path / "out" / "board-report.pdf"), "-"],
                         capture_output=True, text=True, check=True).stdout
    assert "declared, not verified" in " ".join(pdf.split())
    poam = json.loads((tmp_path / "out" / "machine" / "oscal-assessment-results.json").read_text())
    targets = {f["target"]["target-id"]: f["target"] for f in poam["assessment-results"]["results"][0]["findings"]}
    uac7 = targets["CE3.3_UAC-7"]
    assert uac7["status"]["state"] == "not-satisfied" and uac7["props"][0]["value"] == "declared"
    sarif = json.loads((tmp_path / "out" / "machine" / "findings.sarif").read_text())
    reqs = {r["ref"]: r for r in sarif["runs"][0]["properties"]["requirements"]}
    assert reqs["CE3.3:UAC-7"]["status"] == "declared" and reqs["CE3.3:UAC-7"]["coverage"]["declared"] == 27
    assert {r["properties"]["evidenceKind"] for r in sarif["runs"][0]["results"]} == {"declared"}
    cli = subprocess.run([str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "estate"), "check", "ce",
                          "--home", str(tmp_path / "home"), "--run", out.run.id, "--format", "json"],
                         capture_output=True, text=True)
    doc = json.loads(cli.stdout)
    assert next(r for r in doc["requirements"] if r["id"] == "UAC-7")["status"] == "declared"


@pytest.mark.slow
def test_a_council_with_nothing_observed_has_nothing_met(tmp_path: Path) -> None:
    """Glenmoray (tests/estates): no device Ansible reaches, 12 firewalls for 36 sites, cloud MFA only
    declared, no Entra export, no advisory feed named. Nothing the run did not observe may be met."""
    estate = Path(__file__).resolve().parents[1] / "estates" / "glenmoray"
    home = tmp_path / "home"
    binary = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "estate"
    r = subprocess.run([str(binary), "assess", "--estate", str(estate), "--home", str(home), "--skip", "infra-plan",
                        "--no-report", "--fail-on", "none", "--format", "json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    run = json.loads(r.stdout)["run"]
    with Store(home) as store:
        [ce33] = [v for v in store.verdicts(run) if v.framework == "cyber-essentials" and v.in_force]
    rows = {x.id: x for x in ce33.requirements}
    for x in ce33.requirements:
        if x.checks and not x.manual:
            assert x.coverage is not None, x.ref                           # every verdict shows its coverage
        if x.status == "met":
            assert x.coverage and x.coverage["observed"] == x.coverage["total"], x.ref
    assert rows["SUM-4"].status == "not_assessed" and "no advisory feed" in rows["SUM-4"].reason
    assert rows["FW-1"].status != "met" and rows["FW-1"].coverage["total"] == 36
    assert rows["UAC-7"].status != "met"   # its telecare waiver makes it risk accepted; never met on a YAML flag
    devices = [x for x in ce33.requirements if x.coverage and x.coverage["applies_to"] == "devices"]
    assert devices and not any(x.status == "met" for x in devices)   # no device was reached
    assert ce33.verdict != "ready"
