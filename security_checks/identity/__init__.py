"""The identity engine: multi-factor authentication judged from what Microsoft Entra ID enforces.

Cyber Essentials v3.3 fails automatically on a cloud service without MFA for every user and
administrator (CE3.3:UAC-7). `ce.cloud_mfa` reads what the estate declares; this engine reads the
tenant's own configuration back, as Microsoft Graph v1.0 returns it (exports a person or a
pipeline saved as JSON, never fetched at run time), and judges:

- an ENABLED conditional access policy requires MFA for all users on all cloud apps, and who it
  leaves out (`identity.mfa_all_users`, `identity.mfa_exclusion`);
- legacy authentication, which cannot do MFA, is blocked (`identity.legacy_auth_blocked`);
- administrators and users are registered for MFA (`identity.admin_mfa_registration`,
  `identity.user_mfa_registration`);
- each line-of-business system's sign-in is covered, or, for a service with its own accounts,
  shown as declared and not assessed (`identity.lob_sign_in`).

export.py reads and refuses exports; conditional_access.py, registration.py and lob_sign_in.py
judge; step.py is the runner's step. README.md beside this file says how to make an export.
"""
