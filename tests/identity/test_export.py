"""Reading Entra ID exports: Graph's own shape accepted (pages included), anything else refused in one
line naming the file and the JSON path, and `estate assess` refusing a broken export before a run opens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from security_checks.identity.export import ExportError, load_export
from tests.identity.graph import TENANT, good_export, good_users


def refused(directory: Path) -> str:
    with pytest.raises(ExportError) as exc:
        load_export(directory, TENANT)
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def edit(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_a_complete_export_in_graphs_shape_is_read(tmp_path: Path) -> None:
    export = load_export(good_export(tmp_path / "x"), TENANT)
    assert export.policies[0].name == "CA001: Require MFA for all users"
    assert len(export.users) == len(good_users()) and export.groups is not None and export.organization
    assert sorted(export.raw) == ["conditionalAccessPolicies.json", "groups.json", "organization.json",
                                  "userRegistrationDetails.json"]


def test_pages_following_graphs_next_links_are_read_as_one_collection(tmp_path: Path) -> None:
    export = load_export(good_export(tmp_path / "x", user_pages=3), TENANT)
    assert len(export.users) == len(good_users())
    assert export.files_of("userRegistrationDetails") == [f"userRegistrationDetails-{n}.json" for n in (1, 2, 3)]


def test_a_byte_order_mark_from_powershell_is_accepted(tmp_path: Path) -> None:
    d = good_export(tmp_path / "x")
    path = d / "conditionalAccessPolicies.json"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_export(d, TENANT).policies


@pytest.mark.parametrize("break_it, expected", [
    (lambda d: (d / "userRegistrationDetails.json").unlink(),
     "userRegistrationDetails.json: missing: save the response body of GET /reports/authenticationMethods/"),
    (lambda d: (d / "conditionalAccessPolicies.json").write_text('{"value": [ {"id": '),
     "conditionalAccessPolicies.json: $: not JSON (line 1 column"),
    (lambda d: (d / "conditionalAccessPolicies.json").write_text('[{"id": "x"}]'),
     "conditionalAccessPolicies.json: $.value: expected a Graph collection"),
    (lambda d: edit(d / "conditionalAccessPolicies.json", lambda doc: doc["value"][1].update(state="on")),
     "conditionalAccessPolicies.json: $.value[1].state: Input should be 'enabled', 'disabled' or "
     "'enabledForReportingButNotEnforced' (found \"on\")"),
    (lambda d: edit(d / "conditionalAccessPolicies.json",
                    lambda doc: doc["value"][0]["conditions"]["users"].update(excludeGroups="sg-emergency")),
     "conditionalAccessPolicies.json: $.value[0].conditions.users.excludeGroups: Input should be a valid list"),
    (lambda d: edit(d / "conditionalAccessPolicies.json",
                    lambda doc: doc["value"][2]["conditions"].pop("applications")),
     "conditionalAccessPolicies.json: $.value[2].conditions.applications: Field required"),
    (lambda d: edit(d / "userRegistrationDetails.json", lambda doc: doc["value"][3].update(isMfaRegistered="yes")),
     "userRegistrationDetails.json: $.value[3].isMfaRegistered: Input should be a valid boolean"),
    (lambda d: edit(d / "userRegistrationDetails.json", lambda doc: doc["value"][0].pop("userPrincipalName")),
     "userRegistrationDetails.json: $.value[0].userPrincipalName: Field required"),
    (lambda d: edit(d / "userRegistrationDetails.json", lambda doc: doc.update(value=[])),
     "userRegistrationDetails.json: $.value: no users"),
    (lambda d: edit(d / "userRegistrationDetails.json", lambda doc: doc["value"].append(doc["value"][0])),
     "appears twice"),
    (lambda d: edit(d / "groups.json", lambda doc: doc["value"][0]["members"][0].pop("id")),
     "groups.json: $.value[0].members[0].id: Field required"),
    (lambda d: edit(d / "organization.json",
                    lambda doc: doc["value"][0].update(id="00000000-1111-2222-3333-444444444444")),
     "organization.json: $.value[0].id: the export is of tenant 00000000-1111-2222-3333-444444444444, not the "
     f"estate's tenant {TENANT}"),
    (lambda d: edit(d / "userRegistrationDetails.json",
                    lambda doc: doc.update({"@odata.nextLink": "https://graph.microsoft.com/v1.0/reports/x"})),
     "userRegistrationDetails.json: $['@odata.nextLink']: Graph has more pages than the export holds"),
])
def test_a_malformed_export_is_refused_in_one_line_naming_the_file_and_path(tmp_path: Path, break_it,  # type: ignore[no-untyped-def]
                                                                            expected: str) -> None:
    d = good_export(tmp_path / "x")
    break_it(d)
    message = refused(d)
    assert expected in message, message
    assert message.startswith(str(d))


def test_a_missing_page_or_a_broken_chain_is_refused(tmp_path: Path) -> None:
    d = good_export(tmp_path / "x", user_pages=3)
    (d / "userRegistrationDetails-2.json").unlink()
    assert "userRegistrationDetails-2.json: missing: pages userRegistrationDetails-1.json to " \
           "userRegistrationDetails-3.json must all be there" in refused(d)
    d = good_export(tmp_path / "y", user_pages=2)
    edit(d / "userRegistrationDetails-1.json", lambda doc: doc.pop("@odata.nextLink"))
    assert "userRegistrationDetails-1.json: $['@odata.nextLink']: absent, yet userRegistrationDetails-2.json " \
           "follows" in refused(d)
    d = good_export(tmp_path / "z", user_pages=2)
    (d / "userRegistrationDetails.json").write_text((d / "userRegistrationDetails-1.json").read_text())
    assert "keep one form" in refused(d)


def test_no_such_directory_is_refused(tmp_path: Path) -> None:
    assert refused(tmp_path / "nowhere") == f"{tmp_path / 'nowhere'}: no such directory (an Entra ID export: " \
                                           "security_checks/identity/README.md)"


def test_estate_assess_refuses_a_broken_export_with_exit_2_and_stores_nothing(tmp_path: Path) -> None:
    """Validated before the run opens: one line, exit 2, no run in the home (the demo's lab never starts)."""
    from security_checks.cli.app import app

    d = good_export(tmp_path / "export")
    edit(d / "conditionalAccessPolicies.json", lambda doc: doc["value"][0].update(state="on"))
    home = tmp_path / "home"
    r = CliRunner().invoke(app, ["assess", "--entra-export", str(d), "--home", str(home), "--no-report"])
    assert r.exit_code == 2, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --entra-export: "), r.output
    assert "conditionalAccessPolicies.json: $.value[0].state:" in lines[0]
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())


def test_estate_assess_judges_the_export_it_is_given(tmp_path: Path) -> None:
    """--entra-export reaches the identity step (a council with no lab, so only the step chosen runs)."""
    from security_checks.cli.app import app

    glenmoray = Path(__file__).resolve().parents[1] / "estates" / "glenmoray"
    tenant = "ffe09c59-17d7-4419-b20d-ba845e100020"
    d = good_export(tmp_path / "export", tenant=tenant)
    r = CliRunner().invoke(app, ["assess", "--estate", str(glenmoray), "--entra-export", str(d), "--home",
                                 str(tmp_path / "home"), "--only", "identity", "--no-report", "--format", "json",
                                 "--fail-on", "none"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    step = next(s for s in doc["steps"] if s["name"] == "identity")
    assert step["status"] == "ran" and "from --entra-export" in step["summary"]
    # Another council's export is refused: organization.json names the tenant it came from.
    r = CliRunner().invoke(app, ["assess", "--estate", str(glenmoray), "--entra-export", str(good_export(
        tmp_path / "other")), "--home", str(tmp_path / "home"), "--only", "identity", "--no-report"])
    assert r.exit_code == 2 and "not the estate's tenant ffe09c59-17d7-4419-b20d-ba845e100020" in r.output
