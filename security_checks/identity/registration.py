"""MFA registration as Entra ID reports it (userRegistrationDetails): administrators first.

A policy that requires MFA of someone with no method registered asks them to register at their
next sign-in, so whoever holds the password then chooses the second factor. Each administrator
without a method is a finding of its own (`user:<upn>`); member accounts are judged together in one
finding that lists them, so a council of thousands gets one line, not thousands. Guests register
in their home tenant, so they are listed but not judged here (conditional access still requires
MFA of them: identity.mfa_all_users).
"""

from __future__ import annotations

from ..checks import make_finding
from ..findings import EvidenceRef, Finding, Status
from .directory import Directory
from .export import Registration

ADMIN_REGISTRATION = "identity.admin_mfa_registration"
USER_REGISTRATION = "identity.user_mfa_registration"
SHOWN = 20          # names in a finding's text; the full list is in the evidence


def admin_findings(users: tuple[Registration, ...], directory: Directory,
                   evidence: list[EvidenceRef]) -> list[Finding]:
    out = []
    for u in sorted((u for u in users if u.is_admin), key=lambda u: u.upn.lower()):
        methods = ", ".join(u.methods_registered) or "none"
        name = f"{u.user_display_name} ({u.upn})" if u.user_display_name else u.upn
        if u.is_mfa_registered:
            observed = f"administrator {name} is registered for MFA (methods: {methods})"
            if not u.is_mfa_capable:
                observed += "; none of those methods is allowed by the authentication methods policy (not MFA capable)"
        else:
            observed = f"administrator {name} is not registered for MFA (methods registered: {methods})"
        if directory.is_break_glass(u.id):
            observed += "; a declared break-glass account" + ("" if u.is_mfa_registered else (
                ": give it a FIDO2 security key or passkey (Microsoft requires MFA for the admin portals of every "
                "account, emergency ones included)"))
        out.append(make_finding(
            ADMIN_REGISTRATION, f"user:{u.upn.lower()}", Status.PASS if u.is_mfa_registered else Status.FAIL,
            observed=observed, expected="every administrator registered for MFA", evidence=evidence,
            details={"user_id": u.id, "upn": u.upn, "methods_registered": list(u.methods_registered),
                     "is_mfa_capable": u.is_mfa_capable}))
    return out


def unregistered_members(users: tuple[Registration, ...]) -> tuple[list[Registration], list[Registration]]:
    """(members not registered, guests not registered), each in UPN order; administrators are judged apart."""
    def order(u: Registration) -> str:
        return u.upn.lower()

    members = sorted((u for u in users if not u.is_admin and not u.guest and not u.is_mfa_registered), key=order)
    guests = sorted((u for u in users if not u.is_admin and u.guest and not u.is_mfa_registered), key=order)
    return members, guests


def user_findings(users: tuple[Registration, ...], asset: str, evidence: list[EvidenceRef]) -> list[Finding]:
    members_total = sum(1 for u in users if not u.is_admin and not u.guest)
    guests_total = sum(1 for u in users if not u.is_admin and u.guest)
    missing, guests = unregistered_members(users)
    if missing:
        shown = ", ".join(u.upn for u in missing[:SHOWN])
        more = f" and {len(missing) - SHOWN} more" if len(missing) > SHOWN else ""
        observed = (f"{len(missing)} of {members_total} member account(s) not registered for MFA: {shown}{more} "
                    "(the full list is in the evidence, identity/unregistered-users.json)")
    else:
        observed = f"all {members_total} member account(s) are registered for MFA"
    if guests_total:
        observed += (f"; {guests_total} guest(s), {len(guests)} without a method here, are not judged: guests "
                     "register MFA in their home tenant")
    return [make_finding(
        USER_REGISTRATION, asset, Status.FAIL if missing else Status.PASS, key="members", observed=observed,
        expected="every member account registered for MFA", evidence=evidence,
        details={"members": members_total, "unregistered": len(missing),
                 "unregistered_upns": [u.upn for u in missing[:50]], "guests": guests_total,
                 "guests_unregistered": len(guests)})]
