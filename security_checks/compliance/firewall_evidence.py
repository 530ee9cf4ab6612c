"""Observed beats declared for the Cyber Essentials firewall checks.

`ce.firewall_default_deny` and `ce.firewall_admin_interface` judge what the estate declares about
each firewall. Where this run read the firewall's configuration back (the firewall audit's
`firewalls.read`, earlier in the run), those two are judged again from what the device holds, the
audit's own findings, and say so (evidence kind observed). Where nothing was read back, they stay
as they were: declared, and their observed text says the device was not read.
"""

from __future__ import annotations

from ..checks import check
from ..findings import EvidenceKind, Finding, Severity, Status

# The declared check, and the firewall audit's checks that decide it from the device.
FROM_DEVICE = {
    "ce.firewall_default_deny": ("firewalls.default_not_deny", "firewalls.any_any"),
    "ce.firewall_admin_interface": ("firewalls.admin_exposed", "firewalls.admin_mfa"),
}


def _firewall(f: Finding) -> str:
    return str(f.details.get("firewall") or f.asset.removeprefix("firewall:"))


def observed_over_declared(own: list[Finding], earlier: list[Finding]) -> list[Finding]:
    read = {_firewall(f): f for f in earlier if f.check_id == "firewalls.read" and f.status is Status.PASS}
    out = []
    for f in own:
        checks = FROM_DEVICE.get(f.check_id)
        if checks is None:
            out.append(f)
            continue
        fw = _firewall(f)
        if fw not in read:
            out.append(f.model_copy(update={"observed": f"{f.observed} (declared in the estate: {fw} was not read "
                                                          "back in this run)"}))
            continue
        fails = [e for e in earlier if e.check_id in checks and _firewall(e) == fw and e.status is Status.FAIL]
        observed = ("read back from the device: " + "; ".join(f"{e.check_id} {e.key}: {e.observed}"
                                                             for e in fails)) if fails else \
            f"read back from the device ({read[fw].observed}): nothing the declared policy does not allow"
        out.append(f.model_copy(update={
            "status": Status.FAIL if fails else Status.PASS, "evidence_kind": EvidenceKind.OBSERVED,
            "severity": check(f.check_id).severity if fails else Severity.INFO, "observed": observed[:1500],
            "evidence": [*read[fw].evidence], "details": {**f.details, "read_back": True,
                                                           "declared_status": f.status.value}}))
    return out
