"""The machine outputs of a few hundred findings of every kind: valid, and what trestle and json would write.

The OSCAL documents are built as plain dicts for speed (security_checks/report/oscal.py says why), and
findings.json and the SARIF are indented by machine.dumps_indented instead of json.dumps: so these
tests hold them to the real thing. trestle's models must accept both OSCAL documents and write back
exactly the same bytes; dumps_indented must write what json.dumps(indent=1) writes; the same report
data must always give the same bytes. Run through the real runner, with waivers (accepted and
lapsed), two runs (new and unchanged), every status, and text that is awkward to encode.
"""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
from openpyxl import load_workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from security_checks.findings import EvidenceKind, EvidenceRef, Finding, Severity, Status
from security_checks.report import build, machine, oscal
from security_checks.runner import Job, Runner
from security_checks.step import Step, StepContext, StepResult
from tests.report.builders import TODAY, demo_loaded, patched_catalogue, store_now

N = 300
SCHEMA = Path(__file__).with_name("sarif-schema-2.1.0.json")
CHECKS = {"t.undeclared_port": "CE3.3:FW-1", "t.admin_exposed": "CE3.3:FW-2", "t.default_password": "CE3.3:SC-1",
          "t.missing_patch": "CE3.3:SUM-1", "t.no_av": "CE3.3:MP-1", "t.unmapped": ""}
STATUSES = [Status.FAIL, Status.PASS, Status.FAIL, Status.ERROR, Status.MANUAL, Status.NOT_ASSESSED, Status.FAIL]
SEVERITIES = [Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW]
AWKWARD = 'quote " back\\slash <script>x</script> tab\t café 😀 \u2028 ctrl\x01'


def _findings(n: int, evidence: list[EvidenceRef]) -> list[Finding]:
    out = []
    for i in range(n):
        check = list(CHECKS)[i % len(CHECKS)]
        status = STATUSES[i % len(STATUSES)]
        failing = status in (Status.FAIL, Status.ERROR)
        # device:printer-* and host:kiosk-1 are what the demo estate's two waivers (one expired) cover.
        asset = (f"device:printer-{i}" if check == "t.default_password" else
                 "host:kiosk-1" if check == "t.no_av" and i < 12 else f"host:10.1.{i // 250}.{i % 250}")
        title = (f"{check} title {i}" if i % 37 else f"Two\nlines {AWKWARD}") if i != 13 else ""
        remediation = ["Close the port.", "=HYPERLINK(\"http://x\")", "+1 then -1", "-", "@sum", "",
                       f"Patch  it\n now {AWKWARD}"][i % 7]
        out.append(Finding(
            check_id=check, asset=asset, key="" if i % 5 == 0 else f"k{i}", title=title, status=status,
            severity=SEVERITIES[i % 4] if failing else Severity.INFO, source="test",
            controls=[CHECKS[check]] if CHECKS[check] else [], observed=AWKWARD if i % 11 == 0 else f"seen {i}",
            expected="" if i % 3 == 0 else "not seen", remediation=remediation,
            cvss_score=round(3 + (i % 70) / 10, 1) if failing and i % 2 else None,
            cvss_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" if failing and i % 2 else None,
            site=None if i % 4 == 0 else f"site-{i % 3}", evidence=evidence[: i % 3],
            evidence_kind=EvidenceKind.OBSERVED))
    return out


def _run(home: Path, keep: slice) -> str:
    def step(ctx: StepContext) -> StepResult:
        evidence = [ctx.run.write_evidence("scan/a.xml", "<nmaprun/>", "nmap XML"),
                    ctx.run.write_evidence("scan/b.txt", "b")]
        return StepResult(_findings(N, evidence)[keep], "given")

    job = Job("assess", (Step("given", step, "findings chosen by the test", ("*",)),), "a test's run", full_scope=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ESTATE_OPERATOR", "tester")
        return Runner(demo_loaded(), home, today=TODAY).run(job).run.id


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    root = tmp_path_factory.mktemp("scale")
    with patched_catalogue(root):
        first = _run(root / "home", slice(0, N, 2))
        while store_now() == first[:16]:
            time.sleep(0.05)   # run ids sort by the second they started
        run = _run(root / "home", slice(None))
        from security_checks.store import Store

        with Store(root / "home") as store:
            data = build(store, run)
            paths = machine.write_machine(data, root / "machine")
            yield SimpleNamespace(root=root, store=store, run=run, data=data, paths=paths)


def test_the_run_has_every_kind_of_finding(report: SimpleNamespace) -> None:
    d = report.data
    assert len(d.findings) == N
    assert {f.status for f in d.findings} == set(Status)
    assert any(f.accepted for f in d.findings) and any(f.acceptance_lapsed for f in d.findings)
    assert d.delta.new and d.delta.still_open


def test_oscal_documents_are_what_trestle_writes_for_them(report: SimpleNamespace) -> None:
    from trestle.oscal.assessment_results import AssessmentResults
    from trestle.oscal.poam import PlanOfActionAndMilestones

    for model, name in ((AssessmentResults, "oscal_assessment_results"), (PlanOfActionAndMilestones, "oscal_poam")):
        text = report.paths[name].read_text()
        (root,) = json.loads(text)
        doc = model.model_validate(json.loads(text)[root])
        # Valid, and byte for byte what trestle itself serialises for the same document.
        assert doc.oscal_serialize_json(pretty=False, wrapped=True) == text, name


def test_oscal_documents_say_what_the_run_found(report: SimpleNamespace) -> None:
    d = report.data
    failing = [f for f in d.findings if f.failing]
    result = json.loads(report.paths["oscal_assessment_results"].read_text())["assessment-results"]["results"][0]
    assert len(result["observations"]) == N and len(result["risks"]) == len(failing)
    assert [o["props"][0]["value"] for o in result["observations"]] == sorted(f.id for f in d.findings)
    statuses = {r["props"][0]["value"]: r["status"] for r in result["risks"]}
    assert all(statuses[f.id] == ("risk-accepted" if f.accepted else "open") for f in failing)
    assert all("\n" not in r["title"] and r["title"] for r in result["risks"])   # one line, never empty
    poam = json.loads(report.paths["oscal_poam"].read_text())["plan-of-action-and-milestones"]
    assert len(poam["poam-items"]) == len(poam["risks"]) == len(poam["observations"]) == len(failing)
    observed = {o["uuid"] for o in poam["observations"]}
    assert all(i["related-observations"][0]["observation-uuid"] in observed for i in poam["poam-items"])


def test_uuids_and_datetimes_are_the_standard_ones() -> None:
    from trestle.core.base_model import robust_datetime_serialization

    ns = uuid.UUID("6b3f3a4e-5c1d-4f0e-9a57-2c3e1f0d7a11")
    for parts in (("run", "obs", "F-0123"), ("system", ""), ("run", "poam", "café 😀"), ("x",)):
        assert oscal._uuid(*parts) == str(uuid.uuid5(ns, "\0".join(parts)))
    for dt in (datetime(2026, 11, 22, 9, 30, tzinfo=UTC), datetime(2026, 11, 22, 9, 30, 1, 123456, tzinfo=UTC),
               datetime(2026, 6, 1, 23, 59, tzinfo=timezone(timedelta(hours=1)))):
        assert oscal._dt(dt) == robust_datetime_serialization(dt)
    with pytest.raises(ValueError):
        oscal._dt(datetime(2026, 11, 22, 9, 30))


def test_json_and_sarif_are_what_json_dumps_writes(report: SimpleNamespace) -> None:
    assert report.paths["findings_json"].read_text() == json.dumps(machine.findings_json(report.data), indent=1,
                                                                   default=str)
    assert report.paths["sarif"].read_text() == json.dumps(machine.sarif(report.data), indent=1)


class Colour(StrEnum):
    RED = "red"


@pytest.mark.parametrize("obj", [
    {}, [], "", 0, -1.5, None, True, float("nan"), float("inf"), -float("inf"), 1e300, 10**30,
    {"a": [], "b": {}, "c": [[], [{}], [1, [2, [3]]]], "d": (1, "x"), "e": {"f": {"g": None}}},
    {1: "int key", 2.5: "float key", None: "null key", "s": [False, True, 0.1]}, {True: "t", False: "f"},
    {Colour.RED: Colour.RED, "when": date(2026, 11, 22), "list": [date(2026, 1, 1), Colour.RED]},
    [AWKWARD, {"k\n\"": AWKWARD}],
])
def test_dumps_indented_matches_json_dumps(obj: object) -> None:
    assert machine.dumps_indented(obj, default=str) == json.dumps(obj, indent=1, default=str)


def test_dumps_indented_refuses_what_json_refuses() -> None:
    for bad in ({"d": date(2026, 1, 1)}, {(1, 2): "tuple key"}):
        with pytest.raises(TypeError):
            json.dumps(bad, indent=1)
        with pytest.raises(TypeError):
            machine.dumps_indented(bad)


def test_sarif_validates_against_the_oasis_schema(report: SimpleNamespace) -> None:
    doc = json.loads(report.paths["sarif"].read_text())
    jsonschema.Draft4Validator(json.loads(SCHEMA.read_text()), format_checker=jsonschema.FormatChecker()).validate(doc)
    run = doc["runs"][0]
    assert len(run["results"]) == N
    assert {r["ruleId"] for r in run["results"]} == {rule["id"] for rule in run["tool"]["driver"]["rules"]}
    assert {r.get("baselineState") for r in run["results"]} == {"new", "unchanged", None}


def test_the_same_data_gives_the_same_bytes(report: SimpleNamespace) -> None:
    again = machine.write_machine(report.data, report.root / "again")
    for name, path in report.paths.items():
        if name != "remediation_xlsx":   # an XLSX holds the time it was written (zip entries, properties)
            assert again[name].read_bytes() == path.read_bytes(), name
    assert _sheet(again["remediation_xlsx"]) == _sheet(report.paths["remediation_xlsx"])
    # Loaded again from the store: only the report's own time (OSCAL last-modified) may differ.
    data = build(report.store, report.run)
    data.generated_at = report.data.generated_at
    third = machine.write_machine(data, report.root / "third", only=set(machine.MACHINE_FILES) - {"remediation_xlsx"})
    assert all(third[n].read_bytes() == report.paths[n].read_bytes() for n in third)


def _sheet(path: Path) -> list[list[tuple[object, str, bool]]]:
    ws = load_workbook(path).active
    assert ws is not None
    return [[(c.value, c.data_type, bool(c.alignment.wrap_text)) for c in row] for row in ws.iter_rows()]


def test_remediation_plan_columns_and_cells(report: SimpleNamespace) -> None:
    rows = list(csv.reader(io.StringIO(report.paths["remediation_csv"].read_text(), newline="")))
    assert rows[0] == machine.PLAN_COLUMNS
    plan = machine.plan_rows(report.data)
    assert len(rows) == len(plan) + 1 == len([f for f in report.data.findings if f.failing]) + 1
    assert all(r[11][:1] not in ("=", "+", "-", "@") for r in rows[1:])   # never a formula: quoted
    assert any("ctrl\x01" in r[11] for r in rows[1:])
    ws = load_workbook(report.paths["remediation_xlsx"]).active
    assert ws is not None and ws.freeze_panes == "A2"
    cells = list(ws.iter_rows())
    assert [c.value for c in cells[0]] == machine.PLAN_COLUMNS and all(c.font.b for c in cells[0])
    assert len(cells) == len(plan) + 1
    for row, xrow in zip(plan, cells[1:], strict=True):
        for col, cell in zip(machine.PLAN_COLUMNS, xrow, strict=True):
            # Control characters cannot be in a worksheet: left out there, kept in the CSV.
            value = ILLEGAL_CHARACTERS_RE.sub("", row[col]) if isinstance(row[col], str) else row[col]
            assert cell.value == (value if value != "" else None), (col, row["finding_id"])
            assert bool(cell.alignment.wrap_text) == (col in {"title", "remediation", "acceptance_justification",
                                                              "asset"}), (col, row["finding_id"])
            if isinstance(row[col], str) and row[col].startswith("="):
                assert cell.data_type == "s"   # text, never a formula
