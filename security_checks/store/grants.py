"""Least privilege on a shared PostgreSQL store: the statements `estate store grants` prints.

Three kinds of role, and only one of them may change the schema:
- the database's owner applies migrations (the first estate that opens the store as the owner does);
- `estate_writer`, for runs (operators and site scanners): reads everything, adds runs, findings,
  verdicts and evidence records, moves the Remediation Action Plan on; it may delete nothing but
  the object rows of an archive push it is replacing, and it can never drop or alter a table;
- `estate_reader`, for report readers and auditors: reads, and nothing else.
People and scanners log in as their own roles, members of one of these two (see the printed
example), so the database's own log says who did what.
"""

from __future__ import annotations

import re

READER, WRITER = "estate_reader", "estate_writer"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def grant_statements(database: str = "estate", *, schema: str = "public", reader: str = READER,
                     writer: str = WRITER) -> list[str]:
    """The GRANT statements, in order, for the database's owner to run once (psql -f, or paste)."""
    for name in (database, schema, reader, writer):
        if not _NAME.match(name):
            raise ValueError(f"{name!r}: not a plain PostgreSQL name (lower case letters, digits and _)")
    both = f"{reader}, {writer}"
    return [
        f"-- Run once as the owner of database {database} (the role whose estate applies the migrations).",
        f"CREATE ROLE {reader} NOLOGIN;",
        f"CREATE ROLE {writer} NOLOGIN;",
        f"REVOKE ALL ON DATABASE {database} FROM PUBLIC;",
        f"GRANT CONNECT ON DATABASE {database} TO {both};",
        f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC;",
        f"GRANT USAGE ON SCHEMA {schema} TO {both};",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {both};",
        f"GRANT INSERT, UPDATE ON ALL TABLES IN SCHEMA {schema} TO {writer};",
        f"REVOKE INSERT, UPDATE ON {schema}.schema_migrations FROM {writer};",
        "-- A push that replaces a bundle's object rows recorded before per-object rows existed.",
        f"GRANT DELETE ON {schema}.evidence_objects TO {writer};",
        "-- Tables later migrations add (as the owner) get the same grants.",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {both};",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT INSERT, UPDATE ON TABLES TO {writer};",
        "-- Then one login role per person or scanner, for example:",
        f"--   CREATE ROLE auditor_jones LOGIN PASSWORD '...' IN ROLE {reader};",
        f"--   CREATE ROLE scanner_depot LOGIN PASSWORD '...' IN ROLE {writer};",
    ]
