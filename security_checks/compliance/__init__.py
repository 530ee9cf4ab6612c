"""Compliance: the patch and configuration steps, and the verdicts and RAP transition the runner computes at commit."""
