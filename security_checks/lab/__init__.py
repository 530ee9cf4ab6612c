"""The demo lab harness: namespaces, listeners, the chroot endpoint and planted faults. Only the CLI imports it."""
