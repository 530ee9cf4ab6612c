"""Ansible inventory from the estate model: hosts and groups derived, never a second host list.

    # playbooks/inventory/estate.yml
    plugin: estate
    estate_dir: ../../inventory/demo   # relative to this file; env ESTATE_DIR wins

Groups: by function (windows_endpoints, linux_endpoints, firewalls, firewalls_<vendor>), by
endpoint group (endpoints_<name>, with - as _), by site (site_<name>). Connection settings come from each
endpoint group's `connection` (winrm, psrp, ssh, chroot, local) as group variables; a password is
only ever `lookup('env', <password_env>)`, so the value stays in the environment (an AWX
credential), never in the inventory. Endpoint groups without `hosts` (Intune-managed counts)
contribute no hosts. A chroot host's relative address is taken from the state directory
(ESTATE_HOME), where `estate devices endpoint up` builds the lab endpoint.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin

try:  # ansible-core 2.19+: inventory values are data unless marked as templates
    from ansible.template import trust_as_template
except ImportError:  # older cores template inventory strings anyway
    def trust_as_template(value: Any) -> Any:
        return value

DOCUMENTATION = r"""
name: estate
short_description: hosts and groups from the estate model (inventory/*.yaml)
description:
  - Loads the estate model with security_checks.model.loader and derives endpoint and firewall hosts,
    groups by function, endpoint group and site, and connection variables.
options:
  plugin:
    description: must be C(estate)
    required: true
    choices: [estate]
  estate_dir:
    description: estate model directory, relative to the inventory file
    type: str
    default: ../../inventory/demo
    env:
      - name: ESTATE_DIR
  estate_home:
    description: state directory that relative chroot addresses are resolved against
    type: str
    default: .estate
    env:
      - name: ESTATE_HOME
"""

EXAMPLES = r"""
plugin: estate
estate_dir: ../../inventory/demo
"""

# The repository root: the plugin imports the estate package from the same checkout, so an AWX
# project or a plain clone works without installing it.
REPO_ROOT = Path(__file__).resolve().parents[2]

CONNECTION_VARS: dict[str, dict[str, Any]] = {
    "winrm": {"ansible_connection": "winrm", "ansible_winrm_transport": "ntlm",
              "ansible_winrm_server_cert_validation": "validate"},
    "psrp": {"ansible_connection": "psrp", "ansible_psrp_protocol": "https"},
    "ssh": {"ansible_connection": "ssh"},
    "chroot": {"ansible_connection": "community.general.chroot"},
    "local": {"ansible_connection": "local"},
}
FIREWALL_VARS: dict[str, dict[str, Any]] = {
    "fortinet": {"ansible_connection": "httpapi", "ansible_network_os": "fortinet.fortios.fortios",
                 "ansible_httpapi_use_ssl": True, "ansible_httpapi_validate_certs": True},
    "nftables": {"ansible_connection": "ssh"},
}


# Groups an MDM manages on its own: their listed hosts are matched in the MDM's export, never reached.
MDM_ONLY = ("intune", "google-admin")


def group_name(name: str) -> str:
    """An Ansible-safe group name: letters, digits and underscores."""
    return "".join(c if c.isalnum() else "_" for c in name)


def connection_vars(conn: Any) -> dict[str, Any]:
    out = dict(CONNECTION_VARS.get(conn.kind, {}))
    if conn.user:
        out["ansible_user"] = conn.user
    if conn.port:
        out["ansible_port"] = conn.port
    if conn.password_env:
        # A template, not a value: resolved on the controller from the environment at run time.
        out["ansible_password"] = trust_as_template("{{ lookup('env', '" + conn.password_env + "') }}")
        out["estate_password_env"] = conn.password_env
    return out


class InventoryModule(BaseInventoryPlugin):
    NAME = "estate"

    def verify_file(self, path: str) -> bool:
        return super().verify_file(path) and path.endswith(("estate.yml", "estate.yaml"))

    def parse(self, inventory: Any, loader: Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        base = Path(path).resolve().parent
        # The environment wins over the file, so `estate devices --estate DIR` and an AWX job's
        # variables can point one inventory file at any estate.
        estate_dir = (base / (os.environ.get("ESTATE_DIR") or str(self.get_option("estate_dir")))).resolve()
        home = Path(str(self.get_option("estate_home")))
        home = home if home.is_absolute() else (Path.cwd() / home).resolve()
        if str(REPO_ROOT) not in sys.path:
            sys.path.insert(0, str(REPO_ROOT))
        try:
            from security_checks.model.loader import EstateError, load_estate
        except ImportError as exc:
            raise AnsibleParserError(f"estate inventory: cannot import the estate package ({exc})") from exc
        try:
            loaded = load_estate(estate_dir)
        except EstateError as exc:
            raise AnsibleParserError(f"estate inventory: {estate_dir} is not a valid estate:\n{exc}") from exc
        self.populate(loaded.estate, home)
        self.populate_firewalls(loaded)

    def populate(self, estate: Any, home: Path) -> None:
        inv = self.inventory
        inv.set_variable("all", "estate_organisation", estate.organisation.short_name)
        inv.set_variable("all", "unsupported_software", [s.model_dump() for s in estate.unsupported_software])
        allowlists = {fw.site: list(fw.management_allowlist) for fw in estate.firewalls}
        for function in ("windows_endpoints", "linux_endpoints", "firewalls"):
            inv.add_group(function)
        for eg in estate.endpoint_groups:
            if not eg.hosts or eg.managed_by in MDM_ONLY:
                continue  # counts, or devices only an MDM manages (judged from its export): nothing to reach
            family = eg.os.family
            function = f"{family}_endpoints"
            inv.add_group(function)
            group = inv.add_group(f"endpoints_{group_name(eg.name)}")
            inv.add_child(function, group)
            for key, value in connection_vars(eg.connection).items():
                inv.set_variable(group, key, value)
            inv.set_variable(group, "local_admins", list(eg.local_admins))
            inv.set_variable(group, "removable_admins", list(eg.removable_admins))
            if eg.esu_until:
                inv.set_variable(group, "extended_security_updates_until", eg.esu_until.isoformat())
            inv.set_variable(group, "endpoint_group", eg.name)
            inv.set_variable(group, "endpoint_os", eg.os.value)
            inv.set_variable(group, "managed_by", eg.managed_by)
            for h in eg.hosts:
                inv.add_host(h.name, group=group)
                kind = h.connection.kind if h.connection else eg.connection.kind
                if h.connection:
                    for key, value in connection_vars(h.connection).items():
                        inv.set_variable(h.name, key, value)
                if h.address:
                    address = h.address
                    if kind == "chroot" and not Path(address).is_absolute():
                        address = str(home / address)
                    inv.set_variable(h.name, "ansible_host", address)
                if h.site:
                    site = inv.add_group(f"site_{group_name(h.site)}")
                    inv.add_host(h.name, group=site)
                    inv.set_variable(h.name, "estate_site", h.site)
                    if h.site in allowlists:
                        inv.set_variable(h.name, "management_allowlist", allowlists[h.site])
        for fw in estate.firewalls:
            vendor = inv.add_group(f"firewalls_{group_name(fw.vendor)}")
            inv.add_child("firewalls", vendor)
            for key, value in FIREWALL_VARS.get(fw.vendor, {}).items():
                inv.set_variable(vendor, key, value)
            inv.add_host(fw.name, group=vendor)
            site = inv.add_group(f"site_{group_name(fw.site)}")
            inv.add_host(fw.name, group=site)
            inv.set_variable(fw.name, "estate_site", fw.site)
            inv.set_variable(fw.name, "firewall_vendor", fw.vendor)
            inv.set_variable(fw.name, "management_allowlist", list(fw.management_allowlist))
            if fw.management_address:
                inv.set_variable(fw.name, "ansible_host", fw.management_address)
            else:
                # Nothing to connect to (e.g. Azure Firewall: managed through Pulumi, not Ansible).
                inv.set_variable(fw.name, "estate_unreachable_by_design", True)

    def populate_firewalls(self, loaded: Any) -> None:
        """The declared policy of each firewall a role configures, as the host variable estate_firewall.

        A FortiGate's API token is only ever `lookup('env', ESTATE_FORTIOS_TOKEN_<NAME>)`; its admin
        HTTPS port is the firewall's declared management port.
        """
        from security_checks.firewalls.declared import CA_ENV, declared_firewall, managed_firewalls, token_env

        inv = self.inventory
        for fw in managed_firewalls(loaded):
            declared = declared_firewall(loaded, fw)
            inv.set_variable(fw.name, "estate_firewall", declared)
            if fw.vendor == "fortinet":
                inv.set_variable(fw.name, "ansible_httpapi_port", declared["admin_port"])
                inv.set_variable(fw.name, "estate_token_env", token_env(fw.name))
                inv.set_variable(fw.name, "ansible_httpapi_session_key", {
                    "access_token": trust_as_template("{{ lookup('env', '" + token_env(fw.name) + "') }}")})
                if os.environ.get(CA_ENV):
                    inv.set_variable(fw.name, "ansible_httpapi_ca_path", os.environ[CA_ENV])
