"""What Pulumi runs (`main: infra/` in Pulumi.yaml): read stack config, load the estate, build it.

Stack config (Pulumi.<stack>.yaml), all under the `estate` namespace:
    estate:dir                 the estate model directory (default inventory/demo), relative to the repo root
    estate:environment         the <env> part of resource names (default prod)
    estate:adminSshPublicKey   the Linux VMs' break-glass SSH public key
    estate:stateBackend        a note of where state lives (the backend is chosen by `pulumi login`)
"""

from __future__ import annotations

import sys
from pathlib import Path

# Pulumi runs this file as a script from infra/: make the repository (security_checks, infra) importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pulumi

from infra.config import DEFAULT_ESTATE_DIR, InfraConfig
from infra.program import build
from security_checks.model.loader import EstateError, load_estate


def main() -> None:
    cfg = pulumi.Config("estate")
    defaults = InfraConfig()
    config = InfraConfig(
        stack=pulumi.get_stack(),
        environment=cfg.get("environment") or defaults.environment,
        estate_dir=cfg.get("dir") or DEFAULT_ESTATE_DIR,
        state_backend=cfg.get("stateBackend") or defaults.state_backend,
        admin_ssh_public_key=cfg.get("adminSshPublicKey") or defaults.admin_ssh_public_key,
    )
    try:
        # policy=True: a real deployment refuses an estate with overlapping ranges outright.
        loaded = load_estate(config.estate_path)
    except EstateError as exc:
        raise pulumi.RunError(f"the estate at {config.estate_path} is not valid:\n{exc}") from None
    built = build(loaded, config)
    pulumi.export("organisation", loaded.estate.organisation.name)
    pulumi.export("estateDigest", loaded.digest)
    pulumi.export("hubDesign", built.hub.design.value)
    pulumi.export("logAnalyticsWorkspaceId", built.tenancy.workspace.id)
    pulumi.export("evidenceStorageAccount", built.tenancy.evidence_account.name)
    pulumi.export("lobSystems", {name: {"hosting": s.lob.hosting.value, "tier": s.lob.tier.value,
                                        "conditionalAccess": s.args.conditional_access}
                                 for name, s in built.lob_systems.items()})


main()
