"""Every job the runner runs, each a choice of steps registered by a typed import.

Read this file to see the whole call graph of a command: `estate assess` is ASSESS, `estate scan
import` is SCAN_IMPORT, and so on. The order within a job matters where a step reads what an
earlier one found (patch reads the device audit's Windows update results).
"""

from __future__ import annotations

from typing import Any

from .runner import Job
from .step import Step, StepContext, StepResult


# Each step's engine is imported when the step runs, not when a command starts: `estate scan import`
# has no use for the patch engine's numpy or the device audit's Ansible glue, and every command (and
# its --help) would pay for importing them all. The imports are still plain `from ... import`
# statements, so mypy checks each call and import-linter sees every edge of the layering.
def selftest_scan(ctx: StepContext) -> StepResult:
    from .scan.steps import selftest_scan as run
    return run(ctx)


def network_scan(ctx: StepContext) -> StepResult:
    from .scan.steps import network_scan as run
    return run(ctx)


def segregation(ctx: StepContext) -> StepResult:
    from .scan.steps import segregation as run
    return run(ctx)


def scope_scan(ctx: StepContext) -> StepResult:
    from .scan.steps import scope_scan as run
    return run(ctx)


def import_scan(ctx: StepContext) -> StepResult:
    from .scan.steps import import_scan as run
    return run(ctx)


def site_scan(ctx: StepContext) -> StepResult:
    from .scan.steps import site_scan as run
    return run(ctx)


def devices_step(ctx: StepContext) -> StepResult:
    from .devices.step import devices_step as run
    return run(ctx)


def mdm_step(ctx: StepContext) -> StepResult:
    from .devices.mdm_step import mdm_step as run
    return run(ctx)


def firewalls_step(ctx: StepContext) -> StepResult:
    from .firewalls.step import firewalls_step as run
    return run(ctx)


def firmware_step(ctx: StepContext) -> StepResult:
    from .compliance.firmware import firmware_step as run
    return run(ctx)


def infra_plan_step(ctx: StepContext) -> StepResult:
    from .infra_plan import infra_plan_step as run
    return run(ctx)


def identity_step(ctx: StepContext) -> StepResult:
    from .identity.step import identity_step as run
    return run(ctx)


def ce_config_step(ctx: StepContext) -> StepResult:
    from .compliance.steps import ce_config_step as run
    return run(ctx)


def hygiene_step(ctx: StepContext) -> StepResult:
    from .compliance.hygiene import hygiene_step as run
    return run(ctx)


def patch_step(ctx: StepContext) -> StepResult:
    from .compliance.steps import patch_step as run
    return run(ctx)


# Check ids each step can emit (fnmatch patterns): --check/--exclude-check choose steps by them,
# and a RAP item closes only when the run ran its check.
DRIFT_CHECKS = ("scan.undeclared_*", "scan.declared_service_*", "scan.weak_*", "scan.plaintext_protocol",
                "scan.management_exposed", "scan.http_headers", "scan.certificate", "scan.vulnerable_version",
                "scan.eol_product")
IMPORT_CHECKS = (*DRIFT_CHECKS, "scan.ithc_result", "scan.host_out_of_scope")
SEGREGATION_CHECKS = ("scan.segregation_breach", "scan.management_exposed", "scan.segregation_disagreement")

SELFTEST = Step("selftest-scan", selftest_scan, "self-test scan of the declared loopback services", DRIFT_CHECKS)
NETWORK = Step("network-scan", network_scan, "network scan of the scan scopes from the scanner vantages",
               DRIFT_CHECKS, needs_root="nmap SYN scans and ARP discovery from scanner namespaces")
SEGREGATION = Step("segregation", segregation, "segregation: probes between zones", SEGREGATION_CHECKS,
                   needs_root="raw packets from probe points in each zone")
DEVICES = Step("devices", devices_step, "end-user device baseline audit (Ansible)", ("devices.*",))
MDM = Step("mdm", mdm_step, "devices Ansible does not reach, from the Intune managed-devices export", ("mdm.*",))
INFRA_PLAN = Step("infra-plan", infra_plan_step, "Azure tenancy and LOB systems: offline Pulumi plan, policy",
                  ("infra.policy.*",))
IDENTITY = Step("identity", identity_step, "cloud MFA read back from the Entra ID export", ("identity.*",))
CE_CONFIG = Step("ce-config", ce_config_step, "Cyber Essentials configuration declared in the estate", ("ce.*",))
# Separate from ce-config: these judge the estate's own records (waivers, the address plan), not a
# Cyber Essentials control, and evidence no requirement.
HYGIENE = Step("estate-hygiene", hygiene_step, "the estate's own hygiene: overlapping ranges, waivers",
               ("estate.*",))
FIREWALLS = Step("firewalls", firewalls_step, "firewall audit: running configuration read back (Ansible)",
                 ("firewalls.*",))
FIRMWARE = Step("firmware", firmware_step, "firewall firmware against the advisory feed (14-day rule)",
                ("patch.firmware_*",))
PATCH = Step("patch", patch_step, "patch compliance (14-day rule, unsupported OS and software)", ("patch.*",))

ASSESS = Job("assess", (SELFTEST, NETWORK, SEGREGATION, DEVICES, MDM, FIREWALLS, FIRMWARE, INFRA_PLAN, IDENTITY,
                       CE_CONFIG, HYGIENE, PATCH),
             "the whole assessment", full_scope=True)

SCAN_SCOPE = Job("scan", (Step("scope-scan", scope_scan, "scan of an authorised scope", DRIFT_CHECKS),),
                 "a scan of one scope")
SCAN_IMPORT = Job("scan-import", (Step("scan-import", import_scan, "a scan file from elsewhere (nmap XML, Nessus, "
                                       "OpenVAS), compared with the estate", IMPORT_CHECKS),), "an imported scan")
SCAN_MATRIX = Job("scan", (SEGREGATION,), "the segregation matrix")
SCAN_SITE = Job("scan", (Step("site-scan", site_scan, "a site's own scanner (ansible-runner worker)",
                              DRIFT_CHECKS, needs_root="the site scanner runs in a network namespace"),),
                "a scan from a site's scanner")
DEVICES_AUDIT = Job("devices-audit", (DEVICES,), "device baseline audit")
DEVICES_APPLY = Job("devices-apply", (Step("devices", devices_step, "device baseline remediation (Ansible)",
                                           ("devices.*",)),), "device baseline remediation")
INFRA = Job("infra-plan", (INFRA_PLAN,), "offline infrastructure plan", full_scope=True)
FIREWALLS_AUDIT = Job("firewalls-audit", (FIREWALLS, FIRMWARE), "firewall audit")
FIREWALLS_APPLY = Job("firewalls-apply", (Step("firewalls", firewalls_step, "firewall policy applied (Ansible)",
                                             ("firewalls.*",)), FIRMWARE), "firewall policy applied")

ALL = (ASSESS, SCAN_SCOPE, SCAN_IMPORT, SCAN_MATRIX, SCAN_SITE, DEVICES_AUDIT, DEVICES_APPLY, INFRA, FIREWALLS_AUDIT,
       FIREWALLS_APPLY)


def describe_checks(pattern: str = "*") -> list[dict[str, Any]]:
    """Each check matching `pattern`, with everything one hop away: its metadata file, the code that
    emits it, the steps and jobs that run it, and the catalogue requirements it evidences."""
    from fnmatch import fnmatchcase
    from pathlib import Path

    from .catalogue import controls_for
    from .checks import PACKAGE_ROOT, registry

    root = PACKAGE_ROOT.parent
    sources = [p for base in (PACKAGE_ROOT, root / "infra") for p in base.rglob("*.py")]
    texts = {p: p.read_text(errors="replace") for p in sources}
    # Device checks are emitted by the Ansible tasks tagged with their id (the roles' audit mode).
    tasks = {p: p.read_text(errors="replace") for p in (root / "playbooks").rglob("*.yml")}
    out: list[dict[str, Any]] = []
    for cid, meta in sorted(registry().items()):
        if not fnmatchcase(cid, pattern):
            continue
        emitted = sorted(Path(p).relative_to(root).as_posix() for p, t in texts.items() if f'"{cid}"' in t)
        emitted += sorted(Path(p).relative_to(root).as_posix() for p, t in tasks.items()
                          if f"estate_report: {cid}" in t or f"[{cid}]" in t)
        steps = sorted({f"{job.kind}/{s.name}" for job in ALL for s in job.steps
                        if any(fnmatchcase(cid, pat) for pat in s.checks)})
        out.append({"id": cid, "title": meta.title, "severity": meta.severity.value,
                    "evidence_kind": meta.evidence_kind.value, "source": meta.source, "metadata": meta.defined_in,
                    "emitted_by": emitted, "steps": steps, "requirements": list(controls_for(cid)),
                    "description": meta.description.strip(), "remediation": meta.remediation.strip()})
    return out
