"""Two-person approvals: another approver decides a request bound to one plan."""

from __future__ import annotations

from typing import Any

from autoops.guard import approvals
from autoops.services.context import Context, reason_line
from autoops.services.stopping import approver_check
from autoops.state.approvals import ApprovalState


class Approvals:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def decide(self, request_id: str, *, approve: bool, reason: str | None = None,
               actor: str | None = None) -> dict[str, Any]:
        """Approve or reject another person's request (a rejection says why)."""
        ctx = self.ctx
        who = ctx.principal(actor)
        if not approve:
            reason = reason_line(reason or "")
        pending = ctx.second_person.get(request_id)
        if pending.env in ctx.policy.environments:
            approver_check(ctx, who, [pending.env], "approve or reject requests in")
        row = ctx.second_person.decide(request_id, who.name, approve=approve, reason=reason)
        ctx.record_admin("approval.approved" if approve else "approval.rejected", row.env, {
            "request_id": row.request_id, "requester": row.requester,
            "plan_digest": row.plan_digest, "reason": reason}, action=row.action, actor=who.name)
        return approvals.request_to_dict(row, ctx.clock())

    def listing(self, *, pending_only: bool = False) -> list[dict[str, Any]]:
        now = self.ctx.clock()
        docs = [approvals.request_to_dict(r, now) for r in self.ctx.db.approvals.all()]
        return [d for d in docs if d["state"] == ApprovalState.PENDING or not pending_only]
