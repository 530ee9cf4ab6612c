"""Network facts: what the estate model implies for the network, computed once.

`reach` (zones and their prefixes, PSN reach and flows, VPN sites, Wi-Fi, private DNS), `policy`
(what the firewall policy allows between two addresses) and `diagram` (the PSN network diagram).
They read only the estate model, so the Pulumi program, the scans, the compliance checks and the
diagram all use the same answers. Nothing here imports an engine or the Pulumi program.
"""
