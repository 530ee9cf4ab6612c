"""Segregation the estate's own declarations must keep, as findings of the `estate-hygiene` step
(evidence: declared): pupils' networks never reach the council's own zones, and device networks
(IoT, building management, CCTV) reach only their zone's declared controllers.

The rules are judged by `network.policy.segregation_breaches` on the zones, VLANs, SSIDs and
firewall rules as declared; each breach names the file and line that declares it. What the
devices really let through is the segregation step's business (a scan across the lab's zones).
"""

from __future__ import annotations

from ..checks import make_finding
from ..findings import Finding, Status
from ..model.assets import asset_for_path
from ..model.located import LoadedEstate
from ..network.policy import DEVICES_BEYOND_CONTROLLER, PUPILS_REACH_CORPORATE, segregation_breaches

PUPILS = "estate.pupil_network_reaches_corporate"
DEVICES = "estate.device_zone_beyond_controller"
CHECK_FOR = {PUPILS_REACH_CORPORATE: PUPILS, DEVICES_BEYOND_CONTROLLER: DEVICES}
EXPECTED = {
    PUPILS: "pupils' VLANs and SSIDs in pupil zones only, and no allow rule from a pupil zone to a staff, server, "
            "voice, management, public-sector network or cloud zone",
    DEVICES: "every allow rule from an iot, building-management or cctv zone reaches only the declared hosts the "
             "zone names as its controllers",
}


def segregation_findings(loaded: LoadedEstate) -> list[Finding]:
    estate = loaded.estate
    out = []
    for breach in segregation_breaches(estate):
        check = CHECK_FOR[breach.rule]
        asset, inside = asset_for_path(estate, breach.path)
        file, line = loaded.where(breach.path)
        out.append(make_finding(
            check, asset, Status.FAIL, key=inside, zone=breach.zone,
            site=asset.partition(":")[2] if asset.startswith("site:") else None,
            observed=f"{breach.message} ({file}:{line})", expected=EXPECTED[check],
            details={"estate_file": file, "estate_line": line, "field": inside}))
    failing = {f.check_id for f in out}
    pupil_zones = [z.name for z in estate.zones if z.kind.value == "pupil"]
    device_zones = [z.name for z in estate.zones if z.kind.value in ("iot", "building-management", "cctv")]
    rules = sum(len(fw.rules) for fw in estate.firewalls)
    passes = {
        PUPILS: f"{len(pupil_zones)} pupil zone(s) ({', '.join(pupil_zones) or 'none'}): every pupils' VLAN and SSID "
                f"in one, and none of {rules} firewall rule(s) lets them reach a council zone",
        DEVICES: f"{len(device_zones)} device zone(s) ({', '.join(device_zones) or 'none'}): none of {rules} firewall "
                 "rule(s) lets them reach more than their controllers",
    }
    for check, observed in passes.items():
        if check not in failing:
            out.append(make_finding(check, f"estate:{estate.organisation.short_name}", Status.PASS,
                                    observed=observed, expected=EXPECTED[check]))
    return out
