"""Two-person approval requests: pending, then approved or rejected, then used once."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from autoops.state.base import Connections


class ApprovalState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True)
class ApprovalRow:
    """A two-person approval request and what became of it."""

    request_id: str
    env: str
    action: str
    requester: str
    plan_digest: str
    plan: str  # JSON of the plan that was requested
    created: str
    expires: str
    state: str  # an ApprovalState value
    decided_by: str | None
    decided: str | None
    reason: str | None
    used_by: str | None  # the run that used an approval (each runs once)


class ApprovalTable:
    def __init__(self, database: Connections) -> None:
        self.database = database

    def add(self, row: ApprovalRow) -> None:
        with self.database.connect() as db:
            db.execute("INSERT INTO approval_requests VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       (row.request_id, row.env, row.action, row.requester, row.plan_digest,
                        row.plan, row.created, row.expires, row.state, row.decided_by,
                        row.decided, row.reason, row.used_by))

    def get(self, request_id: str) -> ApprovalRow | None:
        with self.database.connect() as db:
            row = db.execute("SELECT * FROM approval_requests WHERE request_id=?",
                             (request_id,)).fetchone()
        return ApprovalRow(*row) if row else None

    def all(self) -> list[ApprovalRow]:
        with self.database.connect() as db:
            rows = db.execute("SELECT * FROM approval_requests ORDER BY created").fetchall()
        return [ApprovalRow(*row) for row in rows]

    def decide(self, request_id: str, state: ApprovalState, actor: str, when: str,
               reason: str | None) -> bool:
        """Approve or reject a pending request; False if it was no longer pending."""
        with self.database.connect() as db:
            cur = db.execute("UPDATE approval_requests SET state=?, decided_by=?, decided=?, "
                             "reason=? WHERE request_id=? AND state=?",
                             (state.value, actor, when, reason, request_id,
                              ApprovalState.PENDING.value))
        return cur.rowcount == 1

    def use(self, request_id: str, run_id: str) -> bool:
        """Mark an approved request used by ``run_id``; False if another run used it."""
        with self.database.connect() as db:
            cur = db.execute("UPDATE approval_requests SET used_by=? WHERE request_id=? "
                             "AND state=? AND used_by IS NULL",
                             (run_id, request_id, ApprovalState.APPROVED.value))
        return cur.rowcount == 1
