"""The failing-findings summary a scan prints: one bounded line per finding or group, and a last line
that counts the checks left out, not the groups (a tester's file has thousands of titles, two checks)."""

from __future__ import annotations

import pytest

from security_checks.cli.common import SUMMARY_OBSERVED, print_failing
from security_checks.findings import FindingBrief, Severity, Status


def _brief(n: int, check: str, observed: str, severity: Severity = Severity.HIGH) -> FindingBrief:
    return FindingBrief(id=f"F-{n:04d}", check_id=check, asset=f"host:10.0.0.{n}", key=f"nessus:{n} tcp/22",
                        status=Status.FAIL, severity=severity, title=f"{check} title {n}", observed=observed,
                        accepted=False)


def test_lines_are_bounded_and_the_rest_counted_by_check(capsys: pytest.CaptureFixture[str]) -> None:
    output = "Remote package installed : libexample_1.2.3-1~deb12u1 " * 10
    briefs = [_brief(n, "scan.ithc_result", f"Nessus {n}: {output}") for n in range(30)]
    briefs += [_brief(100 + n, "scan.host_out_of_scope", f"outside every scope {n}", Severity.LOW) for n in range(5)]
    briefs.append(_brief(200, "scan.ithc_result", "short and whole", Severity.CRITICAL))
    print_failing(briefs, limit=15)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 16
    # worst first, a short observation whole, a long one cut to the limit and marked
    assert lines[0].endswith("scan.ithc_result host:10.0.0.200 nessus:200 tcp/22: short and whole")
    long = lines[1]
    assert long.endswith("...") and "Nessus 0: Remote package installed" in long
    assert len(long.split(": ", 1)[1]) == SUMMARY_OBSERVED
    # 21 left (16 results, 5 hosts out of scope), from two checks, not twenty-one groups
    assert lines[-1] == "  ... and 21 more from 2 check(s) (estate findings --run <id>)"
