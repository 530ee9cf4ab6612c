"""Microsoft Entra ID exports: Microsoft Graph v1.0 response bodies saved as JSON files in one directory.

- `conditionalAccessPolicies.json`: GET /identity/conditionalAccess/policies (needed)
- `userRegistrationDetails.json`: GET /reports/authenticationMethods/userRegistrationDetails (needed)
- `groups.json`: GET /groups?$select=id,displayName&$expand=members($select=id,userPrincipalName)
  (optional: without it no excluded group can be shown to hold only break-glass accounts)
- `organization.json`: GET /organization?$select=id,displayName (optional: proves whose tenant it is)

Each file is the response body as Graph sends it: `{"@odata.context": ..., "value": [...]}`. Graph
pages a long collection (`@odata.nextLink`): save every page as `<name>-1.json`, `<name>-2.json`,
... A last page that still carries a next link is refused, because a user or policy missing from
the export would look like one that is fine.

Anything malformed is refused with one line naming the file and the JSON path of the first
problem (`ExportError`); the CLI turns that into exit status 2 before a run opens.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, TypeAdapter, ValidationError

POLICIES = "conditionalAccessPolicies"
REGISTRATION = "userRegistrationDetails"
GROUPS = "groups"
ORGANIZATION = "organization"
REQUESTS = {
    POLICIES: "GET /identity/conditionalAccess/policies",
    REGISTRATION: "GET /reports/authenticationMethods/userRegistrationDetails",
    GROUPS: "GET /groups?$select=id,displayName&$expand=members($select=id,userPrincipalName)",
    ORGANIZATION: "GET /organization?$select=id,displayName",
}
GUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


class ExportError(ValueError):
    """An export that cannot be judged; the message is one line naming the file and the JSON path."""


# Graph sends null for many empty collections and strings: read null as empty, anything else strictly.
def _empty_list(value: Any) -> Any:
    return [] if value is None else value


def _empty_str(value: Any) -> Any:
    return "" if value is None else value


Strs = Annotated[list[str], BeforeValidator(_empty_list)]
Text = Annotated[str, BeforeValidator(_empty_str)]


class Graph(BaseModel):
    # Graph adds properties over time (and beta ones appear in v1.0 exports): ignore what is not read.
    model_config = ConfigDict(extra="ignore", frozen=True)


class GuestsOrExternalUsers(Graph):
    guest_or_external_user_types: Text = Field("", alias="guestOrExternalUserTypes")


class CaUsers(Graph):
    include_users: Strs = Field([], alias="includeUsers")
    exclude_users: Strs = Field([], alias="excludeUsers")
    include_groups: Strs = Field([], alias="includeGroups")
    exclude_groups: Strs = Field([], alias="excludeGroups")
    include_roles: Strs = Field([], alias="includeRoles")
    exclude_roles: Strs = Field([], alias="excludeRoles")
    include_guests: GuestsOrExternalUsers | None = Field(None, alias="includeGuestsOrExternalUsers")
    exclude_guests: GuestsOrExternalUsers | None = Field(None, alias="excludeGuestsOrExternalUsers")


class CaApplications(Graph):
    include_applications: Strs = Field([], alias="includeApplications")
    exclude_applications: Strs = Field([], alias="excludeApplications")
    include_user_actions: Strs = Field([], alias="includeUserActions")


class CaPlatforms(Graph):
    include_platforms: Strs = Field([], alias="includePlatforms")
    exclude_platforms: Strs = Field([], alias="excludePlatforms")


class CaLocations(Graph):
    include_locations: Strs = Field([], alias="includeLocations")
    exclude_locations: Strs = Field([], alias="excludeLocations")


class CaDeviceFilter(Graph):
    mode: Text = ""
    rule: Text = ""


class CaDevices(Graph):
    device_filter: CaDeviceFilter | None = Field(None, alias="deviceFilter")


class CaConditions(Graph):
    users: CaUsers | None = None               # null in a policy for workload identities
    applications: CaApplications
    client_app_types: Strs = Field([], alias="clientAppTypes")
    platforms: CaPlatforms | None = None
    locations: CaLocations | None = None
    devices: CaDevices | None = None
    sign_in_risk_levels: Strs = Field([], alias="signInRiskLevels")
    user_risk_levels: Strs = Field([], alias="userRiskLevels")
    insider_risk_levels: Text = Field("", alias="insiderRiskLevels")
    authentication_flows: dict[str, Any] | None = Field(None, alias="authenticationFlows")


class AuthenticationStrength(Graph):
    id: str
    display_name: Text = Field("", alias="displayName")
    policy_type: Text = Field("", alias="policyType")
    requirements_satisfied: Text = Field("", alias="requirementsSatisfied")


class GrantControls(Graph):
    operator: Text = ""
    built_in_controls: Strs = Field([], alias="builtInControls")
    custom_authentication_factors: Strs = Field([], alias="customAuthenticationFactors")
    terms_of_use: Strs = Field([], alias="termsOfUse")
    authentication_strength: AuthenticationStrength | None = Field(None, alias="authenticationStrength")


class Policy(Graph):
    """A conditionalAccessPolicy (Graph v1.0), as much of it as the judgement reads."""

    id: str
    display_name: Text = Field("", alias="displayName")
    state: Literal["enabled", "disabled", "enabledForReportingButNotEnforced"]
    conditions: CaConditions
    grant_controls: GrantControls | None = Field(None, alias="grantControls")

    @property
    def name(self) -> str:
        return self.display_name or self.id


class Registration(Graph):
    """A userRegistrationDetails entry: one user's MFA registration as Entra ID reports it."""

    id: str
    user_principal_name: str = Field(alias="userPrincipalName")
    user_display_name: Text = Field("", alias="userDisplayName")
    is_admin: StrictBool = Field(alias="isAdmin")
    is_mfa_registered: StrictBool = Field(alias="isMfaRegistered")
    is_mfa_capable: StrictBool = Field(False, alias="isMfaCapable")
    methods_registered: Strs = Field([], alias="methodsRegistered")
    user_type: Text = Field("member", alias="userType")

    @property
    def upn(self) -> str:
        return self.user_principal_name

    @property
    def guest(self) -> bool:
        return self.user_type.lower() == "guest"


class Member(Graph):
    odata_type: Text = Field("", alias="@odata.type")
    id: str
    user_principal_name: Text = Field("", alias="userPrincipalName")

    @property
    def is_user(self) -> bool:
        # Graph types every expanded member; an export that dropped the type still names users by UPN.
        if self.odata_type:
            return self.odata_type.lower() == "#microsoft.graph.user"
        return bool(self.user_principal_name)


class Group(Graph):
    id: str
    display_name: Text = Field("", alias="displayName")
    members: list[Member] | None = None     # None: the export did not expand members


class Organization(Graph):
    id: str
    display_name: Text = Field("", alias="displayName")


@dataclass(frozen=True)
class EntraExport:
    directory: Path
    policies: tuple[Policy, ...]
    users: tuple[Registration, ...]
    groups: dict[str, Group] | None           # by lower-case id; None: no groups.json
    organization: Organization | None
    # Every file read, exactly as read: the run keeps these bytes as the evidence it judged.
    raw: dict[str, bytes] = field(default_factory=dict)

    def files_of(self, stem: str) -> list[str]:
        return [name for name in self.raw if name == f"{stem}.json" or name.startswith(f"{stem}-")]


def load_export(directory: Path, tenant_id: str | None = None) -> EntraExport:
    """Read and check an export directory; `tenant_id`, when given, must match organization.json."""
    if not directory.exists():
        raise ExportError(f"{directory}: no such directory (an Entra ID export: security_checks/identity/README.md)")
    if not directory.is_dir():
        raise ExportError(f"{directory}: not a directory (an Entra ID export is a directory of Graph JSON files)")
    raw: dict[str, bytes] = {}
    policies = _collection(directory, POLICIES, Policy, raw, required=True)
    users = _collection(directory, REGISTRATION, Registration, raw, required=True)
    if not users:
        first = directory / sorted(n for n in raw if n.startswith(REGISTRATION))[0]
        raise ExportError(f"{first}: $.value: no users: an empty report proves nothing (was the export filtered?)")
    group_list = _collection(directory, GROUPS, Group, raw, required=False)
    orgs = _collection(directory, ORGANIZATION, Organization, raw, required=False)
    _unique(directory, POLICIES, raw, [p.id for p in policies], "policy")
    _unique(directory, REGISTRATION, raw, [u.id for u in users], "user")
    organization = None
    if ORGANIZATION + ".json" in raw or any(n.startswith(ORGANIZATION + "-") for n in raw):
        if not orgs:
            raise ExportError(f"{directory / (ORGANIZATION + '.json')}: $.value: empty (expected the tenant)")
        organization = orgs[0]
        if tenant_id and organization.id.lower() != tenant_id.lower():
            raise ExportError(f"{directory / (ORGANIZATION + '.json')}: $.value[0].id: the export is of tenant "
                              f"{organization.id}, not the estate's tenant {tenant_id} (azure.tenant_id)")
    groups = {g.id.lower(): g for g in group_list} if (GROUPS + ".json" in raw or
                                                         any(n.startswith(GROUPS + "-") for n in raw)) else None
    return EntraExport(directory=directory, policies=tuple(policies), users=tuple(users), groups=groups,
                       organization=organization, raw=raw)


# -- pages and JSON paths --------------------------------------------------------------------------

M = TypeVar("M", bound=Graph)


def _pages(directory: Path, stem: str) -> list[Path]:
    single = directory / f"{stem}.json"
    numbered: dict[int, Path] = {}
    for p in directory.glob(f"{stem}-*.json"):
        suffix = p.name[len(stem) + 1:-len(".json")]
        if suffix.isdigit():
            numbered[int(suffix)] = p
    if single.is_file() and numbered:
        raise ExportError(f"{single}: {stem}-N.json pages are there as well: keep one form (one file, or every page)")
    if single.is_file():
        return [single]
    for n in range(1, len(numbered) + 1):
        if n not in numbered:
            raise ExportError(f"{directory / f'{stem}-{n}.json'}: missing: pages {stem}-1.json to "
                              f"{stem}-{max(numbered)}.json must all be there")
    return [numbered[n] for n in sorted(numbered)]


def _collection(directory: Path, stem: str, model: type[M], raw: dict[str, bytes], *, required: bool) -> list[M]:
    pages = _pages(directory, stem)
    if not pages:
        if required:
            raise ExportError(f"{directory / (stem + '.json')}: missing: save the response body of "
                              f"{REQUESTS[stem]} (Graph v1.0) there")
        return []
    adapter: TypeAdapter[M] = TypeAdapter(model)
    out: list[M] = []
    for i, page in enumerate(pages):
        doc = _read_json(page, raw)
        if not isinstance(doc, dict) or not isinstance(doc.get("value"), list):
            raise ExportError(f"{page}: $.value: expected a Graph collection, {{\"value\": [...]}}")
        link = doc.get("@odata.nextLink")
        last = i == len(pages) - 1
        if last and link:
            raise ExportError(f"{page}: $['@odata.nextLink']: Graph has more pages than the export holds: save "
                              f"every page as {stem}-1.json, {stem}-2.json, ... (a missing page would hide entries)")
        if not last and not link:
            raise ExportError(f"{page}: $['@odata.nextLink']: absent, yet {pages[i + 1].name} follows: the pages "
                              "are not one Graph paging chain")
        for j, item in enumerate(doc["value"]):
            out.append(_validate(adapter, item, page, f"$.value[{j}]"))
    return out


def _read_json(path: Path, raw: dict[str, bytes]) -> Any:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ExportError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")   # PowerShell's Out-File writes a byte-order mark
    except UnicodeDecodeError:
        raise ExportError(f"{path}: $: not UTF-8 text") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExportError(f"{path}: $: not JSON (line {exc.lineno} column {exc.colno}: {exc.msg})") from None
    raw[path.name] = data
    return doc


def _validate(adapter: TypeAdapter[M], item: Any, page: Path, where: str) -> M:
    try:
        return adapter.validate_python(item)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = where + "".join(_step(part) for part in first["loc"])
        message = " ".join(str(first["msg"]).split())
        if first["type"] not in ("missing",) and "input" in first:
            message += f" (found {_shown(first['input'])})"
        raise ExportError(f"{page}: {path}: {message}") from None


def _step(part: Any) -> str:
    if isinstance(part, int):
        return f"[{part}]"
    text = str(part)
    return f".{text}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text) else f"[{json.dumps(text)}]"


def _shown(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, dict) else "an object"
    return text if len(text) <= 60 else text[:57] + "..."


def _unique(directory: Path, stem: str, raw: dict[str, bytes], ids: list[str], what: str) -> None:
    seen: set[str] = set()
    for ident in ids:
        if ident.lower() in seen:
            name = sorted(n for n in raw if n.startswith(stem))[0]
            raise ExportError(f"{directory / name}: $.value[*].id: {what} {ident} appears twice (overlapping pages?)")
        seen.add(ident.lower())


def is_guid(value: str) -> bool:
    return bool(GUID.fullmatch(value))

