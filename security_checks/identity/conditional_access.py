"""Conditional access as enforced: MFA for all users on all cloud apps, who is left out, legacy sign-in.

A policy counts only when it is ENABLED. Report-only (`enabledForReportingButNotEnforced`) policies
write to the sign-in log and enforce nothing; disabled ones do nothing: both are named in the
finding so a reader sees why a policy that looks right does not count.

The MFA baseline is an enabled policy that includes All users and All cloud apps, applies to every
modern client with no narrowing condition (locations, platforms, risk levels, device filters,
authentication flows) and whose grant cannot be satisfied without MFA: `mfa`, or an authentication
strength that grants the MFA claim, required alone or with AND (with OR, any other control on its
own lets a sign-in through without MFA).

Everyone a baseline excludes is judged one by one: a declared break-glass account, or a group
holding only those, is allowed; anyone else (users, groups, roles, guests, applications) fails,
unless another enabled policy of the same strength requires MFA of them by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..checks import make_finding
from ..findings import EvidenceRef, Finding, Status
from .directory import GUESTS, Directory, Principal
from .export import Policy

MFA_ALL_USERS = "identity.mfa_all_users"
MFA_EXCLUSION = "identity.mfa_exclusion"
LEGACY_BLOCKED = "identity.legacy_auth_blocked"

ALL = "All"
ENABLED = "enabled"
REPORT_ONLY = "enabledForReportingButNotEnforced"
MODERN_CLIENTS = ("browser", "mobileAppsAndDesktopClients")
LEGACY_CLIENTS = {"exchangeActiveSync": "Exchange ActiveSync clients",
                  "other": "other legacy clients (IMAP, POP, SMTP AUTH, older Office)"}


# -- what one policy does ---------------------------------------------------------------------------

def state_note(policy: Policy) -> str:
    if policy.state == REPORT_ONLY:
        return "is report-only (enabledForReportingButNotEnforced): a report-only policy enforces nothing"
    if policy.state == "disabled":
        return "is disabled"
    return ""


def mfa_grant(policy: Policy) -> tuple[bool, str]:
    """Whether no sign-in can satisfy the policy's grant without MFA, and the grant in words."""
    gc = policy.grant_controls
    if gc is None:
        return False, "no grant controls"
    if "block" in gc.built_in_controls:
        return False, "blocks access"
    controls = [(c, c == "mfa") for c in gc.built_in_controls]
    strength = gc.authentication_strength
    if strength is not None:
        controls.append((f"authentication strength '{strength.display_name or strength.id}'",
                         strength.requirements_satisfied == "mfa"))
    controls += [(f"custom control {c}", False) for c in gc.custom_authentication_factors]
    controls += [(f"terms of use {t}", False) for t in gc.terms_of_use]
    if not controls:
        return False, "no grant control"
    operator = (gc.operator or "OR").upper()
    words = f" {operator} ".join(name for name, _ in controls)
    if len(controls) == 1 or operator == "AND":
        ok = any(mfa for _, mfa in controls)
    else:
        ok = all(mfa for _, mfa in controls)
        if not ok and any(mfa for _, mfa in controls):
            return False, f"{words}: any one of them lets a sign-in through, so MFA is not required"
    return ok, words if ok else f"{words}: none of them is MFA"


def narrowing(policy: Policy, *, clients: tuple[str, ...] | None = MODERN_CLIENTS) -> list[str]:
    """Conditions that keep the policy from applying to every sign-in (empty: it applies to all)."""
    c = policy.conditions
    out = []
    types = set(c.client_app_types)
    if clients is not None and types and "all" not in types and not set(clients) <= types:
        out.append("only to client apps " + ", ".join(sorted(types)))
    if c.platforms and ("all" not in {p.lower() for p in c.platforms.include_platforms}
                        or c.platforms.exclude_platforms):
        out.append("only on platforms " + (", ".join(c.platforms.include_platforms) or "none")
                   + (f" except {', '.join(c.platforms.exclude_platforms)}" if c.platforms.exclude_platforms else ""))
    if c.locations and (set(c.locations.include_locations) - {ALL} or c.locations.exclude_locations):
        out.append("only from locations " + (", ".join(c.locations.include_locations) or "All")
                   + (f" except {', '.join(c.locations.exclude_locations)}" if c.locations.exclude_locations else ""))
    if c.sign_in_risk_levels:
        out.append("only at sign-in risk " + ", ".join(c.sign_in_risk_levels))
    if c.user_risk_levels:
        out.append("only at user risk " + ", ".join(c.user_risk_levels))
    if c.insider_risk_levels:
        out.append(f"only at insider risk {c.insider_risk_levels}")
    if c.devices and c.devices.device_filter:
        f = c.devices.device_filter
        out.append(f"only to devices the filter selects ({f.mode}: {f.rule})")
    if c.authentication_flows:
        out.append("only to some authentication flows")
    return out


def all_users(policy: Policy) -> bool:
    return policy.conditions.users is not None and ALL in policy.conditions.users.include_users


def all_apps(policy: Policy) -> bool:
    return ALL in policy.conditions.applications.include_applications


def exclusions(policy: Policy) -> list[Principal]:
    out: list[Principal] = []
    u = policy.conditions.users
    if u is not None:
        for ident in u.exclude_users:
            out.append(Principal("guests") if ident == GUESTS else Principal("user", ident))
        out += [Principal("group", g) for g in u.exclude_groups]
        out += [Principal("role", r) for r in u.exclude_roles]
        if u.exclude_guests is not None:
            out.append(Principal("guests", detail=u.exclude_guests.guest_or_external_user_types))
    out += [Principal("app", a) for a in policy.conditions.applications.exclude_applications]
    return out


def includes(policy: Policy, p: Principal) -> bool:
    """Whether the policy names `p` among whom (or what) it applies to and does not exclude it."""
    u, apps = policy.conditions.users, policy.conditions.applications
    if p.kind == "app":
        return (ALL in apps.include_applications or _has(apps.include_applications, p.id)) and \
            not _has(apps.exclude_applications, p.id)
    if u is None:
        return False
    if p.kind == "guests":
        named = ALL in u.include_users or GUESTS in u.include_users or u.include_guests is not None
        return named and GUESTS not in u.exclude_users and u.exclude_guests is None
    lists = {"user": (u.include_users, u.exclude_users), "group": (u.include_groups, u.exclude_groups),
             "role": (u.include_roles, u.exclude_roles)}[p.kind]
    return (ALL in u.include_users or _has(lists[0], p.id)) and not _has(lists[1], p.id)


def _has(ids: list[str], ident: str) -> bool:
    return ident.lower() in {i.lower() for i in ids}


def _strong(policy: Policy) -> bool:
    return mfa_grant(policy)[0] and not narrowing(policy)


def _mfa_intent(policy: Policy) -> bool:
    gc = policy.grant_controls
    return gc is not None and ("mfa" in gc.built_in_controls or gc.authentication_strength is not None)


# -- the judgement ----------------------------------------------------------------------------------

@dataclass
class Gap:
    principal: Principal
    policies: list[str] = field(default_factory=list)   # the baselines that exclude it
    allowed: bool = False
    why: str = ""
    covered_by: str | None = None
    report_only_cover: list[str] = field(default_factory=list)

    @property
    def passes(self) -> bool:
        return self.allowed or self.covered_by is not None


@dataclass
class MfaBaseline:
    baselines: list[Policy]
    near_misses: list[str]
    gaps: list[Gap]

    @property
    def enforced(self) -> bool:
        return bool(self.baselines)

    def uncovered_apps(self) -> set[str]:
        return {g.principal.id.lower() for g in self.gaps if g.principal.kind == "app" and not g.passes}

    def failing_gaps(self) -> list[Gap]:
        return [g for g in self.gaps if not g.passes]


def mfa_baseline(policies: tuple[Policy, ...] | list[Policy], directory: Directory) -> MfaBaseline:
    baselines, near = [], []
    for p in policies:
        if not (all_users(p) and all_apps(p)):
            continue
        reasons = [r for r in (state_note(p),) if r]
        ok, grant = mfa_grant(p)
        if not ok:
            reasons.append(f"its grant does not require MFA ({grant})")
        reasons += [f"it applies {n}" for n in narrowing(p)]
        if not reasons:
            baselines.append(p)
        elif _mfa_intent(p):
            near.append(f"'{p.name}' would require MFA for all users on all cloud apps, but {'; '.join(reasons)}")
    enforcing = [p for p in policies if p.state == ENABLED and _strong(p)]
    report_only = [p for p in policies if p.state == REPORT_ONLY and _strong(p)]
    gaps: dict[str, Gap] = {}
    for b in baselines:
        for principal in exclusions(b):
            gaps.setdefault(principal.key, Gap(principal)).policies.append(b.name)
    for gap in gaps.values():
        gap.allowed, gap.why = directory.allowed(gap.principal)
        if gap.allowed:
            continue
        cover = [q for q in enforcing if _covers(q, gap.principal, directory)]
        gap.covered_by = cover[0].name if cover else None
        gap.report_only_cover = [q.name for q in report_only if _covers(q, gap.principal, directory)]
    return MfaBaseline(baselines, near, sorted(gaps.values(), key=lambda g: (g.passes, g.principal.key)))


def _covers(policy: Policy, p: Principal, directory: Directory) -> bool:
    clean = all(directory.allowed(x)[0] for x in exclusions(policy) if x.kind != "app")
    if p.kind == "app":
        # Every user on that app, leaving out no one the estate does not allow.
        return all_users(policy) and includes(policy, p) and clean
    # Every app, for someone it names, or for everyone when it leaves out only whom the estate allows (a user
    # could be in an excluded group whose members the export does not show).
    return all_apps(policy) and not policy.conditions.applications.exclude_applications and \
        includes(policy, p) and (_names(policy, p) or clean)


def _names(policy: Policy, p: Principal) -> bool:
    u = policy.conditions.users
    if u is None:
        return False
    if p.kind == "guests":
        return GUESTS in u.include_users or u.include_guests is not None
    named = {"user": u.include_users, "group": u.include_groups, "role": u.include_roles}.get(p.kind, [])
    return _has(named, p.id)


def mfa_findings(baseline: MfaBaseline, directory: Directory, asset: str,
                 evidence: list[EvidenceRef]) -> list[Finding]:
    names = [b.name for b in baseline.baselines]
    allowed = [g for g in baseline.gaps if g.allowed]
    failing = baseline.failing_gaps()
    if baseline.enforced:
        observed = (f"{', '.join(repr(n) for n in names)} (enabled) require{'s' if len(names) == 1 else ''} MFA for "
                    "all users on all cloud apps")
        if allowed:
            observed += "; excluded on purpose: " + ", ".join(directory.describe(g.principal) for g in allowed)
        if failing:
            observed += f"; {len(failing)} other exclusion(s) fail: see {MFA_EXCLUSION}"
        status = Status.PASS
    else:
        observed = "no enabled conditional access policy requires MFA for all users on all cloud apps"
        status = Status.FAIL
    if baseline.near_misses:
        observed += "; " + "; ".join(baseline.near_misses)
    out = [make_finding(
        MFA_ALL_USERS, asset, status, observed=observed,
        expected="an enabled conditional access policy requiring MFA for All users on All cloud apps, excluding "
                 "only declared break-glass accounts", evidence=evidence,
        details={"baseline_policies": names, "near_misses": baseline.near_misses,
                 "break_glass_declared_but_not_found": directory.unresolved})]
    for gap in baseline.gaps:
        who = directory.describe(gap.principal)
        where = ", ".join(repr(n) for n in gap.policies)
        if gap.allowed:
            text, status = f"{who} is excluded from {where}: allowed, {gap.why}", Status.PASS
        elif gap.covered_by:
            text, status = (f"{who} is excluded from {where}, but '{gap.covered_by}' (enabled) requires MFA of it",
                            Status.PASS)
        else:
            text, status = f"{who} is excluded from {where}: {gap.why}", Status.FAIL
            if gap.report_only_cover:
                text += (f"; {', '.join(repr(n) for n in gap.report_only_cover)} would require MFA of it but "
                         "is report-only (enabledForReportingButNotEnforced): a report-only policy enforces nothing")
        out.append(make_finding(
            MFA_EXCLUSION, asset, status, key=gap.principal.key, observed=text,
            expected="only declared break-glass accounts (or a group holding only them) excluded from the MFA policy",
            evidence=evidence,
            details={"principal": gap.principal.key, "kind": gap.principal.kind, "name": who,
                     "excluded_by": gap.policies, "covered_by": gap.covered_by,
                     "report_only_cover": gap.report_only_cover}))
    return out


def legacy_findings(policies: tuple[Policy, ...] | list[Policy], directory: Directory, asset: str,
                    evidence: list[EvidenceRef]) -> list[Finding]:
    """Legacy clients cannot do MFA: an enabled policy must block them for all users on all cloud apps."""
    blocked: dict[str, str] = {}
    problems: dict[str, list[str]] = {}     # why, in words -> the clients it holds for
    detail: dict[str, Any] = {}
    for client, words in LEGACY_CLIENTS.items():
        blockers = [p for p in policies if _blocks(p, client)]
        clean, leaks = [], []
        for p in blockers:
            if p.state != ENABLED:
                continue
            gaps = [x for x in exclusions(p) if not directory.allowed(x)[0]]
            if gaps:
                leaks.append(f"'{p.name}' blocks them but excludes " + ", ".join(directory.describe(x) for x in gaps))
            else:
                clean.append(p.name)
        detail[client] = {"blocked_by": clean, "policies": [p.name for p in blockers]}
        if clean:
            blocked[client] = clean[0]
            continue
        why = leaks + [f"'{p.name}' would block them but {state_note(p)}" for p in blockers if p.state != ENABLED]
        problems.setdefault("; ".join(why) or "no conditional access policy blocks them", []).append(words)
    if problems:
        observed = "; ".join(f"{' and '.join(clients)} are not blocked: {why}" for why, clients in problems.items())
        status = Status.FAIL
    else:
        observed, status = ("legacy authentication is blocked for all users on all cloud apps: "
                            + ", ".join(f"{LEGACY_CLIENTS[c].split(' (')[0]} by '{n}'" for c, n in blocked.items()),
                            Status.PASS)
    return [make_finding(
        LEGACY_BLOCKED, asset, status, observed=observed,
        expected="an enabled policy blocking clientAppTypes exchangeActiveSync and other for All users on All "
                 "cloud apps, excluding only declared break-glass accounts", evidence=evidence, details=detail)]


def _blocks(policy: Policy, client: str) -> bool:
    gc = policy.grant_controls
    types = set(policy.conditions.client_app_types)
    return (gc is not None and "block" in gc.built_in_controls and all_users(policy) and all_apps(policy)
            and (client in types or "all" in types) and not narrowing(policy, clients=None))
