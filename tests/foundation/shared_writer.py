"""One writer process of the shared-store tests (test_store_shared.py): an operator's or a site scanner's.

    python -m tests.foundation.shared_writer HOME fail,pass,fail ...

Makes one run per status through the one runner, in HOME, against the database ESTATE_DB names; each
run reports the same finding (a telnet port on one host) failing or passing, so every run moves the
same RAP item. Prints one JSON line per committed run: {"run": id, "status": ..., "rap": counts}.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

from security_checks.checks import make_finding
from security_checks.findings import Severity, Status
from security_checks.model.loader import load_estate
from tests.runs import run_with

DEMO = Path(__file__).resolve().parents[2] / "inventory" / "demo"
TODAY = date(2026, 11, 22)
ASSET, KEY = "host:10.10.30.20", "tcp/23"


def main(argv: list[str]) -> None:
    home, statuses = Path(argv[0]), argv[1].split(",")
    loaded = load_estate(DEMO)
    for status in statuses:
        f = make_finding("scan.plaintext_protocol", ASSET, Status(status), key=KEY, severity=Severity.HIGH)
        out = run_with(home, loaded, [f], today=TODAY, evidence={"scan/telnet.xml": f"<nmaprun>{status}</nmaprun>"})
        print(json.dumps({"run": out.run.id, "status": status, "rap": out.rap}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
