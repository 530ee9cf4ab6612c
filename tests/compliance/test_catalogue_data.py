"""The control catalogue as data: complete, consistent, and referring only to real check ids."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from security_checks.catalogue import controls_for, framework, frameworks
from security_checks.catalogue.matrix import RequirementStatus, evaluate
from security_checks.checks import make_finding
from security_checks.findings import Status
from security_checks.model.loader import load_estate
from security_checks.model.schema import Attestation

DEMO = Path(__file__).resolve().parents[2] / "inventory" / "demo"

# The check ids the other engines produce (from the project brief), plus this engine's own.
SCAN = {f"scan.{c}" for c in ("undeclared_host", "undeclared_port", "declared_service_down", "declared_service_ok",
                              "weak_tls", "weak_ssh", "weak_smb", "plaintext_protocol", "management_exposed",
                              "segregation_breach", "http_headers", "certificate", "vulnerable_version",
                              "eol_product", "ithc_result", "host_out_of_scope", "segregation_disagreement")}
DEVICES = {"devices.unreachable"} | {f"devices.linux.{c}" for c in (
    "unattended_upgrades", "firewall", "ssh", "automount", "faillock", "sudoers", "disk_encryption", "antimalware",
    "unsupported_software")} | {f"devices.win.{c}" for c in (
        "updates", "firewall", "autorun", "screen_lock", "lockout", "local_admins", "builtin_admin", "laps",
        "bitlocker", "defender", "unsupported_software", "os_support", "software_inventory")} | {
    f"mdm.{c}" for c in ("device_missing", "os_supported", "check_in", "encryption", "compliance", "jailbreak")}
INFRA = {f"infra.policy.{c}" for c in (
    "allowed_locations", "required_tags", "no_public_ip_corp", "mgmt_ports_from_internet", "subnet_nsg",
    "storage_https_tls", "keyvault_purge_protection", "sql_tde_auditing", "backup_matches_tier",
    "diagnostics_to_workspace", "ssid_vlan_segregation", "public_ssid_isolation", "corporate_ssid_no_psk",
    "site_range_overlap", "vpn_ikev2_proposals", "psn_route_isolation")}
OWN = {"patch.security_update_overdue", "patch.security_update_pending", "patch.up_to_date", "patch.unsupported_os",
       "patch.unsupported_software", "patch.advisory_feed_stale", "ce.cloud_mfa", "ce.firewall_default_deny",
       "ce.firewall_admin_interface", "ce.firewall_rule_review", "ce.firewall_mgmt_port_from_internet"}
IDENTITY = {f"identity.{c}" for c in ("mfa_all_users", "mfa_exclusion", "legacy_auth_blocked", "admin_mfa_registration",
                                       "user_mfa_registration", "lob_sign_in")}
FIREWALLS = {f"firewalls.{c}" for c in (
    "rule_missing", "rule_different", "rule_order", "rule_extra", "any_any", "rule_shadowed", "logging_off",
    "rule_disabled", "rule_review_overdue", "rule_unused", "default_not_deny", "admin_exposed", "admin_mfa")} | {
    f"patch.firmware_{c}" for c in ("update_overdue", "update_pending", "up_to_date", "unsupported")}
KNOWN = SCAN | DEVICES | INFRA | OWN | IDENTITY | FIREWALLS


def test_every_catalogue_names_only_known_checks_and_unique_ids() -> None:
    for fw in frameworks():
        ids = [r.id for r in fw.requirements]
        assert len(ids) == len(set(ids)), fw.prefix
        for req in fw.requirements:
            unknown = set(req.checks) - KNOWN
            assert not unknown, f"{fw.ref(req)} names unknown checks {unknown}"
            assert req.checks or req.manual, f"{fw.ref(req)} has no check and is not manual"


def test_ce_versions_cover_the_five_controls_and_the_auto_fail_items() -> None:
    v33, v32 = framework("cyber-essentials", "3.3"), framework("cyber-essentials", "3.2")
    assert framework("cyber-essentials") is v33  # newest by default
    controls = {r.control for r in v33.requirements}
    assert {"firewalls", "secure-configuration", "security-update-management", "user-access-control",
            "malware-protection"} <= controls
    assert {r.id for r in v33.requirements if r.auto_fail} == {"SUM-4", "UAC-7"}
    assert {r.id for r in v32.requirements if r.auto_fail} == {"SUM-4"}
    assert [r.id for r in v33.requirements] == [r.id for r in v32.requirements]
    sum4 = next(r for r in v33.requirements if r.id == "SUM-4")
    assert "patch.security_update_overdue" in sum4.checks and "14 days" in sum4.requirement
    # procedural requirements are manual
    assert all(next(r for r in v33.requirements if r.id == i).manual for i in ("UAC-1", "UAC-3", "UAC-8", "SUM-2"))


def test_make_finding_stamps_control_references_from_the_catalogue() -> None:
    f = make_finding("patch.security_update_overdue", "host:x", Status.FAIL, key="openssl")
    assert {"CE3.3:SUM-4", "CE3.2:SUM-4", "PSN:COCO-3"} <= set(f.controls)
    assert "CE3.3:UAC-7" in controls_for("ce.cloud_mfa")
    assert "CIS:WIN-AUTORUN-1" in controls_for("devices.win.autorun")


def test_requirement_is_never_met_without_passing_evidence_and_manual_never_met() -> None:
    fw = framework("cyber-essentials", "3.3")
    today = date(2026, 11, 22)
    estate = load_estate(DEMO).estate
    # Pass findings for every check the catalogue names, on an asset the estate does not have:
    # they cover nothing the requirements apply to, so nothing is met.
    passing = [make_finding(c, "asset:a", Status.PASS) for c in sorted({c for r in fw.requirements for c in r.checks})]
    results = {r.ref: r for r in evaluate(fw, passing, [], today, estate)}
    for ref, r in results.items():
        if r.requirement.manual or not r.requirement.checks:
            assert r.status is RequirementStatus.MANUAL, ref
        else:
            assert r.status is RequirementStatus.NOT_ASSESSED and "examined none" in r.reason, (ref, r.reason)
    # Nothing ran: nothing is met.
    assert all(r.status is not RequirementStatus.MET for r in evaluate(fw, [], [], today, estate))
    # An error is not evidence of compliance.
    err = make_finding("ce.cloud_mfa", "lob:x", Status.ERROR)
    uac7 = next(r for r in evaluate(fw, [err], [], today, estate) if r.requirement.id == "UAC-7")
    assert uac7.status is RequirementStatus.NOT_MET


@pytest.mark.parametrize("expires, expected", [(date(2027, 1, 1), "attested"), (date(2026, 11, 1), "awaiting")])
def test_attestation_counts_only_until_it_expires(expires: date, expected: str) -> None:
    fw = framework("cyber-essentials", "3.3")
    att = Attestation(requirement="CE3.3:UAC-1", statement="Joiners are approved by managers.",
                      attested_by="A. Person", attested_on=date(2026, 1, 1), expires=expires)
    r = next(r for r in evaluate(fw, [], [att], date(2026, 11, 22), load_estate(DEMO).estate)
             if r.requirement.id == "UAC-1")
    assert r.status is RequirementStatus.MANUAL
    assert r.reason.startswith(expected)
