"""Emergency stops: one per scope (an environment or ``*``) and target actor."""

from __future__ import annotations

from dataclasses import dataclass

from autoops.state.base import Connections


@dataclass(frozen=True)
class HaltRow:
    scope: str  # an environment, or "*" for all
    reason: str
    actor: str
    since: str
    against: str = ""  # the actor whose runs it stops (normalised); "" for everyone


class HaltTable:
    def __init__(self, database: Connections) -> None:
        self.database = database

    def engage(self, row: HaltRow) -> bool:
        """Engage a halt for a scope (and target); False when one is already in force (kept)."""
        with self.database.connect() as db:
            cur = db.execute("INSERT OR IGNORE INTO halts VALUES (?,?,?,?,?)",
                             (row.scope, row.reason, row.actor, row.since, row.against))
        return cur.rowcount == 1

    def clear(self, scope: str, against: str = "") -> HaltRow | None:
        with self.database.connect() as db:
            row = db.execute("DELETE FROM halts WHERE scope=? AND against=? RETURNING *",
                             (scope, against)).fetchone()
        return HaltRow(*row) if row else None

    def all(self) -> list[HaltRow]:
        with self.database.connect() as db:
            rows = db.execute("SELECT scope, reason, actor, since, against FROM halts "
                              "ORDER BY since").fetchall()
        return [HaltRow(*row) for row in rows]
