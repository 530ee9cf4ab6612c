"""The inventory plugin derives hosts, groups and connection settings from the estate model."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from .conftest import REPO, copy_estate, edit_endpoints

PLAYBOOKS = REPO / "playbooks"


def plain(data):  # type: ignore[no-untyped-def]
    """ansible-inventory marks data (not templates) as {'__ansible_unsafe': value}: unwrap it."""
    if isinstance(data, dict):
        if set(data) == {"__ansible_unsafe"}:
            return data["__ansible_unsafe"]
        return {k: plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [plain(v) for v in data]
    return data


def inventory(estate: Path, home: Path) -> dict:  # type: ignore[type-arg]
    env = {**os.environ, "ESTATE_DIR": str(estate), "ESTATE_HOME": str(home),
           "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}"}
    env.pop("ESTATE_WINRM_PASSWORD", None)
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-inventory"), "--list", "--export"],
                          cwd=PLAYBOOKS, env=env, capture_output=True, text=True, check=True)
    return plain(json.loads(proc.stdout))


def test_hosts_and_groups_come_from_the_estate(tmp_path: Path) -> None:
    estate = copy_estate(tmp_path / "estate")

    def edit(data: dict) -> None:  # type: ignore[type-arg]
        win = next(g for g in data["endpoint_groups"] if g["name"] == "windows-11-corporate")
        win["hosts"] = [{"name": "win-ws-0142", "address": "192.0.2.42", "site": "central-library"}]

    edit_endpoints(estate, edit)
    inv = inventory(estate, tmp_path / "home")
    hostvars = inv["_meta"]["hostvars"]
    assert inv["windows_endpoints"]["children"] == ["endpoints_windows_11_corporate"]
    assert inv["endpoints_windows_11_corporate"]["hosts"] == ["win-ws-0142"]
    assert "win-ws-0142" in inv["site_central_library"]["hosts"]
    assert inv["endpoints_linux_endpoints"]["hosts"] == ["lab-debian-01"]
    # Intune-managed counts (no hosts) contribute no hosts at all
    assert "endpoints_mobile_corporate" not in inv and "endpoints_windows_10_legacy" not in inv
    assert set(hostvars) == {"win-ws-0142", "lab-debian-01", "fw-civic", "fw-central-library", "fw-north-depot",
                             "fw-northgate-library", "fw-riverside-leisure", "fw-eastfield-hub"}
    assert inv["firewalls_fortinet"]["hosts"] == ["fw-civic"]
    assert "fw-north-depot" in inv["firewalls_nftables"]["hosts"]
    # connection settings are group variables; the password is a lookup, never a value
    gv = inv["endpoints_windows_11_corporate"]["vars"]
    assert gv["ansible_connection"] == "winrm" and gv["ansible_port"] == 5986 and gv["ansible_user"] == "svc-ansible"
    # a trusted template (not wrapped as unsafe data), rendered from the environment at run time
    raw = json.loads(subprocess.run(  # the unwrapped view would hide an unsafe-marked value
        [str(REPO / ".venv" / "bin" / "ansible-inventory"), "--list", "--export"], cwd=PLAYBOOKS,
        env={**os.environ, "ESTATE_DIR": str(estate)}, capture_output=True, text=True, check=True).stdout)
    password = raw["endpoints_windows_11_corporate"]["vars"]["ansible_password"]
    assert password == "{{ lookup('env', 'ESTATE_WINRM_PASSWORD') }}"
    assert gv["local_admins"] == ["HDC\\Workstation Admins"]
    # the lab chroot: per-host connection, address under the state directory
    lab = hostvars["lab-debian-01"]
    assert lab["ansible_connection"] == "community.general.chroot"
    assert lab["ansible_host"] == str(tmp_path / "home" / "lab" / "chroots" / "debian-01")
    assert lab["management_allowlist"] == ["10.10.99.0/24"]


def test_playbooks_keep_no_hand_written_host_list() -> None:
    names = {"lab-debian-01", "fw-civic", "win-ws-0142"}
    for path in PLAYBOOKS.rglob("*"):
        if path.is_file() and path.suffix in (".yml", ".yaml", ".ini", ".cfg"):
            text = path.read_text()
            assert not any(n in text for n in names), path


def test_a_broken_estate_is_one_clear_inventory_error(tmp_path: Path) -> None:
    estate = copy_estate(tmp_path / "estate")
    edit_endpoints(estate, lambda d: d["endpoint_groups"][0].update(count=-1))
    env = {**os.environ, "ESTATE_DIR": str(estate), "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}"}
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-inventory"), "--list"], cwd=PLAYBOOKS, env=env,
                          capture_output=True, text=True)
    assert "endpoint_groups[0].count" in proc.stderr
    assert "endpoints.yaml" in proc.stderr


def test_hosts_of_mdm_only_groups_are_matched_in_the_export_never_reached(tmp_path: Path) -> None:
    estate = copy_estate(tmp_path / "estate")

    def edit(data: dict) -> None:  # type: ignore[type-arg]
        ipads = next(g for g in data["endpoint_groups"] if g["name"] == "mobile-corporate")
        ipads["hosts"] = [{"name": "HDC-IPAD-0001"}]
        win = next(g for g in data["endpoint_groups"] if g["name"] == "windows-11-corporate")
        win["hosts"] = [{"name": "win-ws-0142", "address": "192.0.2.42"}]

    edit_endpoints(estate, edit)
    hosts = inventory(estate, tmp_path / "home")["_meta"]["hostvars"]
    assert "win-ws-0142" in hosts            # intune+ansible: Ansible reaches it too
    assert "HDC-IPAD-0001" not in hosts      # intune only: judged from the export (mdm step)
