"""The scope statement: what an assessment covers, as the estate declares it.

Stored with every run (the run's context), so a report or an auditor reads the scope as it was
when the run assessed, not as the estate says today.
"""

from __future__ import annotations

from typing import Any

from .schema import Estate


def scope_statement(estate: Estate) -> dict[str, Any]:
    e = estate
    return {
        "organisation": e.organisation.name,
        "boundary": "whole organisation",
        "ce_version": e.organisation.ce_version,
        "sites": [{"name": s.name, "title": s.title, "kind": s.kind.value, "staff": s.staff,
                   "ranges": [str(r) for r in s.ranges], "firewall": s.firewall or ""} for s in e.sites],
        "device_groups": [{"name": g.name, "os": g.os.value, "count": g.count, "managed_by": g.managed_by,
                           "sites": g.sites if isinstance(g.sites, str) else ", ".join(g.sites),
                           "extended_security_updates": g.extended_security_updates
                           if isinstance(g.extended_security_updates, bool) else
                           [y.model_dump(mode="json") for y in g.extended_security_updates]}
                          for g in e.endpoint_groups],
        "devices_total": sum(g.count for g in e.endpoint_groups),
        "cloud_services": [{"name": lob.name, "title": lob.title, "hosting": lob.hosting.value,
                            "supplier": lob.supplier, "owner": lob.owner, "mfa_enforced": lob.mfa_enforced,
                            **({"os": lob.os.value, "vms": lob.vm_count} if lob.os else {})}
                           for lob in e.lob_systems],
        "firewalls": [{"name": f.name, "vendor": f.vendor, "site": f.site, "rules": len(f.rules)}
                      for f in e.firewalls],
        "scan_scopes": [{"name": s.name, "cidrs": [str(c) for c in s.cidrs], "exclusions": list(s.exclusions),
                         "authorised_by": s.authorised_by, "authorised_on": s.authorised_on.isoformat(),
                         "expires": s.expires.isoformat() if s.expires else "", "purpose": s.purpose,
                         "max_profile": s.max_profile} for s in e.scan_scopes],
    }
