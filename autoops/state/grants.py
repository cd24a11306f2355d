"""Grants this machine has seen: first sight, revocation, and each use (counted once)."""

from __future__ import annotations

from dataclasses import dataclass

from autoops.state.base import Connections

_SELECT = ("SELECT g.grant_id, g.env, g.token, g.expires, g.max_uses, g.recorded, g.revoked, "
           "g.revoked_by, g.revoke_reason, (SELECT COUNT(*) FROM grant_uses u "
           "WHERE u.grant_id = g.grant_id) FROM grants g")


@dataclass(frozen=True)
class GrantRow:
    """A grant this machine has seen, with its revocation and how often it was used."""

    grant_id: str
    env: str
    token: str
    expires: str
    max_uses: int | None
    recorded: str
    revoked: str | None
    revoked_by: str | None
    revoke_reason: str | None
    uses: int = 0


class GrantTable:
    def __init__(self, database: Connections) -> None:
        self.database = database

    def remember(self, row: GrantRow) -> None:
        """Record a grant once (first sight, or creation); later calls change nothing."""
        with self.database.connect() as db:
            db.execute("INSERT OR IGNORE INTO grants VALUES (?,?,?,?,?,?,?,?,?)",
                       (row.grant_id, row.env, row.token, row.expires, row.max_uses,
                        row.recorded, None, None, None))

    def get(self, grant_id: str) -> GrantRow | None:
        with self.database.connect() as db:
            row = db.execute(_SELECT + " WHERE g.grant_id=?", (grant_id,)).fetchone()
        return GrantRow(*row) if row else None

    def all(self) -> list[GrantRow]:
        with self.database.connect() as db:
            rows = db.execute(_SELECT + " ORDER BY g.recorded").fetchall()
        return [GrantRow(*row) for row in rows]

    def revoke(self, grant_id: str, when: str, actor: str, reason: str) -> bool:
        """Revoke; False when it was already revoked (the first revocation stands)."""
        with self.database.connect() as db:
            cur = db.execute("UPDATE grants SET revoked=?, revoked_by=?, revoke_reason=? "
                             "WHERE grant_id=? AND revoked IS NULL", (when, actor, reason, grant_id))
        return cur.rowcount == 1

    def use(self, grant_id: str, run_id: str, when: str) -> tuple[GrantRow | None, bool]:
        """Count one use unless revoked or exhausted, in one IMMEDIATE transaction.

        Returns the grant as it was before this use and whether the use was counted.
        """
        with self.database.transaction() as db:
            found = db.execute(_SELECT + " WHERE g.grant_id=?", (grant_id,)).fetchone()
            row = GrantRow(*found) if found else None
            ok = (row is not None and row.revoked is None
                  and (row.max_uses is None or row.uses < row.max_uses))
            if ok:
                db.execute("INSERT INTO grant_uses VALUES (?,?,?)", (grant_id, run_id, when))
        return row, ok
