"""Findings: what each check last said about each subject, kept between watch runs.

The body is the JSON of :class:`autoops.watch.findings.Finding`; the store does not
interpret it, so the state machine can change without a migration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from autoops.state.base import Connections

_COLUMNS = "finding_id, env, host, check_name, subject, body, updated"


@dataclass(frozen=True)
class FindingRow:
    finding_id: str
    env: str
    host: str
    check: str
    subject: str
    body: str  # JSON
    updated: str


class FindingTable:
    def __init__(self, database: Connections) -> None:
        self.database = database

    def change(self, row: FindingRow, body: Callable[[str | None], str]) -> str:
        """Replace the finding's body with ``body(old)`` in one IMMEDIATE transaction.

        A watch run stepping a finding and a person acknowledging it at the same moment
        both count: neither writes back a body the other has not seen.
        """
        with self.database.transaction() as db:
            found = db.execute("SELECT body FROM findings WHERE finding_id=?",
                               (row.finding_id,)).fetchone()
            new = body(found[0] if found else None)
            db.execute("INSERT INTO findings VALUES (?,?,?,?,?,?,?) ON CONFLICT(finding_id) "
                       "DO UPDATE SET body=excluded.body, updated=excluded.updated",
                       (row.finding_id, row.env, row.host, row.check, row.subject, new,
                        row.updated))
        return new

    def get(self, fid: str) -> FindingRow | None:
        with self.database.connect() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM findings WHERE finding_id=?",  # noqa: S608
                             (fid,)).fetchone()
        return FindingRow(*row) if row else None

    def all(self, env: str | None = None) -> list[FindingRow]:
        with self.database.connect() as db:
            if env is None:
                rows = db.execute(f"SELECT {_COLUMNS} FROM findings "  # noqa: S608
                                  "ORDER BY env, host, check_name, subject").fetchall()
            else:
                rows = db.execute(f"SELECT {_COLUMNS} FROM findings WHERE env=? "  # noqa: S608
                                  "ORDER BY host, check_name, subject", (env,)).fetchall()
        return [FindingRow(*row) for row in rows]
