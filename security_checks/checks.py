"""Check metadata, kept as data beside the code that implements each check (Prowler's layout).

Every package that implements checks has a `checks.yaml` next to its code:

    checks:
      - id: scan.undeclared_port
        title: Port open that the estate does not declare
        severity: medium
        description: ...
        remediation: ...
        evidence_kind: declared    # observed (default), declared or attested: what the finding rests on

A file may set `evidence_kind` at the top for all its checks. Code never repeats a title,
severity or remediation text: it calls `make_finding(check_id, ...)`, which fills them from the
metadata, and the control references from the control catalogue (the one place that maps checks
to requirements: `estate checks <id>` shows a check's metadata, code, steps and requirements).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from . import yamlread
from .findings import EvidenceKind, EvidenceRef, Finding, Severity, Status

PACKAGE_ROOT = Path(__file__).resolve().parent
# Checks live beside their code in both Python packages of the repository.
CHECK_ROOTS = (PACKAGE_ROOT, PACKAGE_ROOT.parent / "infra")


class CheckMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    title: str
    severity: Severity
    description: str = ""
    remediation: str = ""
    source: str = ""
    cvss_vector: str | None = None
    evidence_kind: EvidenceKind = EvidenceKind.OBSERVED
    # About the tool's own inputs (the advisory feed's age), not the estate: never evidence that a
    # requirement is met (catalogue/matrix.py).
    about_inputs: bool = False
    defined_in: str = ""   # the checks.yaml that holds this metadata (set by the registry)


@cache
def registry() -> dict[str, CheckMeta]:
    out: dict[str, CheckMeta] = {}
    for path in sorted(p for root in CHECK_ROOTS if root.is_dir() for p in root.rglob("checks.yaml")):
        data = yamlread.safe_load(path.read_text()) or {}
        defaults = {"source": data.get("source", path.parent.name),
                    **({"evidence_kind": data["evidence_kind"]} if "evidence_kind" in data else {})}
        for raw in data.get("checks", []):
            meta = CheckMeta.model_validate({**defaults, **raw,
                                             "defined_in": path.relative_to(PACKAGE_ROOT.parent).as_posix()})
            if meta.id in out:
                raise ValueError(f"{path}: check {meta.id} is already defined")
            out[meta.id] = meta
    return out


# Text a person reads says the council's own public-sector network, not "PSN" (a Scottish council
# is on SWAN). Check titles, descriptions and remediation in checks.yaml, and the control
# catalogue's texts, say "{network}" instead; the runner fills it in from the run's estate when the
# findings and verdicts are made (runner.py, before commit), so what is stored is what every output
# prints and no report needs the estate. "{network_psn}" names the framework: "PSN" for a council on
# the PSN itself, "SWAN / PSN" for one whose network connects it to PSN services.
NETWORK = "{network}"
NETWORK_PSN = "{network_psn}"


def network_psn(network: str) -> str:
    return "PSN" if network == "PSN" else f"{network} / PSN"


def name_network(text: str, network: str) -> str:
    """`text` with the council's network name in place of the placeholders (fast when there are none)."""
    if "{network" not in text:
        return text
    return text.replace(NETWORK_PSN, network_psn(network)).replace(NETWORK, network)


def input_checks() -> frozenset[str]:
    return frozenset(cid for cid, meta in registry().items() if meta.about_inputs)


def check(check_id: str) -> CheckMeta:
    try:
        return registry()[check_id]
    except KeyError:
        raise KeyError(f"no metadata for check {check_id!r}: add it to the checks.yaml beside the code") from None


@cache
def _base_score(vector: str) -> float:
    """A CVSS v3 vector's base score, parsed once per distinct vector (a scan repeats a few over
    thousands of findings)."""
    from cvss import CVSS3

    return float(CVSS3(vector).scores()[0])


def make_finding(
    check_id: str,
    asset: str,
    status: Status,
    *,
    key: str = "",
    observed: str = "",
    expected: str = "",
    evidence: list[EvidenceRef] | None = None,
    severity: Severity | None = None,
    title: str | None = None,
    remediation: str | None = None,
    site: str | None = None,
    zone: str | None = None,
    cvss_vector: str | None = None,
    details: dict[str, Any] | None = None,
    evidence_kind: EvidenceKind | None = None,
) -> Finding:
    """A Finding for `check_id`, with metadata from its checks.yaml and controls from the catalogue."""
    from .catalogue import controls_for  # late: the catalogue imports check ids

    meta = check(check_id)
    vector = cvss_vector or meta.cvss_vector
    score = None
    sev = severity or meta.severity
    if vector:
        score = _base_score(vector)
        if severity is None:
            sev = Severity.from_cvss(score)
    if status is Status.PASS:
        sev = Severity.INFO
    # One source of truth for check -> requirement: the catalogue's requirement.checks lists.
    controls = list(controls_for(check_id))   # sorted already
    return Finding(
        check_id=check_id, asset=asset, key=key, status=status, severity=sev,
        title=title or meta.title, source=meta.source, controls=controls,
        cvss_vector=vector, cvss_score=score, observed=observed, expected=expected,
        evidence=list(evidence or []), remediation=remediation if remediation is not None else meta.remediation,
        site=site, zone=zone, details=details or {}, evidence_kind=evidence_kind or meta.evidence_kind,
    )
