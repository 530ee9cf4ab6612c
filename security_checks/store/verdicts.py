"""The SQL of stored compliance verdicts (see security_checks/verdicts.py for what they are)."""

from __future__ import annotations

import json

from ..verdicts import FrameworkVerdict, RequirementRow
from .db import Cursor, Database


def insert(cur: Cursor, run_id: str, verdicts: list[FrameworkVerdict]) -> None:
    for v in verdicts:
        head = v.model_dump(mode="json", exclude={"requirements"})
        cur.execute("INSERT INTO verdicts (run_id, framework, version, in_force, verdict, data) VALUES (?,?,?,?,?,?)",
                    (run_id, v.framework, v.version, int(v.in_force), v.verdict, json.dumps(head)))
        cur.executemany("INSERT INTO requirement_results (run_id, framework, version, position, ref, status, data)"
                        " VALUES (?,?,?,?,?,?,?)",
                        [(run_id, v.framework, v.version, i, r.ref, r.status, r.model_dump_json())
                         for i, r in enumerate(v.requirements)])


def read(db: Database, run_id: str) -> list[FrameworkVerdict]:
    rows: dict[tuple[str, str], list[RequirementRow]] = {}
    for r in db.execute("SELECT framework, version, data FROM requirement_results WHERE run_id = ?"
                        " ORDER BY framework, version, position", (run_id,)):
        rows.setdefault((r[0], r[1]), []).append(RequirementRow.model_validate_json(r[2]))
    out = []
    for r in db.execute("SELECT framework, version, data FROM verdicts WHERE run_id = ? ORDER BY framework, version",
                        (run_id,)):
        out.append(FrameworkVerdict.model_validate({**json.loads(r[2]), "requirements": rows.get((r[0], r[1]), [])}))
    return out
