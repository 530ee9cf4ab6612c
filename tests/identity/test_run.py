"""The identity step inside a real run: the stored Cyber Essentials verdict for cloud MFA (UAC-7) follows
what the tenant enforces, not what the estate says."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from security_checks.findings import Status
from security_checks.jobs import ASSESS, CE_CONFIG, IDENTITY
from security_checks.model.loader import load_estate
from security_checks.runner import Job, Runner, RunOutcome
from security_checks.store import Store
from tests.estate_copy import copy_demo
from tests.identity.graph import BG1, BG2, good_export

TODAY = date(2026, 11, 22)
JOB = Job("assess", (IDENTITY, CE_CONFIG), "cloud MFA, read back and declared", full_scope=True)


def uac7(home: Path, outcome: RunOutcome, version: str = "3.3") -> dict:
    with Store(home) as store:
        ce = next(v for v in store.verdicts(outcome.run.id) if v.framework == "cyber-essentials"
                  and v.version == version)
        return next(r for r in ce.requirements if r.id == "UAC-7").model_dump()


def test_identity_runs_in_the_assessment_before_the_declared_configuration_checks() -> None:
    names = [s.name for s in ASSESS.steps]
    assert names.index("identity") < names.index("ce-config")


def test_the_demo_tenants_export_fails_cloud_mfa_though_every_declaration_passes(tmp_path: Path) -> None:
    """The demo declares MFA on every service (ce.cloud_mfa passes), but its tenant leaves legacy
    authentication in report-only and has an administrator with no method: UAC-7, an auto-fail item, is not
    met, and the stored row names the identity findings."""
    home = tmp_path / "home"
    out = Runner(load_estate(Path(__file__).resolve().parents[2] / "inventory" / "demo"), home, today=TODAY).run(JOB)
    declared = [f for f in out.findings if f.check_id == "ce.cloud_mfa"]
    assert declared and all(f.status is Status.PASS for f in declared)
    row = uac7(home, out)
    assert row["status"] == "not_met" and row["auto_fail"]
    assert "identity.legacy_auth_blocked on tenant:" in row["reason"]
    assert "identity.admin_mfa_registration on user:adm-r.hughes@harrowdale.gov.uk" in row["reason"]
    with Store(home) as store:
        ce = next(v for v in store.verdicts(out.run.id) if v.framework == "cyber-essentials" and v.in_force)
        assert ce.verdict == "not ready: auto-fail"
        stored = {e.path for e in store.evidence_files(out.run.id)}
    assert {"identity/conditionalAccessPolicies.json", "identity/userRegistrationDetails-1.json",
            "identity/userRegistrationDetails-2.json", "identity/summary.json"} <= stored
    assert {s["name"]: s["status"] for s in out.run.steps}["identity"] == "ran"


def test_a_good_export_passes_its_identity_findings_and_meets_uac7(tmp_path: Path) -> None:
    """A copy of the demo whose break-glass accounts are the export's, and whose services all sign in through
    Entra ID: every identity finding passes, and UAC-7 is met on observed evidence."""
    estate = copy_demo(tmp_path / "estate", {
        "organisation.yaml": [("bg-alpha@harrowdale.onmicrosoft.com", BG1["userPrincipalName"]),
                              ("bg-bravo@harrowdale.onmicrosoft.com", BG2["id"])],
        "lob_systems.yaml": [("saas_fqdns: [harrowdale.legend.example.com], sign_in: own,",
                              "saas_fqdns: [harrowdale.legend.example.com],"),
                             ("     sign_in: own, sign_in_mfa: \"Civica Pay", "     sign_in_mfa: \"Civica Pay")]})
    home = tmp_path / "home"
    out = Runner(load_estate(estate), home, today=TODAY).run(JOB, options={
        "entra_export": good_export(tmp_path / "export")})
    identity = [f for f in out.findings if f.check_id.startswith("identity.")]
    assert len(identity) > 27 and all(f.status is Status.PASS for f in identity), \
        [f.observed for f in identity if f.status is not Status.PASS]
    row = uac7(home, out)
    assert row["status"] == "met", row["reason"]
    assert row["coverage"]["observed"] == row["coverage"]["total"] == 27
    assert uac7(home, out, "3.2")["status"] == "met"


def test_without_an_export_cloud_mfa_rests_on_the_declaration_and_is_never_met(tmp_path: Path) -> None:
    estate = copy_demo(tmp_path / "estate", {"organisation.yaml": [("  entra_export: entra-export\n", "")]})
    home = tmp_path / "home"
    out = Runner(load_estate(estate), home, today=TODAY).run(JOB)
    [only] = [f for f in out.findings if f.check_id.startswith("identity.")]
    assert only.status is Status.NOT_ASSESSED and only.asset.startswith("tenant:")
    assert {s["name"]: s["status"] for s in out.run.steps}["identity"] == "skipped"
    row = uac7(home, out)
    assert row["status"] == "declared" and row["reason"].startswith("declared, not verified"), row
