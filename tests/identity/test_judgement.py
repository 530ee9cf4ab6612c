"""What the identity step concludes from a tenant's conditional access and MFA registration, case by case:
the tricky configurations a real tenant has, written as Graph exports (tests/identity/graph.py)."""

from __future__ import annotations

import json
from pathlib import Path

from security_checks.findings import EvidenceKind, Status
from tests.identity.conftest import Run
from tests.identity.graph import (
    ADMIN,
    BG1,
    BG2,
    EMERGENCY_GROUP,
    GLOBAL_ADMIN,
    GUEST,
    PHISHING_RESISTANT,
    SECURITY_ADMIN,
    STAFF,
    TENANT,
    good_users,
    group,
    oid,
    policy,
    user,
)

T = f"tenant:{TENANT}"
MFA = ("identity.mfa_all_users", T, "")
LEGACY = ("identity.legacy_auth_blocked", T, "")
USERS = ("identity.user_mfa_registration", T, "members")
LEGACY_BLOCK = policy("CA002: Block legacy authentication", exclude_users=[BG1["id"], BG2["id"]],
                      client_app_types=["exchangeActiveSync", "other"], built_in=["block"])
OWN_LOBS = {"leisure-bookings", "payments"}   # the demo declares their own sign-in


def baseline(**kw) -> dict:  # type: ignore[no-untyped-def]
    return policy("CA001: Require MFA for all users", **{"exclude_groups": [EMERGENCY_GROUP["id"]], **kw})


def exclusion(found: dict, kind: str, ident: str):  # type: ignore[no-untyped-def]
    return found[("identity.mfa_exclusion", T, f"{kind}:{ident.lower()}")]


def test_a_tenant_that_does_it_right_passes_and_says_who_is_left_out_on_purpose(run_identity: Run) -> None:
    result, found = run_identity()
    judged = {k: f for k, f in found.items() if not (k[0] == "identity.lob_sign_in" and k[1][4:] in OWN_LOBS)}
    assert {f.status for f in judged.values()} == {Status.PASS}, [f.observed for f in judged.values()
                                                                  if f.status is not Status.PASS]
    assert "'CA001: Require MFA for all users' (enabled) requires MFA for all users on all cloud apps; excluded on " \
           "purpose: group 'sg-ca-exclude-emergency-access'" in found[MFA].observed
    allowed = exclusion(found, "group", EMERGENCY_GROUP["id"])
    assert "allowed, it holds only declared break-glass accounts (bg-alpha@council.onmicrosoft.com, " \
           "bg-bravo@council.onmicrosoft.com)" in allowed.observed
    assert all(f.evidence_kind is EvidenceKind.OBSERVED for f in judged.values())
    assert {f.asset for f in found.values() if f.check_id == "identity.admin_mfa_registration"} == {
        f"user:{u['userPrincipalName']}" for u in (BG1, BG2, ADMIN)}
    assert "1 guest(s), 1 without a method here, are not judged" in found[USERS].observed
    assert result.skipped is None and "3 conditional access policies (3 enabled, 0 report-only)" in result.summary
    # The evidence is the bytes judged, and what the step concluded from them.
    written = result.data["evidence"]
    assert {"identity/conditionalAccessPolicies.json", "identity/userRegistrationDetails.json", "identity/groups.json",
            "identity/organization.json", "identity/summary.json", "identity/unregistered-users.json"} <= set(written)
    assert found[MFA].evidence[0].path == "identity/conditionalAccessPolicies.json"


def test_a_report_only_policy_enforces_nothing_and_the_finding_says_so(run_identity: Run) -> None:
    _, found = run_identity(policies=[baseline(state="enabledForReportingButNotEnforced"), LEGACY_BLOCK])
    f = found[MFA]
    assert f.status is Status.FAIL
    assert f.observed.startswith("no enabled conditional access policy requires MFA for all users on all cloud apps; "
                                 "'CA001: Require MFA for all users' would require MFA for all users on all cloud "
                                 "apps, but is report-only (enabledForReportingButNotEnforced): a report-only policy "
                                 "enforces nothing")
    # Every cloud service signing in through the tenant fails with it; none is excused by the declaration.
    crm = found[("identity.lob_sign_in", "lob:crm", "")]
    assert crm.status is Status.FAIL and "no enabled policy requires MFA" in crm.observed
    assert not any(k[0] == "identity.mfa_exclusion" for k in found)


def test_a_disabled_policy_does_not_count(run_identity: Run) -> None:
    _, found = run_identity(policies=[baseline(state="disabled"), LEGACY_BLOCK])
    assert found[MFA].status is Status.FAIL and "but is disabled" in found[MFA].observed


def test_an_excluded_broad_group_fails_naming_it_while_the_break_glass_group_passes(run_identity: Run) -> None:
    contractors = group("ICT Contractors", [*STAFF[:3], BG1])
    _, found = run_identity(policies=[baseline(exclude_groups=[EMERGENCY_GROUP["id"], contractors["id"]]),
                                      LEGACY_BLOCK], groups=[EMERGENCY_GROUP, contractors])
    assert found[MFA].status is Status.PASS and "1 other exclusion(s) fail: see identity.mfa_exclusion" in \
        found[MFA].observed
    bad = exclusion(found, "group", contractors["id"])
    assert bad.status is Status.FAIL
    assert f"group 'ICT Contractors' ({contractors['id']}) is excluded from 'CA001: Require MFA for all users': 4 " \
           "member(s), 3 of them not declared break-glass accounts (user01@council.gov.uk, user02@council.gov.uk, " \
           "user03@council.gov.uk): they sign in without MFA" == bad.observed
    assert exclusion(found, "group", EMERGENCY_GROUP["id"]).status is Status.PASS
    # Without groups.json no excluded group can be shown to hold only break-glass accounts.
    _, found = run_identity(policies=[baseline(), LEGACY_BLOCK], groups=None)
    assert "no groups.json in the export" in exclusion(found, "group", EMERGENCY_GROUP["id"]).observed


def test_excluded_break_glass_accounts_are_allowed_and_anyone_else_is_named(run_identity: Run) -> None:
    _, found = run_identity(policies=[baseline(exclude_groups=[], exclude_users=[BG1["id"], BG2["id"],
                                                                                 STAFF[4]["id"]]), LEGACY_BLOCK])
    # BG1 is declared by UPN, BG2 by object id: both are recognised.
    for bg in (BG1, BG2):
        f = exclusion(found, "user", bg["id"])
        assert f.status is Status.PASS and "allowed, a declared break-glass account (" in f.observed
    other = exclusion(found, "user", STAFF[4]["id"])
    assert other.status is Status.FAIL and other.observed.startswith("user user05@council.gov.uk is excluded")
    assert "not a declared break-glass account (azure.break_glass_accounts)" in other.observed
    # With no declaration at all, even the emergency accounts' exclusion is a finding.
    _, found = run_identity(break_glass=[], policies=[baseline(exclude_groups=[], exclude_users=[BG1["id"]]),
                                                      LEGACY_BLOCK])
    assert exclusion(found, "user", BG1["id"]).status is Status.FAIL


def test_an_excluded_admin_role_fails_unless_an_enabled_policy_requires_mfa_of_it(run_identity: Run) -> None:
    admins = policy("CA003: Phishing-resistant MFA for administrators", include_users=[],
                    include_roles=[GLOBAL_ADMIN, SECURITY_ADMIN], built_in=[], strength=PHISHING_RESISTANT)
    _, found = run_identity(policies=[baseline(exclude_roles=[GLOBAL_ADMIN]), LEGACY_BLOCK])
    f = exclusion(found, "role", GLOBAL_ADMIN)
    assert f.status is Status.FAIL
    assert f"role Global Administrator ({GLOBAL_ADMIN}) is excluded from 'CA001: Require MFA for all users': " \
           "everyone who holds the role signs in without MFA" == f.observed
    _, found = run_identity(policies=[baseline(exclude_roles=[GLOBAL_ADMIN]), LEGACY_BLOCK, admins])
    f = exclusion(found, "role", GLOBAL_ADMIN)
    assert f.status is Status.PASS and "but 'CA003: Phishing-resistant MFA for administrators' (enabled) requires " \
                                       "MFA of it" in f.observed
    report_only = {**admins, "state": "enabledForReportingButNotEnforced"}
    _, found = run_identity(policies=[baseline(exclude_roles=[GLOBAL_ADMIN]), LEGACY_BLOCK, report_only])
    f = exclusion(found, "role", GLOBAL_ADMIN)
    assert f.status is Status.FAIL and "would require MFA of it but is report-only" in f.observed


def test_excluded_guests_and_applications_fail(run_identity: Run) -> None:
    app = oid("app", "payroll")
    _, found = run_identity(policies=[baseline(exclude_guests="b2bCollaborationGuest,b2bCollaborationMember",
                                               exclude_apps=[app]), LEGACY_BLOCK])
    assert found[("identity.mfa_exclusion", T, "guests")].status is Status.FAIL
    assert exclusion(found, "app", app).status is Status.FAIL
    # Which cloud service that application is cannot be told without its entra_app_id ...
    crm = found[("identity.lob_sign_in", "lob:crm", "")]
    assert crm.status is Status.NOT_ASSESSED and "does not give this system's entra_app_id" in crm.observed
    # ... and with it, the one excluded fails and the others pass.
    _, found = run_identity(policies=[baseline(exclude_apps=[app]), LEGACY_BLOCK],
                            lob_edits={"crm": {"entra_app_id": app}, "waste": {"entra_app_id": oid("app", "waste")}})
    assert found[("identity.lob_sign_in", "lob:crm", "")].status is Status.FAIL
    assert "excluded from 'CA001: Require MFA for all users'" in found[("identity.lob_sign_in", "lob:crm", "")].observed
    assert found[("identity.lob_sign_in", "lob:waste", "")].status is Status.PASS


def test_legacy_authentication_must_be_blocked_by_an_enabled_policy(run_identity: Run) -> None:
    _, found = run_identity(policies=[baseline()])
    assert found[LEGACY].status is Status.FAIL
    assert found[LEGACY].observed == ("Exchange ActiveSync clients and other legacy clients (IMAP, POP, SMTP AUTH, "
                                      "older Office) are not blocked: no conditional access policy blocks them")
    _, found = run_identity(policies=[baseline(), {**LEGACY_BLOCK, "state": "enabledForReportingButNotEnforced"}])
    assert "'CA002: Block legacy authentication' would block them but is report-only (enabledForReportingButNot" \
           "Enforced): a report-only policy enforces nothing" in found[LEGACY].observed
    scanners = group("Scan-to-email devices", [STAFF[0]])
    leaky = policy("CA002: Block legacy authentication", exclude_groups=[EMERGENCY_GROUP["id"], scanners["id"]],
                   client_app_types=["exchangeActiveSync", "other"], built_in=["block"])
    _, found = run_identity(policies=[baseline(), leaky], groups=[EMERGENCY_GROUP, scanners])
    assert found[LEGACY].status is Status.FAIL and "blocks them but excludes group 'Scan-to-email devices'" in \
        found[LEGACY].observed
    eas_only = policy("Block ActiveSync", client_app_types=["exchangeActiveSync"], built_in=["block"],
                      exclude_groups=[EMERGENCY_GROUP["id"]])
    _, found = run_identity(policies=[baseline(), eas_only])
    assert found[LEGACY].observed.startswith("other legacy clients (IMAP, POP, SMTP AUTH, older Office) are not "
                                             "blocked")


def test_an_authentication_strength_grant_counts_as_mfa_when_it_grants_the_mfa_claim(run_identity: Run) -> None:
    _, found = run_identity(policies=[baseline(built_in=[], strength=PHISHING_RESISTANT), LEGACY_BLOCK])
    assert found[MFA].status is Status.PASS
    weak = {**PHISHING_RESISTANT, "id": oid("strength", "pw"), "displayName": "Password only",
            "policyType": "custom", "requirementsSatisfied": "none", "allowedCombinations": ["password"]}
    _, found = run_identity(policies=[baseline(built_in=[], strength=weak), LEGACY_BLOCK])
    assert found[MFA].status is Status.FAIL
    assert "its grant does not require MFA (authentication strength 'Password only': none of them is MFA)" in \
        found[MFA].observed


def test_mfa_or_another_control_is_not_mfa_and_narrowed_policies_do_not_count(run_identity: Run) -> None:
    _, found = run_identity(policies=[baseline(built_in=["mfa", "compliantDevice"], operator="OR"), LEGACY_BLOCK])
    assert found[MFA].status is Status.FAIL
    assert "mfa OR compliantDevice: any one of them lets a sign-in through, so MFA is not required" in \
        found[MFA].observed
    _, found = run_identity(policies=[baseline(built_in=["mfa", "compliantDevice"], operator="AND"), LEGACY_BLOCK])
    assert found[MFA].status is Status.PASS
    trusted = {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}
    _, found = run_identity(policies=[baseline(locations=trusted), LEGACY_BLOCK])
    assert found[MFA].status is Status.FAIL and "it applies only from locations All except AllTrusted" in \
        found[MFA].observed
    _, found = run_identity(policies=[baseline(client_app_types=["browser"]), LEGACY_BLOCK])
    assert "it applies only to client apps browser" in found[MFA].observed


def test_unregistered_admins_are_one_finding_each_and_users_one_finding_listing_them(run_identity: Run) -> None:
    admins = [user(f"adm-{n}@council.gov.uk", f"Admin {n}", admin=True, registered=n == 0) for n in range(3)]
    staff = [user(f"new{n:02d}@council.gov.uk", f"New Starter {n:02d}", registered=False) for n in range(25)]
    result, found = run_identity(users=[*good_users(), *admins, *staff])
    assert found[("identity.admin_mfa_registration", "user:adm-0@council.gov.uk", "")].status is Status.PASS
    for n in (1, 2):
        f = found[("identity.admin_mfa_registration", f"user:adm-{n}@council.gov.uk", "")]
        assert f.status is Status.FAIL and f.severity.value == "high"
        assert f.observed == f"administrator Admin {n} (adm-{n}@council.gov.uk) is not registered for MFA " \
                             "(methods registered: none)"
    grouped = found[USERS]
    assert grouped.status is Status.FAIL and sum(1 for k in found if k[0] == "identity.user_mfa_registration") == 1
    assert grouped.observed.startswith("25 of 37 member account(s) not registered for MFA: new00@council.gov.uk, "
                                       "new01@council.gov.uk")
    assert "and 5 more (the full list is in the evidence, identity/unregistered-users.json)" in grouped.observed
    listing = json.loads(result.data["evidence"]["identity/unregistered-users.json"])
    assert len(listing["members"]) == 25
    assert [g["userPrincipalName"] for g in listing["guests"]] == [GUEST["userPrincipalName"]]


def test_a_service_with_its_own_sign_in_is_never_passed_on_the_declaration(run_identity: Run) -> None:
    _, found = run_identity(lob_edits={"crm": {"sign_in": "own"},
                                       "waste": {"sign_in": "own", "sign_in_mfa": "Bartec TOTP for every account"},
                                       "fleet": {"sign_in": "own", "sign_in_mfa": "codes", "mfa_enforced": False}})
    crm = found[("identity.lob_sign_in", "lob:crm", "")]
    assert crm.status is Status.FAIL and "does not say how the service enforces MFA (lob_systems[].sign_in_mfa)" in \
        crm.observed
    waste = found[("identity.lob_sign_in", "lob:waste", "")]
    assert waste.status is Status.NOT_ASSESSED and waste.evidence_kind is EvidenceKind.DECLARED
    assert "declared: Bartec TOTP for every account" in waste.observed
    assert found[("identity.lob_sign_in", "lob:fleet", "")].status is Status.FAIL


def test_no_export_is_one_not_assessed_finding_saying_how_to_provide_one(run_identity: Run) -> None:
    result, found = run_identity(no_export=True)
    assert list(found) == [MFA]
    f = found[MFA]
    assert f.status is Status.NOT_ASSESSED
    assert "azure.entra_export" in f.observed and "--entra-export DIR" in f.observed
    # Skipped, so the run closes no remediation item it did not look at again.
    assert result.skipped and "no Entra ID export" in result.skipped


def test_an_unreadable_export_is_an_error_never_a_pass(run_identity: Run, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "conditionalAccessPolicies.json").write_text("{}")
    result, found = run_identity(export=broken)
    assert list(found) == [MFA] and found[MFA].status is Status.ERROR and found[MFA].failing
    assert "conditionalAccessPolicies.json: $.value: expected a Graph collection" in found[MFA].observed
    assert result.skipped


def test_the_estates_declared_export_is_read_relative_to_the_estate(run_identity: Run) -> None:
    """The demo council's own export (inventory/demo/entra-export): mostly good, with its two real findings."""
    result, found = run_identity(declared="entra-export", break_glass=[
        {"account": "bg-alpha@harrowdale.onmicrosoft.com", "reason": "demo emergency access one"},
        {"account": "bg-bravo@harrowdale.onmicrosoft.com", "reason": "demo emergency access two"}])
    assert "from azure.entra_export" in result.summary
    failing = sorted((k[0], k[1]) for k, f in found.items() if f.failing)
    assert failing == [("identity.admin_mfa_registration", "user:adm-r.hughes@harrowdale.gov.uk"),
                       ("identity.legacy_auth_blocked", T)]
    assert "is report-only (enabledForReportingButNotEnforced)" in found[LEGACY].observed
    assert found[MFA].status is Status.PASS
    unread = sorted(k[1] for k, f in found.items() if f.status is Status.NOT_ASSESSED)
    assert unread == ["lob:leisure-bookings", "lob:payments"]


def test_an_exclusion_is_covered_only_by_an_enabled_policy_that_surely_applies_to_it(run_identity: Run) -> None:
    """A second all-users baseline covers someone the first leaves out, unless it leaves out a group whose
    members cannot be seen (the person may be in it); naming them explicitly always covers them."""
    first = baseline(exclude_users=[STAFF[0]["id"]])
    second = policy("CA010: MFA for all users (new tenant baseline)", exclude_groups=[EMERGENCY_GROUP["id"]])
    _, found = run_identity(policies=[first, second, LEGACY_BLOCK])
    assert exclusion(found, "user", STAFF[0]["id"]).status is Status.PASS
    hidden = oid("group", "unexported")
    leaky = policy("CA010: MFA for all users (new tenant baseline)", exclude_groups=[hidden])
    _, found = run_identity(policies=[first, leaky, LEGACY_BLOCK])
    assert exclusion(found, "user", STAFF[0]["id"]).status is Status.FAIL
    named = policy("CA011: MFA for the mayor's office", include_users=[STAFF[0]["id"]], exclude_groups=[hidden])
    _, found = run_identity(policies=[first, named, LEGACY_BLOCK])
    assert exclusion(found, "user", STAFF[0]["id"]).status is Status.PASS
