"""Cyber Essentials readiness: the estate's own configuration checks, the verdict rules, scope."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml

from security_checks.catalogue import Framework, framework
from security_checks.checks import make_finding
from security_checks.compliance.ce import config_findings
from security_checks.compliance.verdict import AUTO_FAIL, NOT_READY, READY, framework_verdict
from security_checks.findings import EvidenceKind, Finding, Status
from security_checks.model.loader import load_estate
from security_checks.model.schema import Attestation, Estate, Waiver
from security_checks.model.scope import scope_statement
from security_checks.waivers import apply_waivers

TODAY = date(2026, 11, 22)


def assess(estate: Estate, findings: list[Finding], on: date, *, version: str = "3.3",
           estate_dir: Path | None = None) -> dict:  # type: ignore[type-arg]
    """The verdict as the runner stores it, as a plain document (rows as dicts)."""
    v = framework_verdict(framework("cyber-essentials", version), findings, estate, on, in_force=True,
                          estate_dir=estate_dir)
    return {**v.model_dump(mode="json"), "counts": v.counts}


def _edit(estate_dir: Path, name: str, fn) -> None:  # type: ignore[no-untyped-def]
    path = estate_dir / name
    data = yaml.safe_load(path.read_text())
    fn(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_demo_configuration_passes_and_breaking_it_fails(demo_copy: Path) -> None:
    ok = {(f.check_id, f.asset, f.key): f for f in config_findings(load_estate(demo_copy).estate, TODAY)}
    assert not [k for k, f in ok.items() if f.failing]
    assert len([k for k in ok if k[0] == "ce.cloud_mfa"]) == 27

    def lob(d):  # type: ignore[no-untyped-def]
        d["lob_systems"][0]["mfa_enforced"] = False

    def fw(d):  # type: ignore[no-untyped-def]
        civic = d["firewalls"][0]
        civic["default_inbound"] = "allow"
        civic["management_mfa"] = False
        civic["management_allowlist"] = []
        civic["rules"][0]["review_by"] = "2026-01-31"
        d["firewalls"][1]["rules"].append({
            "id": "LIB-900", "name": "anything in", "from_zone": "internet", "to_zone": "management",
            "services": "any", "action": "allow", "owner": "Nobody", "justification": "testing",
            "review_by": "2027-01-01"})

    _edit(demo_copy, "lob_systems.yaml", lob)
    _edit(demo_copy, "firewalls.yaml", fw)
    estate = load_estate(demo_copy, policy=False).estate
    bad = {(f.check_id, f.asset, f.key): f for f in config_findings(estate, TODAY) if f.failing}
    first_lob = estate.lob_systems[0].name
    assert set(bad) == {("ce.cloud_mfa", f"lob:{first_lob}", ""),
                        ("ce.firewall_default_deny", "firewall:fw-civic", ""),
                        ("ce.firewall_default_deny", "firewall:fw-central-library", ""),   # any-any from internet
                        ("ce.firewall_admin_interface", "firewall:fw-civic", ""),
                        ("ce.firewall_admin_interface", "firewall:fw-central-library", ""),
                        ("ce.firewall_rule_review", "firewall:fw-civic", "CIV-001")}
    assert "review was due 2026-01-31" in bad[("ce.firewall_rule_review", "firewall:fw-civic", "CIV-001")].observed
    doc = assess(estate, list(bad.values()), TODAY)
    assert doc["verdict"] == AUTO_FAIL
    autos = [r for r in doc["requirements"] if r["auto_fail"]]
    assert doc["requirements"][:len(autos)] == autos   # auto-fail items first
    assert next(r for r in autos if r["id"] == "UAC-7")["status"] == "not_met"
    # Under v3.2 missing cloud MFA is a failure but not an auto-fail.
    v32 = assess(estate, [f for f in bad.values() if f.check_id == "ce.cloud_mfa"], TODAY, version="3.2")
    assert v32["version"] == "3.2" and v32["verdict"] == NOT_READY
    assert all(r["ref"].startswith("CE3.2:") for r in v32["requirements"])


def covering(estate: Estate, fw: Framework) -> list[Finding]:
    """Passing observed results of every requirement's checks on every member of what it applies to."""
    assets = {
        "devices": [f"host:{h.name}" for g in estate.endpoint_groups for h in g.hosts]
        + [f"endpoint-group:{g.name}" for g in estate.endpoint_groups]
        + [f"host:{h.name}" for h in estate.declared_hosts],
        "sites": [f"site:{s.name}" for s in estate.sites],
        "firewalls": [f"firewall:{f.name}" for f in estate.firewalls],
        "cloud_services": [f"lob:{lob.name}" for lob in estate.lob_systems],
    }
    wanted = {(c, a) for r in fw.requirements for c in r.checks
              for a in assets.get(r.applies_to or "", ["organisation:demo"])}
    return [make_finding(c, a, Status.PASS, evidence_kind=EvidenceKind.OBSERVED) for c, a in sorted(wanted)]


def test_ready_only_when_every_requirement_is_met_or_attested() -> None:
    estate = load_estate(Path(__file__).resolve().parents[2] / "inventory" / "demo").estate
    fw = framework("cyber-essentials", "3.3")
    passing = covering(estate, fw)
    manual = [r for r in fw.requirements if r.manual or not r.checks]
    estate.attestations = [Attestation(requirement=fw.ref(r), statement="We do this, see the procedure.",
                                       attested_by="Security Lead", attested_on=TODAY) for r in manual[:-1]]
    doc = assess(estate, passing, TODAY)
    assert doc["verdict"] == NOT_READY
    assert doc["reasons"] == [f"{fw.ref(manual[-1])} needs an attestation (manual)"]
    estate.attestations.append(Attestation(requirement=fw.ref(manual[-1]), statement="We do this as well.",
                                           attested_by="Security Lead", attested_on=TODAY))
    doc = assess(estate, passing, TODAY)
    assert doc["verdict"] == READY
    assert doc["counts"]["met"] + doc["counts"]["manual"] == len(fw.requirements)
    # Evidence the attestation names must exist in the estate directory.
    estate.attestations[0].evidence = ["attestations/no-such-file.pdf"]
    doc = assess(estate, passing, TODAY, estate_dir=Path(__file__).resolve().parents[2] / "inventory" / "demo")
    assert doc["verdict"] == NOT_READY
    assert doc["reasons"] == [f"{estate.attestations[0].requirement}: attestation does not count: its evidence is "
                              "missing from the estate directory"]
    estate.attestations[0].evidence = []
    # An accepted risk is not compliance.
    fail = make_finding("ce.firewall_rule_review", "firewall:fw-civic", Status.FAIL, key="CIV-001")
    apply_waivers([fail], [Waiver(check="ce.firewall_rule_review", justification="Rule review is booked.",
                                  approved_by="SIRO", approved_on=TODAY, expires=date(2027, 1, 1))], TODAY)
    doc = assess(estate, [*passing, fail], TODAY)
    assert doc["verdict"] == NOT_READY
    assert next(r for r in doc["requirements"] if r["id"] == "FW-5")["status"] == "risk_accepted"


def test_scope_statement_and_demo_attestations() -> None:
    demo = Path(__file__).resolve().parents[2] / "inventory" / "demo"
    loaded = load_estate(demo)
    doc = assess(loaded.estate, [], TODAY, estate_dir=demo)
    scope = scope_statement(loaded.estate)
    assert len(scope["sites"]) == 12 and scope["devices_total"] == sum(g["count"] for g in scope["device_groups"])
    assert len(scope["cloud_services"]) == 27
    rows = {r["id"]: r for r in doc["requirements"]}
    assert len(rows) == len(framework("cyber-essentials", "3.3").requirements)
    assert all(r["status"] != "met" for r in rows.values())   # no findings: nothing met
    uac1 = rows["UAC-1"]
    assert uac1["attestation"]["attested_by"].startswith("Aisha Okafor") and not uac1["attestation"]["missing_evidence"]
    assert uac1["record_evidence_at"].endswith("attestations[requirement=CE3.3:UAC-1]")
    assert rows["UAC-4"]["reason"].startswith("attestation expired on 2026-09-30")
