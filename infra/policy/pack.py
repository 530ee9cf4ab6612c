"""Every policy rule the pack enforces, in the order findings list them.

The landing-zone rules (rules.py) then the network rules (network_rules.py). The offline plan
(infra/plan.py) and the CrossGuard pack (infra/policy/__main__.py) both read this list, so the
rules a preview enforces and the rules `estate infra plan` reports are the same rules.
"""

from __future__ import annotations

from .network_rules import RULES as NETWORK_RULES
from .rules import RULES as LANDING_ZONE_RULES
from .rules import Rule

RULES: list[Rule] = [*LANDING_ZONE_RULES, *NETWORK_RULES]
