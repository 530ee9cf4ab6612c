"""Entra ID exports for the tests, in exactly the shape Microsoft Graph v1.0 returns them.

Every property a real GET /identity/conditionalAccess/policies or
GET /reports/authenticationMethods/userRegistrationDetails response carries is written, nulls
included (`platforms: null`, `authenticationStrength: null` beside its `@odata.context`), so the
reader is tested against what a tenant sends, not against the subset it happens to read.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

GRAPH = "https://graph.microsoft.com/v1.0/$metadata#"
TENANT = "7f3c2a1e-5b4d-4c6e-9a8b-1d2e3f4a5b6c"       # the demo council's tenant (inventory/demo)
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
SECURITY_ADMIN = "194ae4cb-b126-40b2-bd5b-6091b380977d"
EXCHANGE_ADMIN = "29232cdf-9323-42fd-ade2-1d097af3e4de"
PHISHING_RESISTANT = {
    "id": "00000000-0000-0000-0000-000000000004", "createdDateTime": "2021-12-01T08:00:00Z",
    "modifiedDateTime": "2021-12-01T08:00:00Z", "displayName": "Phishing-resistant MFA",
    "description": "Phishing-resistant, Passwordless methods for the strongest authentication, such as a FIDO2 "
                   "security key", "policyType": "builtIn", "requirementsSatisfied": "mfa",
    "allowedCombinations": ["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor"]}


def oid(kind: str, n: int | str) -> str:
    """A stable made-up object id (GUID form) for a test user, group, policy or app."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://estate.test/{kind}/{n}"))


def policy(name: str, *, ident: str | None = None, state: str = "enabled", include_users: Iterable[str] = ("All",),
           exclude_users: Iterable[str] = (), include_groups: Iterable[str] = (), exclude_groups: Iterable[str] = (),
           include_roles: Iterable[str] = (), exclude_roles: Iterable[str] = (), include_apps: Iterable[str] = ("All",),
           exclude_apps: Iterable[str] = (), client_app_types: Iterable[str] = ("all",),
           built_in: Iterable[str] = ("mfa",), operator: str = "OR", strength: dict[str, Any] | None = None,
           locations: dict[str, Any] | None = None, platforms: dict[str, Any] | None = None,
           sign_in_risk: Iterable[str] = (), exclude_guests: str | None = None,
           created: str = "2024-03-04T10:12:33.5513454Z", modified: str | None = "2025-09-18T14:02:11.2093345Z"
           ) -> dict[str, Any]:
    ident = ident or oid("policy", name)
    return {
        "id": ident,
        "templateId": None,
        "displayName": name,
        "createdDateTime": created,
        "modifiedDateTime": modified,
        "state": state,
        "sessionControls": None,
        "conditions": {
            "userRiskLevels": [],
            "signInRiskLevels": list(sign_in_risk),
            "clientAppTypes": list(client_app_types),
            "servicePrincipalRiskLevels": [],
            "insiderRiskLevels": None,
            "platforms": platforms,
            "locations": locations,
            "devices": None,
            "clientApplications": None,
            "authenticationFlows": None,
            "applications": {
                "includeApplications": list(include_apps),
                "excludeApplications": list(exclude_apps),
                "includeUserActions": [],
                "includeAuthenticationContextClassReferences": [],
                "applicationFilter": None,
            },
            "users": {
                "includeUsers": list(include_users),
                "excludeUsers": list(exclude_users),
                "includeGroups": list(include_groups),
                "excludeGroups": list(exclude_groups),
                "includeRoles": list(include_roles),
                "excludeRoles": list(exclude_roles),
                "includeGuestsOrExternalUsers": None,
                "excludeGuestsOrExternalUsers": None if exclude_guests is None else {
                    "guestOrExternalUserTypes": exclude_guests, "externalTenants": {
                        "@odata.type": "#microsoft.graph.conditionalAccessAllExternalTenants",
                        "membershipKind": "all"}},
            },
        },
        "grantControls": {
            "operator": operator,
            "builtInControls": list(built_in),
            "customAuthenticationFactors": [],
            "termsOfUse": [],
            "authenticationStrength@odata.context": f"{GRAPH}identity/conditionalAccess/policies('{ident}')/"
                                                    "grantControls/authenticationStrength/$entity",
            "authenticationStrength": strength,
        },
    }


def user(upn: str, name: str, *, admin: bool = False, registered: bool = True, guest: bool = False,
         methods: Iterable[str] | None = None, ident: str | None = None,
         updated: str = "2026-11-19T02:14:07.0813312Z") -> dict[str, Any]:
    chosen = list(methods) if methods is not None else (
        ["microsoftAuthenticatorPush", "softwareOneTimePasscode"] if registered else [])
    return {
        "id": ident or oid("user", upn),
        "userPrincipalName": upn,
        "userDisplayName": name,
        "userType": "guest" if guest else "member",
        "isAdmin": admin,
        "isSsprRegistered": registered,
        "isSsprEnabled": True,
        "isSsprCapable": registered,
        "isMfaRegistered": registered,
        "isMfaCapable": registered,
        "isPasswordlessCapable": "fido2" in chosen or "windowsHelloForBusiness" in chosen,
        "isSystemPreferredAuthenticationMethodEnabled": True,
        "systemPreferredAuthenticationMethods": ["push"] if "microsoftAuthenticatorPush" in chosen else (
            ["Fido2"] if "fido2" in chosen else []),
        "userPreferredMethodForSecondaryAuthentication": "push" if "microsoftAuthenticatorPush" in chosen else "none",
        "methodsRegistered": chosen,
        "lastUpdatedDateTime": updated,
    }


def group(name: str, members: Iterable[dict[str, Any]], *, ident: str | None = None) -> dict[str, Any]:
    return {"id": ident or oid("group", name), "displayName": name,
            "members": [{"@odata.type": "#microsoft.graph.user", "id": m["id"],
                         "userPrincipalName": m["userPrincipalName"]} for m in members]}


def page(kind: str, items: list[dict[str, Any]], next_link: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"@odata.context": GRAPH + kind, "value": items}
    if next_link:
        doc["@odata.nextLink"] = next_link
    return doc


def write_export(directory: Path, policies: list[dict[str, Any]], users: list[dict[str, Any]], *,
                 groups: list[dict[str, Any]] | None = None, tenant: str | None = TENANT,
                 user_pages: int = 1) -> Path:
    """An export directory as a person saves it: one file per Graph response body (or page)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "conditionalAccessPolicies.json").write_text(
        json.dumps(page("identity/conditionalAccess/policies", policies), indent=2))
    if user_pages == 1:
        (directory / "userRegistrationDetails.json").write_text(
            json.dumps(page("reports/authenticationMethods/userRegistrationDetails", users), indent=2))
    else:
        size = -(-len(users) // user_pages)
        for n in range(user_pages):
            chunk = users[n * size:(n + 1) * size]
            link = (f"https://graph.microsoft.com/v1.0/reports/authenticationMethods/userRegistrationDetails"
                    f"?$skiptoken={oid('skiptoken', n)}") if n < user_pages - 1 else None
            (directory / f"userRegistrationDetails-{n + 1}.json").write_text(
                json.dumps(page("reports/authenticationMethods/userRegistrationDetails", chunk, link), indent=2))
    if groups is not None:
        (directory / "groups.json").write_text(
            json.dumps(page("groups(id,displayName,members(id,userPrincipalName))", groups), indent=2))
    if tenant is not None:
        (directory / "organization.json").write_text(json.dumps(page(
            "organization(id,displayName)", [{"id": tenant, "displayName": "Test Council"}]), indent=2))
    return directory


# -- a tenant that does everything right -------------------------------------------------------------

BG1 = user("bg-alpha@council.onmicrosoft.com", "Emergency Access 1", admin=True, methods=["fido2"])
BG2 = user("bg-bravo@council.onmicrosoft.com", "Emergency Access 2", admin=True, methods=["fido2"])
ADMIN = user("adm-s.khan@council.gov.uk", "Sana Khan (admin)", admin=True,
             methods=["fido2", "microsoftAuthenticatorPush"])
STAFF = [user(f"user{n:02d}@council.gov.uk", f"Staff Member {n:02d}") for n in range(1, 13)]
GUEST = user("j.smith_supplier.example#EXT#@council.onmicrosoft.com", "J Smith (Supplier)", guest=True,
             registered=False)
BREAK_GLASS = [{"account": BG1["userPrincipalName"], "reason": "Emergency access, FIDO2 key in the civic centre safe"},
               {"account": BG2["id"], "reason": "Second emergency access account, key held off-site"}]
EMERGENCY_GROUP = group("sg-ca-exclude-emergency-access", [BG1, BG2])


def good_policies() -> list[dict[str, Any]]:
    return [
        policy("CA001: Require MFA for all users", exclude_groups=[EMERGENCY_GROUP["id"]]),
        policy("CA002: Block legacy authentication", exclude_users=[BG1["id"], BG2["id"]],
               client_app_types=["exchangeActiveSync", "other"], built_in=["block"]),
        policy("CA003: Phishing-resistant MFA for administrators", include_users=[],
               include_roles=[GLOBAL_ADMIN, SECURITY_ADMIN], exclude_users=[BG1["id"], BG2["id"]], built_in=[],
               strength=PHISHING_RESISTANT),
    ]


def good_users() -> list[dict[str, Any]]:
    return [BG1, BG2, ADMIN, *STAFF, GUEST]


def good_export(directory: Path, *, tenant: str | None = TENANT, **kwargs: Any) -> Path:
    return write_export(directory, kwargs.pop("policies", good_policies()), kwargs.pop("users", good_users()),
                        groups=kwargs.pop("groups", [EMERGENCY_GROUP]), tenant=tenant, **kwargs)
