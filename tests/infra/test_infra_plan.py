"""The offline plan behind a process boundary: `python -m infra.plan_cli` and the `infra-plan` step.

security_checks runs the Pulumi program (under Pulumi's mock runtime, standing in for the engine
and Azure Resource Manager) in a child process and reads one JSON document; these tests prove the
program never enters the calling process, that bad input is one line and exit 2 with nothing
written, and that the document turns into the same findings the rules always gave.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from security_checks import infra_plan
from security_checks.findings import EvidenceRef, Status
from security_checks.infra_plan import PlanError, PlanInputError, infra_plan_step, run_offline_plan, to_findings
from security_checks.model.loader import load_estate
from security_checks.step import StepContext

from .conftest import DEMO, copy_demo

REPO = Path(__file__).resolve().parents[2]
BAD_ZONE = {"sites.yaml": [("cidr: 10.10.20.0/24, zone: voice}", "cidr: 10.10.20.0/24, zone: nosuch}")]}
NO_CORP = {"organisation.yaml": [
    ("    - {name: lz-corp-prod, id: 0a1b2c3d-0005-4000-8000-000000000005, placement: corp, "
     "cost_centre: ICT-LOB}\n", "")]}


@dataclass
class Sink:
    """The run's evidence directory as a step sees it (the runner's is the store's staging area)."""

    root: Path
    id: str = "test-run"
    written: list[str] = field(default_factory=list)

    @property
    def evidence_dir(self) -> Path:
        return self.root

    def write_evidence(self, relpath: str, data: bytes | str, description: str = "") -> EvidenceRef:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        self.written.append(relpath)
        return EvidenceRef(path=relpath, description=description)

    def copy_evidence(self, src: Path, relpath: str, description: str = "") -> EvidenceRef:
        return self.write_evidence(relpath, src.read_bytes(), description)


def _context(estate: Path, tmp_path: Path, **options: Any) -> tuple[StepContext, Sink]:
    sink = Sink(tmp_path / "evidence")
    ctx = StepContext(loaded=load_estate(estate, policy=False), run=sink, home=tmp_path / "home", is_root=False,
                      today=date(2026, 11, 22), options=options)
    return ctx, sink


def _plan_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "infra.plan_cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


# ---- the document to findings (no plan needed) -------------------------------------------------------

LOBS = DEMO / "lob_systems.yaml"


def _line(text: str) -> int:
    return next(i for i, line in enumerate(LOBS.read_text().splitlines(), 1) if text in line)


def _violation(check_id: str, type_: str, name: str, message: str, line: int | None) -> dict[str, Any]:
    return {"check_id": check_id, "resource_type": f"azure-native:{type_}", "resource": name, "urn": f"urn:{name}",
            "message": message, "estate_file": "lob_systems.yaml" if line else None, "estate_line": line}


INTRANET, PLANNING = _line("name: intranet,"), _line("name: planning,")
TAGS = "missing required tag(s): cost-centre"
VIOLATIONS = [
    _violation("infra.policy.required_tags", "keyvault:Vault", "intranet-kv", TAGS, INTRANET),
    # The same violation twice (a rule may see a resource twice): listed once.
    _violation("infra.policy.required_tags", "keyvault:Vault", "intranet-kv", TAGS, INTRANET),
    _violation("infra.policy.required_tags", "network:VirtualNetwork", "intranet-vnet", TAGS, INTRANET),
    _violation("infra.policy.allowed_locations", "network:VirtualNetwork", "planning-vnet",
               "location 'westeurope' is outside the UK regions", PLANNING),
    # No estate origin and no system tag: the tenancy's.
    _violation("infra.policy.allowed_locations", "network:VirtualNetwork", "stray-vnet",
               "location 'westeurope' is outside the UK regions", None),
]
SYSTEMS = {"intranet-kv": "intranet", "intranet-vnet": "intranet", "planning-vnet": "planning"}
DOC: dict[str, Any] = {
    "stack": "demo", "resource_count": 4, "counts": {},
    "resources": [{"urn": f"urn:{n}", "type": "azure-native:x:Y", "name": n, "parent": None,
                   "inputs": {"tags": {"system": s, "information-asset-owner": "tagged owner"}}}
                  for n, s in SYSTEMS.items()],
    "violations": VIOLATIONS,
    "rules": [{"check_id": "infra.policy.required_tags", "description": "tags"},
              {"check_id": "infra.policy.allowed_locations", "description": "UK only"},
              {"check_id": "infra.policy.subnet_nsg", "description": "Every subnet has a network security group"}],
}


def test_each_cause_is_one_failing_finding_on_its_system_and_each_clean_rule_a_pass() -> None:
    ref = EvidenceRef(path="infra-plan/plan.json")
    findings = to_findings(DOC, load_estate(DEMO), ref)
    failing = [f for f in findings if f.status is Status.FAIL]
    assert [(f.check_id, f.asset) for f in failing] == [
        ("infra.policy.allowed_locations", "lob:planning"),
        ("infra.policy.allowed_locations", "tenancy:hdc"),
        ("infra.policy.required_tags", "lob:intranet")]
    tags = failing[2]
    assert tags.key == ""       # the whole LOB entry: its id is (check, system)
    assert tags.observed == (f"{TAGS} - 2 planned resource(s): intranet-kv, intranet-vnet "
                             f"(from lob_systems.yaml:{INTRANET})")
    assert tags.details["estate_file"] == "lob_systems.yaml" and tags.details["estate_line"] == INTRANET
    # The estate's owner (the information asset owner), not a tag's copy of it.
    assert tags.details["owner"] == "Head of Communications" and tags.details["lob"] == "intranet"
    assert [(r["resource"], r["asset"], r["urn"]) for r in tags.details["resources"]] == [
        ("intranet-kv", "azure:keyvault:Vault/intranet-kv", "urn:intranet-kv"),
        ("intranet-vnet", "azure:network:VirtualNetwork/intranet-vnet", "urn:intranet-vnet")]
    stray = failing[1]
    assert "estate_file" not in stray.details and "(from " not in stray.observed
    (passing,) = [f for f in findings if f.status is Status.PASS]
    assert (passing.check_id, passing.asset) == ("infra.policy.subnet_nsg", "infra-plan:demo")
    assert passing.observed == "no violation in 4 planned resources"
    assert passing.expected == "Every subnet has a network security group"
    assert all(f.evidence == [ref] for f in findings)


# ---- the child process ------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_plan_runs_in_a_child_process_that_keeps_infra_and_pulumi_out_of_ours_under_pulumi_mocks(
        tmp_path: Path) -> None:
    # A fresh interpreter, so that nothing this test session imported can hide an import.
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from security_checks.infra_plan import run_offline_plan\n"
        f"doc = run_offline_plan(Path({str(DEMO)!r}), 'demo', Path({str(tmp_path)!r}))\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('infra', 'pulumi', 'pulumi_azure_native'))\n"
        "print(json.dumps({'loaded': loaded, 'resources': doc['resource_count'], 'rules': len(doc['rules'])}))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["loaded"] == []
    assert out["resources"] > 500 and out["rules"] == 25


@pytest.mark.slow
def test_plan_document_has_the_graph_the_violations_the_rules_and_the_stack_under_pulumi_mocks(
        tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    proc = _plan_cli("--stack", "demo", "--estate", str(DEMO), "--out", str(out), "--no-policy-refusal")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == ""
    doc = json.loads(out.read_text())
    assert doc["schema"] == "estate.infra-plan/1"
    assert doc["violations"] == []
    assert doc["resource_count"] == len(doc["resources"]) == sum(doc["counts"].values())
    assert {r["check_id"] for r in doc["rules"]} >= {"infra.policy.allowed_locations",
                                                     "infra.policy.psn_route_isolation"}
    assert doc["config"] == {"stack": "demo", "environment": "prod", "estate_digest": load_estate(DEMO).digest,
                             "state_backend": "local"}
    assert str(DEMO) not in out.read_text()   # evidence: not the operator's directory
    assert out.stat().st_mode & 0o077 == 0   # assessment evidence: private


def test_a_bad_estate_is_one_line_naming_file_and_field_and_exit_2_with_nothing_written(tmp_path: Path) -> None:
    estate = copy_demo(tmp_path / "estate", BAD_ZONE)
    out = tmp_path / "plan.json"
    proc = _plan_cli("--stack", "demo", "--estate", str(estate), "--out", str(out), "--no-policy-refusal")
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"{estate / 'sites.yaml'}:")
    assert "sites[0].vlans[1].zone" in lines[0] and "nosuch" in lines[0]
    assert not out.exists() and not list(tmp_path.glob("*.partial"))
    # What the calling side makes of it: the same line, as bad input, not as a crash.
    with pytest.raises(PlanInputError) as caught:
        run_offline_plan(estate, "demo", tmp_path)
    assert str(caught.value) == lines[0]


def test_an_unknown_stack_is_bad_input(tmp_path: Path) -> None:
    proc = _plan_cli("--stack", "nosuch", "--out", str(tmp_path / "plan.json"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Pulumi.nosuch.yaml: no such stack file" in proc.stderr


def test_a_crash_of_the_plan_program_is_not_mistaken_for_bad_input(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(infra_plan, "PLAN_PROGRAM", "infra.no_such_program")
    with pytest.raises(PlanError) as caught:
        run_offline_plan(DEMO, "demo", tmp_path)
    assert "exited 1" in str(caught.value) and "No module named infra.no_such_program" in str(caught.value)


# ---- the step -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_step_writes_the_plan_as_evidence_and_returns_findings_under_pulumi_mocks(tmp_path: Path) -> None:
    ctx, sink = _context(DEMO, tmp_path)
    result = infra_plan_step(ctx)
    assert result.skipped is None
    assert sink.written == ["infra-plan/plan.json"]
    evidence = json.loads((sink.root / "infra-plan" / "plan.json").read_text())
    assert evidence["violations"] == [] and len(evidence["rules"]) == 25
    assert "0 policy violation(s)" in result.summary
    passed = {f.check_id for f in result.findings if f.status is Status.PASS}
    assert len(passed) == 25 and not [f for f in result.findings if f.failing]
    assert all(f.asset == "infra-plan:demo" and f.evidence[0].path == "infra-plan/plan.json" for f in result.findings)
    # What the command prints comes back as data, not as a second channel of truth.
    assert set(result.data["plan"]) == {"stack", "resource_count", "counts", "resources", "violations"}
    assert result.data["config"]["stack"] == "demo"


@pytest.mark.slow
def test_the_step_is_skipped_for_an_estate_the_program_cannot_build_under_pulumi_mocks(tmp_path: Path) -> None:
    ctx, sink = _context(copy_demo(tmp_path / "estate", NO_CORP), tmp_path)
    result = infra_plan_step(ctx)
    assert result.skipped is not None
    assert result.skipped.startswith("the estate cannot be built into a Pulumi program: ")
    assert "no subscription named or placed 'corp'" in result.skipped
    assert result.findings == [] and sink.written == []
