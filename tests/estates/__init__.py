"""The estates the tests run the product on besides the demo (inventory/demo, Harrowdale).

Each is a council written for the tests, unlike the demo in nation, network, size and naming, so
no output can lean on the demo. A test that must hold for every council parametrises over
`COUNCILS` (or `NON_DEMO_ESTATES`, the directories).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Council:
    directory: Path
    name: str            # organisation.name
    network: str         # its public-sector network, as every output must call it
    sites: int


GLENMORAY = Council(HERE / "glenmoray", "Glenmoray Council", "SWAN", 36)
# Welsh, on PSBA (declared in organisation.public_network), with schools' pupil networks and care homes.
CWM_TAWEL = Council(HERE / "cwm-tawel", "Cwm Tawel County Borough Council", "PSBA", 34)

COUNCILS = (GLENMORAY, CWM_TAWEL)
NON_DEMO_ESTATES = tuple(c.directory for c in COUNCILS)
