"""Firewalls managed by Ansible: the declared policy applied by the fortigate_policy and nftables_gateway
roles, read back from each device and compared with the estate (audit and apply)."""
