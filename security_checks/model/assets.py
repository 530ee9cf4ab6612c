"""What a finding about the estate's own declarations is about, named as the estate names it.

Several engines report on things the estate declares (the offline plan's violations, the estate's
own hygiene), and a reader, a waiver and the Remediation Action Plan must see one thing under one
name whoever reported it. So an estate path maps to one asset:

    sites[i]...                 site:<name>
    lob_systems[i]...           lob:<name>            (its owner is the information asset owner)
    ssids[i]...                 ssid:<name>
    firewalls[i]...             firewall:<name>
    azure.connectivity...       hub:<region>          (the secondary hub's fields: its own region)
    anything else               tenancy:<organisation.short_name>

and the rest of the path (the field inside that thing, list items by name where they have one) says
where in it, e.g. `vlans[guest].cidr`. Nothing here depends on list positions being stable except
where an item has no name.
"""

from __future__ import annotations

from typing import Any

from .located import LoadedEstate, Path_
from .schema import Estate

_NAMED_SECTIONS = {"sites": "site", "lob_systems": "lob", "ssids": "ssid", "firewalls": "firewall"}


def asset_for_path(estate: Estate, path: Path_) -> tuple[str, str]:
    """(asset, where inside it) for the estate value at `path`."""
    if len(path) >= 2 and path[0] in _NAMED_SECTIONS and isinstance(path[1], int):
        items: list[Any] = getattr(estate, str(path[0]))
        if 0 <= path[1] < len(items):
            item = items[path[1]]
            return f"{_NAMED_SECTIONS[str(path[0])]}:{item.name}", field_label(item, path[2:])
    if path[:2] == ("azure", "connectivity"):
        region = estate.azure.secondary_region if path[2:3] == ("secondary_hub_address_space",) \
            else estate.azure.primary_region
        return f"hub:{region}", field_label(estate.azure.connectivity, path[2:])
    return f"tenancy:{estate.organisation.short_name}", field_label(estate, path)


def field_label(root: Any, path: Path_) -> str:
    """`path` under `root` as people read it: list items by their name where they have one."""
    out = ""
    node: Any = root
    for part in path:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            name = getattr(item, "name", None)
            out += f"[{name}]" if isinstance(name, str) else f"[{part}]"
            node = item
        else:
            out += f".{part}" if out else str(part)
            node = getattr(node, part, None) if node is not None else None
    return out


class Origins:
    """From a file and line (as another process reported them) back to the estate path declared there.

    Both sides name files relative to the estate directory (LoadedEstate.locations), so the other
    process may have loaded the estate through any path (the offline plan is given it resolved).
    """

    def __init__(self, loaded: LoadedEstate):
        self._at: dict[tuple[str, int], Path_] = {}
        for path, key in loaded.locations.items():
            # Several values start on one line (a flow mapping, a list item and its first key): the
            # outermost of them is the thing declared there.
            known = self._at.get(key)
            if known is None or len(path) < len(known):
                self._at[key] = path

    def path_at(self, file: str | None, line: int | None) -> Path_ | None:
        if file is None or line is None:
            return None
        return self._at.get((file, line))
