"""Attestations a verdict may rest on: `estate validate` refuses one for a requirement the catalogue
does not have, one dated after today, and one whose evidence is not a file in the estate directory,
each as one `file:line: field: message` line; so does every command that loads the estate."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from security_checks.catalogue import frameworks
from security_checks.cli.app import app
from security_checks.model.crossref import cross_reference, requirement_refs
from security_checks.model.loader import EstateError, load_estate
from tests.conftest import DEMO
from tests.estate_copy import copy_demo

runner = CliRunner()
ATT = "attestations.yaml"


def _line_of(path: Path, text: str, nth: int = 0) -> int:
    return [i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line][nth]


def test_the_model_reads_the_catalogue_references_the_catalogue_itself_has() -> None:
    # Read as data by path (the model imports no engine code); the catalogue package must agree.
    assert requirement_refs() == {fw.ref(r) for fw in frameworks() for r in fw.requirements}
    assert {"CE3.3:FW-3", "CE3.2:FW-3", "PSN:COCO-10"} <= requirement_refs()


def test_demo_and_its_attestations_are_sound() -> None:
    loaded = load_estate(DEMO)
    assert loaded.estate.attestations
    assert [p for p in cross_reference(loaded) if "attestations" in p.field] == []


def test_validate_refuses_unknown_future_and_unevidenced_attestations_one_line_each(tmp_path: Path) -> None:
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    estate = copy_demo(tmp_path / "estate", {ATT: [
        ("requirement: CE3.3:FW-3\n", "requirement: CE3.3:FW-99\n"),
        ("requirement: PSN:COCO-10\n", "requirement: PSN2:COCO-10\n"),
        ("attested_on: 2026-10-15\n    expires: 2027-10-14\n    evidence: [attestations/software-licensing.md]\n"
         "  - requirement: CE3.3:UAC-1",
         f"attested_on: {tomorrow}\n    expires: 2099-10-14\n    evidence: [attestations/software-licensing.md]\n"
         "  - requirement: CE3.3:UAC-1"),
        ("evidence: [attestations/password-guidance.md]",
         "evidence: [attestations/password-guidance.md, attestations/signed-policy.pdf, ../demo/sites.yaml]"),
    ]})
    path = estate / ATT
    result = runner.invoke(app, ["validate", "--estate", str(estate)])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith(str(path))]
    expected = [
        (_line_of(path, "CE3.3:FW-99"), "attestations[0].requirement: unknown requirement 'CE3.3:FW-99' "
                                        "(the catalogue has no requirement 'FW-99' under CE3.3)"),
        (_line_of(path, tomorrow), f"attestations[2].attested_on: {tomorrow} is in the future"),
        (_line_of(path, "signed-policy.pdf"), "attestations[5].evidence[1]: no file 'attestations/signed-policy.pdf' "
                                              "in the estate directory"),
        (_line_of(path, "signed-policy.pdf"), "attestations[5].evidence[2]: '../demo/sites.yaml' is outside the "
                                              "estate directory"),
        (_line_of(path, "PSN2:COCO-10"), "attestations[9].requirement: unknown requirement 'PSN2:COCO-10' "
                                         "(catalogue prefixes are"),
    ]
    for line, text in expected:
        assert sum(1 for ln in lines if ln.startswith(f"{path}:{line}: {text}")) == 1, (line, text, lines)
    assert len(lines) == len(expected), lines
    # Reference problems, not policy ones: no command reads this estate (an assessment included).
    with pytest.raises(EstateError):
        load_estate(estate, policy=False)


def test_an_attestation_made_today_counts_and_one_dated_tomorrow_does_not(tmp_path: Path) -> None:
    estate = copy_demo(tmp_path / "estate")
    loaded = load_estate(estate)
    made = loaded.estate.attestations[0].attested_on
    assert [p for p in cross_reference(loaded, today=made) if p.field == "attestations[0].attested_on"] == []
    (late,) = [p for p in cross_reference(loaded, today=made - timedelta(days=1))
               if p.field == "attestations[0].attested_on"]
    assert (late.file, late.line) == (str(estate / ATT), _line_of(estate / ATT, f"attested_on: {made.isoformat()}"))


def test_an_expired_attestation_is_not_refused() -> None:
    # The demo's CE3.3:UAC-4 attestation lapsed in September 2026: it no longer counts (the verdict
    # says it awaits a new one), but it is a true record and the estate is sound.
    loaded = load_estate(DEMO)
    (uac4,) = [a for a in loaded.estate.attestations if a.requirement == "CE3.3:UAC-4"]
    assert uac4.expires is not None and uac4.expires < date.today()


def test_valid_expired_and_unevidenced_attestations_read_the_same_in_the_cli_the_site_and_the_pdf(
        tmp_path: Path) -> None:
    """The loader refuses an attestation whose evidence is missing, so a run can only meet one whose
    evidence went missing while it ran (or one stored before that rule): it must never read as sound."""
    import html
    import json
    import re
    import shutil

    from security_checks.jobs import ASSESS
    from security_checks.report import write_reports
    from security_checks.report.context import build
    from security_checks.report.pdf import render_html
    from security_checks.runner import Runner, Selection
    from security_checks.store import Store

    estate, home = copy_demo(tmp_path / "estate"), tmp_path / "home"
    loaded = load_estate(estate)
    evidence = estate / "attestations" / "password-guidance.md"        # CE3.3:UAC-8's
    shutil.move(evidence, tmp_path / "aside.md")
    run = Runner(loaded, home).run(ASSESS, selection=Selection(only=("ce-config",))).run
    shutil.move(tmp_path / "aside.md", evidence)

    ce = runner.invoke(app, ["check", "ce", "--format", "json", "--estate", str(estate), "--home", str(home)])
    rows = {r["ref"]: r for r in json.loads(ce.stdout)["requirements"]}
    with Store(home) as store:
        write_reports(store, run.id, tmp_path / "out", pdf=False)
        board = render_html(build(store, run.id))     # the PDF's HTML
    controls = (tmp_path / "out" / "controls.html").read_text()

    def text(page: str, start: str, end: str) -> str:
        i = page.index(start)
        return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page[i:page.index(end, i)])).split())

    valid, expired, missing = "CE3.3:UAC-1", "CE3.3:UAC-4", "CE3.3:UAC-8"
    assert rows[missing]["attestation"]["missing_evidence"] == ["attestations/password-guidance.md"]
    assert f"{missing}: attestation does not count" in " ".join(json.loads(ce.stdout)["reasons"])
    # The CLI's row says it too, not "attested" as if it counted.
    assert "does not count: evidence missing" in rows[missing]["reason"]
    # The CLI prints the same rows' reasons; the site and the PDF say besides why one does not count.
    assert rows[valid]["reason"].startswith("attested by Aisha Okafor")
    assert rows[expired]["reason"] == "attestation expired on 2026-09-30; awaiting a new one"
    for row in (lambda ref: text(controls, f'id="r-{ref.replace(":", "-")}"', "</tr>"),
                lambda ref: text(board, f'<b class="mono">{ref}</b>', "</tr>")):
        assert "Attested by Aisha Okafor" in row(valid) and "Does not count" not in row(valid)
        assert "attestation expired on 2026-09-30; awaiting a new one" in row(expired)
        assert "Attested by" not in row(expired)
        assert "Does not count: evidence missing from the estate directory" in row(missing)
        assert "attestations/password-guidance.md" in row(missing)
