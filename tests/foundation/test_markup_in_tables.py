"""Text from estates and scans printed by the read commands' tables as written, never as markup."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

from security_checks.checks import make_finding
from security_checks.findings import Status
from security_checks.model.loader import load_estate
from tests.conftest import DEMO, ESTATE_BIN
from tests.runs import run_with


def test_findings_table_prints_brackets_as_written(tmp_path: Path) -> None:
    home = tmp_path / "home"
    asset = "host:[red]ITHC[/] [final]"
    run_with(home, load_estate(DEMO), [make_finding("scan.plaintext_protocol", asset, Status.FAIL, key="tcp/23")],
             today=dt.date.today())
    env = {**os.environ, "ESTATE_HOME": str(home), "COLUMNS": "200"}
    r = subprocess.run([str(ESTATE_BIN), "findings"], capture_output=True, text=True,
                       env=env, check=False)
    assert r.returncode in (0, 1), r.stderr
    assert asset in r.stdout, r.stdout
