"""Who is who in an export: names for the ids policies hold, and which exclusions the estate allows.

Conditional access names users, groups, roles and applications by id. A finding must name them the
way a person recognises them, and tell an exclusion the council decided on (a declared break-glass
account, or a group holding only those) from one that lets people sign in without MFA.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model.schema import BreakGlassAccount, LobSystem
from .export import EntraExport, Registration, is_guid

# Directory role template ids as conditional access names them (the same in every tenant); a role not
# listed here is shown by its id.
ROLE_NAMES = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
    "29232cdf-9323-42fd-ade2-1d097af3e4de": "Exchange Administrator",
    "f28a1f50-f6e7-4571-818b-6a12f2af6b6c": "SharePoint Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "966707d0-3269-4727-9be2-8c3a10f19b9d": "Password Administrator",
    "b0f54661-2d74-4c50-afa3-1ec803f12efe": "Billing Administrator",
    "158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
    "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9": "Conditional Access Administrator",
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451": "Global Reader",
}
GUESTS = "GuestsOrExternalUsers"


@dataclass(frozen=True)
class Principal:
    """Someone (or something) a policy includes or excludes: user, group, role, guests or app."""

    kind: str
    id: str = ""
    detail: str = ""    # guests: the guest types the policy names

    @property
    def key(self) -> str:
        # Stable across runs (the finding's key): the kind and the id, never a display name.
        return f"{self.kind}:{self.id.lower()}" if self.id else self.kind


class Directory:
    def __init__(self, export: EntraExport, break_glass: list[BreakGlassAccount],
                 lob_systems: list[LobSystem] | None = None):
        self.export = export
        self.users = {u.id.lower(): u for u in export.users}
        by_upn = {u.upn.lower(): u for u in export.users}
        self.break_glass: dict[str, BreakGlassAccount] = {}    # object id (lower case) -> declaration
        self.unresolved: list[str] = []                         # declared, but in neither id nor UPN form here
        for account in break_glass:
            wanted = account.account.lower()
            user = self.users.get(wanted) or by_upn.get(wanted)
            if user is not None:
                self.break_glass[user.id.lower()] = account
            elif is_guid(wanted):
                self.break_glass[wanted] = account
            else:
                self.unresolved.append(account.account)
        self.apps = {lob.entra_app_id.lower(): lob for lob in (lob_systems or []) if lob.entra_app_id}

    def user(self, ident: str) -> Registration | None:
        return self.users.get(ident.lower())

    def is_break_glass(self, ident: str) -> bool:
        return ident.lower() in self.break_glass

    def describe(self, p: Principal) -> str:
        if p.kind == "user":
            u = self.user(p.id)
            return f"user {u.upn}" if u else f"user {p.id} (not in userRegistrationDetails)"
        if p.kind == "group":
            g = self.export.groups.get(p.id.lower()) if self.export.groups is not None else None
            return f"group '{g.display_name}' ({p.id})" if g and g.display_name else f"group {p.id}"
        if p.kind == "role":
            name = ROLE_NAMES.get(p.id.lower())
            return f"role {name} ({p.id})" if name else f"directory role {p.id}"
        if p.kind == "guests":
            return "guests and external users" + (f" ({p.detail})" if p.detail else "")
        lob = self.apps.get(p.id.lower())
        return f"application {p.id}" + (f" ({lob.title}, lob:{lob.name})" if lob else "")

    def allowed(self, p: Principal) -> tuple[bool, str]:
        """Whether the estate allows `p` to be left out of an MFA or blocking policy, and why (or why not)."""
        if p.kind == "user":
            declared = self.break_glass.get(p.id.lower())
            if declared:
                return True, f"a declared break-glass account ({declared.reason})"
            return False, "not a declared break-glass account (azure.break_glass_accounts): it signs in without MFA"
        if p.kind == "group":
            return self._group_allowed(p.id)
        if p.kind == "role":
            return False, "everyone who holds the role signs in without MFA"
        if p.kind == "guests":
            return False, "guests and external users sign in without MFA"
        return False, "sign-ins to it are not required to use MFA"

    def _group_allowed(self, ident: str) -> tuple[bool, str]:
        if self.export.groups is None:
            return False, ("its members cannot be seen (no groups.json in the export), so it cannot be shown to hold "
                           "only break-glass accounts")
        g = self.export.groups.get(ident.lower())
        if g is None:
            return False, "not in groups.json, so it cannot be shown to hold only break-glass accounts"
        if g.members is None:
            return False, "groups.json does not list its members (export with $expand=members)"
        if not g.members:
            return False, "it is empty: anyone added to it later signs in without MFA"
        others = [m for m in g.members if not (m.is_user and self.is_break_glass(m.id))]
        if others:
            shown = ", ".join(m.user_principal_name or m.id for m in others[:10])
            more = f" and {len(others) - 10} more" if len(others) > 10 else ""
            return False, (f"{len(g.members)} member(s), {len(others)} of them not declared break-glass accounts "
                           f"({shown}{more}): they sign in without MFA")
        names = ", ".join(m.user_principal_name or m.id for m in g.members)
        return True, f"it holds only declared break-glass accounts ({names})"
