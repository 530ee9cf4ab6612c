"""Which of declared, applied and observed disagrees, and how the stored findings carry it to the report.

No lab here: flows are built as the matrix builds them (plan() from the demo estate), given the
applied and observed verdicts a lab run would, and judged by the matrix's own code. The lab tests
(test_lab.py, root) show the same from real probes and real rulesets.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from security_checks.findings import Status
from security_checks.lab.topology import build_lab
from security_checks.model.loader import LoadedEstate
from security_checks.report import write_reports
from security_checks.runner import Job, Runner
from security_checks.scan.segregation import Flow, attribute, findings_for, plan
from security_checks.step import Step, StepContext, StepResult
from security_checks.store import Store

_PLANS: dict[str, list[Flow]] = {}


def _flow(loaded: LoadedEstate, src_zone: str, dst: str, port: int) -> Flow:
    flows = _PLANS.setdefault(loaded.digest, plan(loaded, build_lab(loaded.estate)))   # planned once
    return replace(next(f for f in flows if f.src_zone == src_zone and f.src_site == "civic-centre"
                        and f.dst == dst and f.port == port))


@pytest.mark.parametrize(("declared", "applied", "observed", "who", "says"), [
    ("deny", "accept", "open", "applied", "the router lets it through"),
    ("deny", "deny", "open", "observed", "another path or device lets it through"),
    ("allow", "accept", "silent", "observed", "a listener or route issue"),
    ("allow", "deny", "blocked", "applied", "the router blocks what the policy allows"),
    ("deny", "accept", "blocked", "applied", "nothing answered on the wire"),
    ("allow", "deny", "closed", "applied", "it is not the path that decides"),
    ("deny", "unknown", "open", "undetermined", "which of them is wrong is not known"),
    ("deny", "deny", "blocked", "", ""),
    ("allow", "accept", "closed", "", ""),
    ("allow", "unknown", "open", "", ""),
])
def test_the_odd_one_out(loaded: LoadedEstate, declared: str, applied: str, observed: str, who: str,
                         says: str) -> None:
    f = replace(_flow(loaded, "corporate", "10.10.30.20", 445), declared=declared, applied=applied,
                observed=observed, applied_rule="why")
    got, text = attribute(f)
    assert got == who and says in text


def test_the_declared_policy_itself_is_blamed_when_all_three_let_guest_through(loaded: LoadedEstate) -> None:
    f = replace(_flow(loaded, "guest-wifi", "10.10.30.20", 445), declared="allow", applied="accept",
                observed="open", expected=False)
    who, text = attribute(f)
    assert who == "declared" and "segregation rules" in text


def test_the_declared_side_names_the_estate_rule_and_its_line(loaded: LoadedEstate) -> None:
    f = _flow(loaded, "public-wifi", "10.10.30.60", 443)
    fi = next(i for i, fw in enumerate(loaded.estate.firewalls) if fw.name == "fw-civic")
    ri = next(i for i, r in enumerate(loaded.estate.firewalls[fi].rules) if r.id == f.declared_rule)
    assert (f.declared, f.declared_firewall) == ("deny", "fw-civic")
    assert f.declared_where == "{}:{}".format(*loaded.where(("firewalls", fi, "rules", ri)))


def test_the_report_shows_the_three_columns_from_the_stored_findings(loaded: LoadedEstate, tmp_path: Path) -> None:
    smb = replace(_flow(loaded, "guest-wifi", "10.10.30.20", 445), applied="accept", applied_firewall="fw-civic",
                  applied_rule="accept by inet estate forward rule #30 (PLANTED FAULT guest-to-file-shares: ...)",
                  observed="open", reply="SA")
    smb.disagrees, smb.disagreement = attribute(smb)
    ok = replace(_flow(loaded, "corporate", "10.10.30.20", 445), applied="accept", applied_firewall="fw-civic",
                 applied_rule="accept by inet estate forward rule #32 (CIV-001 ...)", observed="open", reply="SA")

    def matrix(ctx: StepContext) -> StepResult:
        ev = ctx.run.write_evidence("scan/segregation/matrix.json", "{}", "segregation matrix")
        return StepResult(findings_for(ctx.loaded, [smb, ok], [ev]), "2 probes")

    home = tmp_path / "home"
    run = Runner(loaded, home).run(Job("scan", (Step("segregation", matrix, "matrix", ("scan.*",)),), "matrix"))
    router = next(f for f in run.findings if f.check_id == "scan.segregation_disagreement" and f.failing)
    assert router.asset == "firewall:fw-civic" and "rule #30" in router.observed
    assert router.details["verdicts"]["disagrees"] == "applied"
    assert router.severity.value == "high"
    passed = [f for f in run.findings if f.check_id == "scan.segregation_disagreement" and f.status is Status.PASS]
    assert passed == []   # fw-civic has a disagreement; no ruleset was read, so no router is cleared
    with Store(home) as store:
        write_reports(store, run.run.id, tmp_path / "out")
    html = (tmp_path / "out" / "index.html").read_text()
    table = html.split("Segregation: declared, applied, observed", 1)[1].split("</table>", 1)[0]
    assert "guest-wifi@civic-centre (10.10.40.10) -&gt; file-01 (10.10.30.20) tcp/445" in table
    assert "<td>deny<div" in table and "<td>accept<div" in table and "<td>open</td>" in table
    assert "<b>applied</b>" in table and "rule #30" in table and f'href="#{router.id}"' in table
    assert "corporate@civic-centre" not in table   # agreeing flows raise no finding, so no row
