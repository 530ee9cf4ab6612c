"""`estate schedule`: the estate's scheduled runs as hardened systemd timers (units.py) or AWX job
templates with schedules (awx.py). Both start runs only inside the scan scopes' authorised windows
(validated with the estate) and stop them when the window closes."""
