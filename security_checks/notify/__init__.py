"""`estate notify`: what changed since the previous run, told to the security group by email and chat.

changes.py reads the store (never an engine: a notice says only what a run stored), message.py
renders it at the detail the estate allows, send.py delivers it (SMTP with STARTTLS, Teams or Slack
webhooks). Secrets come from the environment and never appear in a notice or a log line.
"""
