"""The evidence commands on the second estate (tests/estates/glenmoray), as Glenmoray's engineer and
auditor run them: seal, rotate-key, verify against a published trusted-keys file, push to
Glenmoray's own evidence account (on Azurite). Nothing of the demo council appears in what they
print or write.

Runs come from `estate scan import` of an ITHC tester's nmap file (a host in Glenmoray's ranges),
the quickest real run the product makes for an estate without a lab.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.config import InfraConfig
from infra.naming import Namer
from security_checks.model.loader import load_estate
from tests.evidence.azurite_server import Azurite, account_key
from tests.evidence.helpers import ESTATE, REPO, cli_env

pytestmark = pytest.mark.slow

GLENMORAY = REPO / "tests" / "estates" / "glenmoray"
# What would give the demo council away (its name and short name as a word or name part).
DEMO = re.compile(r"harrowdale|(?<![a-z0-9])hdc(?![a-z0-9])", re.IGNORECASE)
XML = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<nmaprun scanner="nmap" args="nmap -sS -p 23 10.65.0.30" start="1796200000" version="7.93" xmloutputversion="1.05">
<scaninfo type="syn" protocol="tcp" numservices="1" services="23"/>
<host starttime="1796200001" endtime="1796200009"><status state="up" reason="arp-response" reason_ttl="0"/>
<address addr="10.65.0.30" addrtype="ipv4"/>
<ports><port protocol="tcp" portid="23"><state state="open" reason="syn-ack" reason_ttl="64"/>
<service name="telnet" method="probed" conf="10"/></port></ports>
</host>
<runstats><finished time="1796200009" elapsed="9.00" exit="success"/><hosts up="1" down="0" total="1"/></runstats>
</nmaprun>
"""


def account() -> str:
    est = load_estate(GLENMORAY).estate
    return Namer(est.organisation.short_name, InfraConfig().environment, est.azure.primary_region).name(
        "storage_account", "evidence")


class Glenmoray:
    def __init__(self, root: Path):
        self.root, self.estate, self.home = root, root / "estate", root / "home"
        shutil.copytree(GLENMORAY, self.estate)
        (root / "ithc.xml").write_text(XML)
        self.printed: list[str] = []

    def run(self, *args: str | Path, env: dict[str, str] | None = None, home: Path | None = None
            ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*ESTATE, *[str(a) for a in args]], cwd=self.root, capture_output=True, text=True,
                              env={**cli_env(home or self.home), **(env or {})}, timeout=600, check=False)
        self.printed += [proc.stdout, proc.stderr]
        return proc

    def sealed_run(self) -> Path:
        imported = self.run("scan", "import", "ithc.xml", "--estate", self.estate, "--format", "json",
                            "--fail-on", "none")
        assert imported.returncode == 0, imported.stderr
        sealed = self.run("evidence", "seal", "--run", json.loads(imported.stdout)["run"], "--estate", self.estate,
                          "--format", "json")
        assert sealed.returncode == 0, sealed.stderr
        bundle = Path(json.loads(sealed.stdout)["bundle"])
        return bundle if bundle.is_absolute() else self.root / bundle


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    server = Azurite(tmp_path_factory.mktemp("azurite-gmc"), {account(): account_key()})
    server.start()
    server.service(account()).create_container("evidence")
    yield server
    server.stop()


def test_glenmoray_rotates_its_key_and_its_auditor_verifies_through_the_rotation(tmp_path: Path,
                                                                                  azurite: Azurite) -> None:
    g = Glenmoray(tmp_path)
    first = g.sealed_run()
    old_fp = json.loads((first / "bundle.json").read_text())["signing_key"]["sha256_fingerprint"]
    rotated = g.run("evidence", "rotate-key", "--format", "json")
    assert rotated.returncode == 0, rotated.stderr
    new_fp = json.loads(rotated.stdout)["new_fingerprint"]
    later = g.sealed_run()
    assert json.loads((later / "bundle.json").read_text())["signing_key"]["sha256_fingerprint"] == new_fp

    # Glenmoray's auditor: an empty home, the security group's file naming the key they published first.
    auditor = tmp_path / "auditor"
    auditor.mkdir()
    (auditor / "trusted-keys.txt").write_text(f"# estate-trusted-keys/1\n{old_fp}  Glenmoray Council evidence key\n")
    copy = auditor / "bundles"
    shutil.copytree(g.home / "bundles", copy)
    verified = g.run("evidence", "verify", "--strict", "--trusted-keys", auditor / "trusted-keys.txt", copy,
                     "--format", "json", home=auditor)
    assert verified.returncode == 0, verified.stderr
    [doc] = json.loads(verified.stdout)
    assert [(k["seq"], k["kind"], k["fingerprint"]) for k in doc["keys"]] == [
        (3, "run", new_fp), (2, "key-rotation", old_fp), (1, "run", old_fp)]
    # A trusted-keys file that is not there is bad input, not "trust nothing" and not "trust anything".
    missing = g.run("evidence", "verify", copy, home=auditor, env={"ESTATE_TRUSTED_KEYS": str(tmp_path / "none")})
    assert missing.returncode == 2 and "no such trusted-keys file" in missing.stderr
    # Someone with none of Glenmoray's keys trusted: every key is printed, and it fails.
    stranger = g.run("evidence", "verify", copy, home=tmp_path / "stranger")
    assert stranger.returncode == 1 and "not trusted" in stranger.stderr and old_fp in stranger.stderr

    # Glenmoray's own archive account (Azurite: it drops the immutability policy, so nothing is claimed).
    pushed = g.run("evidence", "push", "--azure-account", account(), "--retain-days", "30", "--format", "json",
                   env={"AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string(account())})
    assert pushed.returncode == 1, pushed.stderr
    out = json.loads(pushed.stdout)
    assert out["destination"].startswith(f"azure://{account()}/evidence/")
    assert {b["state"] for b in out["bundles"]} == {"conflict"}
    assert azurite.accounts[account()] not in pushed.stdout + pushed.stderr

    leaks = [text for text in g.printed if DEMO.search(text)]
    leaks += [str(p) for p in (g.home / "bundles").rglob("*") if p.is_file() and p.suffix in (".txt", ".json")
              and DEMO.search(p.read_text())]
    assert not leaks, leaks
