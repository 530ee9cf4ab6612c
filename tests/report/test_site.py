"""The report site, PDF and machine outputs for a real store with two runs (delta, trend, waivers)."""

from __future__ import annotations

import csv
import json
import re
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
from openpyxl import load_workbook

from security_checks.report import write_reports
from tests.report.builders import demo_loaded, make_two_runs, patched_catalogue

SCHEMA = Path(__file__).with_name("sarif-schema-2.1.0.json")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    root = tmp_path_factory.mktemp("site")
    with patched_catalogue(root):
        loaded = demo_loaded()
        store, a, b = make_two_runs(root / "home", loaded)
        paths = write_reports(store, b, root / "out")
        yield SimpleNamespace(out=root / "out", paths=paths, store=store, a=a, b=b, loaded=loaded)


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for k, v in attrs:
            if k in ("href", "src") and v is not None:
                self.refs.append((tag, k, v))
            if k == "id" and v:
                self.ids.add(v)


def parse(path: Path) -> Links:
    p = Links()
    p.feed(path.read_text())
    return p


def text(path: Path) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", path.read_text()))


def test_every_page_and_output_is_written(site: SimpleNamespace) -> None:
    for rel in ("index.html", "controls.html", "audit.html", "board-report.pdf", "machine/findings.json",
                "machine/findings.sarif", "machine/oscal-assessment-results.json", "machine/oscal-poam.json",
                "machine/remediation-plan.csv", "machine/remediation-plan.xlsx"):
        assert (site.out / rel).stat().st_size > 0, rel
    assert set(site.paths.values()) <= {p for p in site.out.rglob("*") if p.is_file()}


def test_site_is_self_contained_and_its_relative_links_resolve(site: SimpleNamespace) -> None:
    for page in ("index.html", "controls.html", "audit.html"):
        html = (site.out / page).read_text()
        assert "<link" not in html and not re.search(r"<script[^>]+src=", html), page
        for tag, attr, ref in parse(site.out / page).refs:
            assert not re.match(r"^[a-z]+:", ref), f"{page}: {tag} {attr}={ref} is not relative"
            target = ref.split("#")[0].split("?")[0]
            if target:
                assert (site.out / target).is_file(), f"{page}: link to {target} is broken"
            if "#" in ref:
                frag = ref.split("#", 1)[1]
                assert frag in parse(site.out / (target or page)).ids, f"{page}: anchor {ref} does not exist"


def test_dashboard_counts_delta_and_trend(site: SimpleNamespace) -> None:
    index = text(site.out / "index.html")
    # Run 2: port (high, still open), printer password (high, new, accepted), no-AV (medium, waiver expired).
    assert "1 new, 1 fixed, 2 still open" in index.replace("<b>", "")
    html = (site.out / "index.html").read_text()
    assert html.count("<rect") >= 3 and "last 2 run(s)" in index  # the SVG trend has bars for both runs
    data = json.loads((site.out / "machine/findings.json").read_text())
    assert data["delta"]["previous_run"] == site.a
    fixed = data["delta"]["fixed"]
    assert len(fixed) == 1 and data["summary"]["open_by_severity"] == {
        "critical": 0, "high": 1, "medium": 1, "low": 0, "info": 0}


def test_waivers_show_accepted_and_expired_returns_to_open(site: SimpleNamespace) -> None:
    html = (site.out / "index.html").read_text()
    printer = re.search(r'<tr id="(F-[0-9a-f]+)" data-state="accepted"[^>]*data-asset="device:printer-3f"', html)
    assert printer, "the waived printer finding is shown as accepted"
    row = html[printer.start():html.index("</tr>", printer.start())]
    assert "Gareth Lloyd" in row and "2027-03-31" in row and "RISK-0042" in row
    kiosk = re.search(r'<tr id="F-[0-9a-f]+" data-state="reopened"[^>]*data-asset="host:kiosk-1"', html)
    assert kiosk, "the finding whose waiver expired is open again"
    assert "acceptance expired on 2026-10-31" in html[kiosk.start():html.index("</tr>", kiosk.start())]
    audit = text(site.out / "audit.html")
    assert "RISK-0031" in audit and "expired" in audit


def test_remediation_text_beside_every_failure_and_text_is_escaped(site: SimpleNamespace) -> None:
    html = (site.out / "index.html").read_text()
    for m in re.finditer(r'<tr id="F-[0-9a-f]+" data-state="(open|reopened|accepted)".*?</tr>', html, re.S):
        assert 'class="remedy"' in m.group(0)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)" in html


def test_control_matrix_has_manual_items_attestations_and_drill_down(site: SimpleNamespace) -> None:
    html = (site.out / "controls.html").read_text()
    t = text(site.out / "controls.html")
    assert "Priya Shah (HR Systems)" in t and "attestations/leavers.pdf" in t  # UAC-1 attested
    assert "awaiting attestation" in t  # UAC-2 manual, never met by a tool
    fw1 = html[html.index('id="r-CE3.3-FW-1"'):]
    fw1 = fw1[:fw1.index("</tr>")]
    assert "not met" in fw1 and "Close the port" in fw1 and 'href="evidence/scan/selftest.xml"' in fw1
    sc1 = html[html.index('id="r-CE3.3-SC-1"'):]
    assert "risk accepted" in sc1[:sc1.index("</tr>")]
    # The verdict the run stored at commit, with its reasons, and the remediation action plan.
    assert "Verdict: not ready (assessed 2026-11-22" in t and "CE3.3:FW-1 not met" in t
    assert "CE3.3:SUM-1" in t and "auto-fail) not met" not in t   # the patch passed in this run
    rap = html[html.index('id="rap"'):]
    assert "t.undeclared_port title" in rap and "2026-12-06" in rap   # high: 14 days from 22 November


def test_audit_page_scope_evidence_index_and_skipped_steps(site: SimpleNamespace) -> None:
    t = text(site.out / "audit.html")
    assert "Aisha Okafor (Security Lead)" in t and "127.0.0.1/32" in t  # scan scopes with who authorised
    assert "lab skipped not root" in t
    # The estate model by its digest, not by the operator's directory.
    run = site.store.get_run(site.b)
    assert f"sha256 {run.estate_digest}" in t and run.estate_dir and run.estate_dir not in t
    ev = site.store.evidence_dir(site.b)
    import hashlib

    for rel in ("scan/selftest.xml", "devices/artifacts/x/job_events/1.json"):
        assert hashlib.sha256((ev / rel).read_bytes()).hexdigest() in t
        assert (site.out / "evidence" / rel).read_bytes() == (ev / rel).read_bytes()
    # The runner's `command` file (environment, secrets) is indexed as withheld and never copied.
    assert "devices/artifacts/x/command" in t and "withheld" in t
    assert not (site.out / "evidence/devices/artifacts/x/command").exists()
    assert not any(b"hunter2" in p.read_bytes() for p in site.out.rglob("*") if p.is_file())


def test_sarif_validates_against_the_oasis_schema(site: SimpleNamespace) -> None:
    schema = json.loads(SCHEMA.read_text())
    doc = json.loads((site.out / "machine/findings.sarif").read_text())
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(doc)
    results = doc["runs"][0]["results"]
    assert len(results) == 5
    accepted = [r for r in results if r.get("suppressions")]
    assert len(accepted) == 1 and accepted[0]["suppressions"][0]["status"] == "accepted"
    broken = json.loads(json.dumps(doc))
    broken["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate(broken)


def test_oscal_documents_round_trip_through_trestle_models(site: SimpleNamespace) -> None:
    from trestle.oscal.assessment_results import AssessmentResults
    from trestle.oscal.poam import PlanOfActionAndMilestones

    ar_raw = json.loads((site.out / "machine/oscal-assessment-results.json").read_text())
    ar = AssessmentResults.model_validate(ar_raw["assessment-results"])
    again = json.loads(ar.oscal_serialize_json(pretty=False, wrapped=False))
    assert again == ar_raw["assessment-results"]
    result = ar.results[0]
    states = {f.target.target_id: f.target.status.state.value for f in result.findings or []}
    assert states["CE3.3_FW-1"] == "not-satisfied" and states["CE3.3_SUM-1"] == "satisfied"
    assert len(result.observations or []) == 5
    poam_raw = json.loads((site.out / "machine/oscal-poam.json").read_text())
    poam = PlanOfActionAndMilestones.model_validate(poam_raw["plan-of-action-and-milestones"])
    assert len(poam.poam_items) == 3
    assert len(poam.risks or []) == 3
    statuses = sorted(r["status"] for r in poam_raw["plan-of-action-and-milestones"]["risks"])
    assert statuses == ["open", "open", "risk-accepted"]


def test_remediation_plan_csv_and_xlsx_agree(site: SimpleNamespace) -> None:
    rows = list(csv.DictReader((site.out / "machine/remediation-plan.csv").open(newline="")))
    assert [r["severity"] for r in rows] == ["high", "medium", "high"]  # open worst first, accepted last
    assert rows[-1]["status"] == "accepted" and rows[-1]["accepted_by"].startswith("Gareth Lloyd")
    assert rows[1]["status"] == "reopened" and rows[0]["fix_by"]
    ws = load_workbook(site.out / "machine/remediation-plan.xlsx").active
    assert ws is not None
    xrows = list(ws.iter_rows(values_only=True))
    assert [x[1] for x in xrows[1:]] == [r["finding_id"] for r in rows]


def test_pdf_is_a4_with_page_numbers_and_the_four_parts(site: SimpleNamespace) -> None:
    pdf = site.out / "board-report.pdf"
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "595.28 x 841.89" in info or "595.276 x 841.89" in info  # A4 in points
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))  # type: ignore[union-attr]
    body = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert f"Page 1 of {pages}" in body and f"Page {pages} of {pages}" in body
    for part in ("Summary", "Top risks", "Control matrix", "Remediation plan"):
        assert part in body


def test_rewriting_replaces_the_site_whole(site: SimpleNamespace, tmp_path: Path) -> None:
    out = tmp_path / "r"
    write_reports(site.store, site.a, out, pdf=False)
    (out / "stale.txt").write_text("left over")
    write_reports(site.store, site.b, out, pdf=False)
    assert not (out / "stale.txt").exists() and site.b in (out / "index.html").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["r"]  # no temporary directories left


def test_a_failing_render_leaves_the_previous_site(site: SimpleNamespace, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "r"
    write_reports(site.store, site.a, out, pdf=False)
    before = (out / "index.html").read_bytes()

    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("renderer died")

    monkeypatch.setattr("security_checks.report.machine.write_machine", boom)
    with pytest.raises(RuntimeError):
        write_reports(site.store, site.b, out, pdf=False)
    assert (out / "index.html").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r"]


def test_cli_report_latest_and_by_run_and_bad_input(site: SimpleNamespace, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from security_checks.cli.app import app

    monkeypatch.setenv("ESTATE_HOME", str(site.store.home))
    res = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "latest"), "--no-pdf", "--format", "json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["run"] == site.b and site.b in (tmp_path / "latest/index.html").read_text()
    res = CliRunner().invoke(app, ["report", "--run", site.a[:17], "--out", str(tmp_path / "first"), "--no-pdf"])
    assert res.exit_code == 0, res.output
    assert "This is the first run of its kind" in (tmp_path / "first/index.html").read_text()
    res = CliRunner().invoke(app, ["report", "--run", "19990101", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "--run 19990101: no such run" in res.output and not (tmp_path / "x").exists()
    monkeypatch.setenv("ESTATE_HOME", str(tmp_path / "empty"))
    res = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "y")])
    assert res.exit_code == 2 and "run `estate assess` first" in res.output
