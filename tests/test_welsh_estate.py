"""The Welsh council through the product's commands, as its engineer runs them.

tests/estates/cwm-tawel is Cwm Tawel County Borough Council: Welsh, on PSBA (declared in
organisation.public_network), 34 sites of which sixteen are schools whose pupils' networks the
council runs, and four care homes; no lab, no loopback self-test, no chroot endpoint. Each command
runs as a subprocess of .venv/bin/estate on a private copy with a private --home/--out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.demo_markers import leaks, texts_under
from tests.estates import CWM_TAWEL, GLENMORAY

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
ESTATE_BIN = REPO / ".venv" / "bin" / "estate"


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return f"-> {self.rc}\nstdout: {self.stdout[-3000:]}\nstderr: {self.stderr[-3000:]}"


@dataclass
class Council:
    root: Path
    estate: Path
    home: Path
    out: Path
    env: dict[str, str]
    results: dict[str, Any] = field(default_factory=dict)

    def run(self, *args: str | Path, timeout: float = 900) -> Run:
        p = subprocess.run([str(ESTATE_BIN), *map(str, args)], cwd=self.root, env=self.env, capture_output=True,
                           text=True, timeout=timeout)
        return Run(p.returncode, p.stdout, p.stderr)


@pytest.fixture(scope="module")
def council(tmp_path_factory: pytest.TempPathFactory) -> Council:
    root = tmp_path_factory.mktemp("cwm-tawel")
    estate = root / "estate"
    shutil.copytree(CWM_TAWEL.directory, estate)
    env = {k: v for k, v in os.environ.items() if k not in ("ESTATE_DIR", "ESTATE_ADVISORY_FEED", "ESTATE_DEBUG")}
    env.update(ESTATE_HOME=str(root / "home"), COLUMNS="200")
    return Council(root=root, estate=estate, home=root / "home", out=root / "report", env=env)


@pytest.fixture(scope="module")
def assessed(council: Council) -> Council:
    r = council.run("assess", "--estate", council.estate, "--home", council.home, "--out", council.out,
                    "--fail-on", "none", "--format", "json")
    assert r.rc == 0, str(r)
    council.results["assess"] = r.json
    return council


def other_councils(text: str) -> list[str]:
    """The demo's strings, and the Scottish test council's, in a Welsh council's output."""
    found = leaks(text, "output")
    for marker in ("Glenmoray", "SWAN", "glenmoray.gov.uk"):
        if marker in text:
            found.append(marker)
    return found


def test_it_validates_with_its_34_sites(council: Council) -> None:
    r = council.run("validate", "--estate", council.estate, "--format", "json")
    assert r.rc == 0, str(r)
    assert r.json["counts"]["sites"] == CWM_TAWEL.sites
    text = council.run("validate", "--estate", council.estate)
    said = text.stdout + text.stderr
    assert text.rc == 0 and CWM_TAWEL.name in said and "34 sites" in said, str(text)
    assert not other_councils(r.stdout + text.stdout + text.stderr)


def test_it_plans_with_no_violations(council: Council) -> None:
    r = council.run("infra", "plan", "--estate", council.estate, "--home", council.home, "--format", "json")
    assert r.rc == 0, str(r)
    assert r.json["violations"] == [] and r.json["resource_count"] > 500, r.json
    assert not other_councils(r.stdout)


def test_the_assessment_stores_the_segregation_findings_and_calls_the_network_psba(assessed: Council) -> None:
    c = assessed
    run_id = c.results["assess"]["run"]
    stored = c.run("findings", "--run", run_id, "--home", c.home, "--format", "json")
    assert stored.rc == 0, str(stored)
    by = {(f["check_id"], f["asset"]): f for f in stored.json["findings"]}
    pupils = by[("estate.pupil_network_reaches_corporate", "firewall:fw-sch-03")]
    assert pupils["status"] == "fail" and "firewalls-sites.yaml:" in pupils["observed"]
    devices = by[("estate.device_zone_beyond_controller", "firewall:fw-care-bryn-heulog")]
    # Accepted by the council's waiver CT-RISK-0057, so shown as such, not hidden.
    assert devices["status"] == "fail" and devices["acceptance"]["reference"] == "CT-RISK-0057", devices

    psn = c.run("check", "psn", "--estate", c.estate, "--home", c.home, "--format", "json")
    assert psn.rc in (0, 1), str(psn)
    assert psn.json["network"] == CWM_TAWEL.network == "PSBA"
    assert psn.json["run"] == run_id


def test_no_other_councils_strings_in_its_reports(assessed: Council) -> None:
    found = [f"{rel}: {hit}" for rel, text in texts_under(assessed.out) for hit in other_councils(text)]
    assert not found, "\n".join(found)


def test_the_welsh_and_scottish_estates_are_listed_for_every_council_test() -> None:
    from tests.estates import COUNCILS, NON_DEMO_ESTATES

    assert (GLENMORAY.directory, CWM_TAWEL.directory) == NON_DEMO_ESTATES
    assert all(c.directory.is_dir() for c in COUNCILS)
