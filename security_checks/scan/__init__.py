"""Network scans: nmap and scapy inside the authorised scopes, compared with the estate."""
