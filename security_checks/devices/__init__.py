"""End-user device baseline: Ansible roles (playbooks/roles/*_baseline) run through ansible-runner in
check mode (audit) or for real (apply), their per-task results turned into Findings."""
