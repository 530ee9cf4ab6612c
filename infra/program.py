"""The whole estate program: `build(loaded, config)` registers every resource, concern by concern.

Called by `infra/__main__.py` under the Pulumi engine and by `infra/plan.py` under the mock runtime,
so it must not read Pulumi config or call invokes: everything it needs is in the estate model and
the `InfraConfig`.

Order: tenancy first (management groups, policy, the central Log Analytics workspace every other
part sends diagnostics to), then the connectivity hub, then the LOB systems (spokes joined to the
hub), then the WAN and Wi-Fi (infra/wan.py, infra/wifi.py, infra/identity.py: the WAN helper's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from security_checks.model.loader import LoadedEstate, Path_

from . import hub as hub_mod
from . import identity, vault_access, wan, wifi
from . import lob as lob_mod
from . import tenancy as tenancy_mod
from .config import InfraConfig
from .context import Context
from .naming import Namer

if TYPE_CHECKING:
    from .hub import Hub
    from .tenancy import Tenancy


@dataclass
class Built:
    """What the program built, for exports, the plan and tests."""

    ctx: Context
    tenancy: Tenancy
    hub: Hub
    lob_systems: dict[str, Any] = field(default_factory=dict)   # name -> lob.System component
    extra: dict[str, Any] = field(default_factory=dict)         # what wan/wifi/identity return, by name

    @property
    def origins(self) -> dict[str, Path_]:
        return self.ctx.origins


def build(loaded: LoadedEstate, config: InfraConfig | None = None) -> Built:
    cfg = config or InfraConfig()
    estate = loaded.estate
    ctx = Context(loaded=loaded, config=cfg,
                  namer=Namer(estate.organisation.short_name, cfg.environment, estate.azure.primary_region))

    tenancy = tenancy_mod.build(ctx)
    hub = hub_mod.build(ctx)
    built = Built(ctx=ctx, tenancy=tenancy, hub=hub)
    built.lob_systems = lob_mod.build(ctx, hub)

    # ---- WAN helper: network concerns plug in here (one line each; they own these modules) ------
    # Each gets the Context (ctx.estate, ctx.namer, ctx.provider(...), ctx.tags(...), ctx.diagnostics,
    # ctx.track) and the Hub (infra/hub.py); store what they return in built.extra.
    built.extra["identity"] = identity.build(ctx, hub)
    built.extra["wan"] = wan.build(ctx, hub, built.extra["identity"])
    built.extra["wifi"] = wifi.build(ctx, built.extra["identity"])
    # ---- end of WAN helper section -------------------------------------------------------------
    # Once the DNS VNet exists: private endpoints and data-plane roles for every vault.
    built.extra["vault_access"] = vault_access.build(ctx, tenancy, built.extra["identity"], built.extra["wan"],
                                                     built.lob_systems)
    return built
