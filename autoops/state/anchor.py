"""The audit anchor: the newest durable audit record, so a cut-off tail is detectable."""

from __future__ import annotations

from autoops.state.base import Connections


class AnchorTable:
    def __init__(self, database: Connections) -> None:
        self.database = database

    def get(self) -> tuple[int, str] | None:
        with self.database.connect() as db:
            row = db.execute("SELECT seq, hash FROM audit_anchor WHERE id=1").fetchone()
        return (int(row[0]), str(row[1])) if row else None

    def advance(self, seq: int, digest: str) -> None:
        """Move the anchor forward to ``seq``; never back."""
        with self.database.connect() as db:
            db.execute("INSERT INTO audit_anchor VALUES (1,?,?) ON CONFLICT(id) DO UPDATE SET "
                       "seq=excluded.seq, hash=excluded.hash WHERE excluded.seq > seq",
                       (seq, digest))
