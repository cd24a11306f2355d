"""Two-person approval requests: another person approves one exact plan, once.

Requests live in state.db, bound to a digest of the plan's approved facts, so that an
approval never covers a changed plan; the requester can neither approve nor reject.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from autoops.common import identity
from autoops.common.canonical import canonical_json
from autoops.core.plan import Plan
from autoops.core.policy import SecondPersonFacts
from autoops.errors import (
    ApprovalDecidedError,
    ApprovalExpiredError,
    ApprovalPendingError,
    ApprovalPlanChangedError,
    ApprovalRejectedError,
    ApprovalSelfError,
    ApprovalUnknownError,
    ApprovalUsedError,
)
from autoops.state.approvals import ApprovalRow, ApprovalState
from autoops.state.db import StateDB

REQUEST_ID = r"^a-[0-9a-f]{12}$"

# What a second person approves: any change to one of these invalidates the approval.
APPROVED = ("action", "params", "env", "hosts", "limit", "check_mode", "content_digest",
            "revision")


class RequestState(enum.StrEnum):
    """What a request is now: its stored state, or used / expired as derived."""

    PENDING = ApprovalState.PENDING.value
    APPROVED = ApprovalState.APPROVED.value
    REJECTED = ApprovalState.REJECTED.value
    USED = "used"
    EXPIRED = "expired"


def _approved(plan_doc: Mapping[str, Any]) -> dict[str, Any]:
    doc = {key: plan_doc.get(key) for key in APPROVED}
    doc["hosts"] = sorted(doc["hosts"] or [])
    return doc


def plan_digest(plan: Plan) -> str:
    """A digest of the plan's approved facts (see APPROVED)."""
    return "sha256:" + hashlib.sha256(canonical_json(_approved(plan.to_dict()))).hexdigest()


def request_to_dict(row: ApprovalRow, now: datetime) -> dict[str, Any]:
    state: str
    if row.used_by:
        state = RequestState.USED
    elif row.state != ApprovalState.REJECTED and now >= datetime.fromisoformat(row.expires):
        state = RequestState.EXPIRED
    else:
        state = RequestState(row.state)
    return {"id": row.request_id, "env": row.env, "action": row.action,
            "requester": row.requester, "plan_digest": row.plan_digest,
            "plan": json.loads(row.plan), "created": row.created, "expires": row.expires,
            "state": state, "decided_by": row.decided_by,
            "decided": row.decided, "reason": row.reason, "used_by": row.used_by}


@dataclass
class SecondPerson:
    """Two-person approval requests, bound to a digest of the exact plan."""

    db: StateDB
    clock: Callable[[], datetime]

    def request(self, plan: Plan, requester: str, ttl: timedelta) -> ApprovalRow:
        now = self.clock()
        row = ApprovalRow(
            request_id=f"a-{secrets.token_hex(6)}", env=plan.env, action=plan.action_name,
            requester=requester, plan_digest=plan_digest(plan),
            plan=json.dumps(plan.to_dict(), sort_keys=True, default=str),
            created=now.isoformat(), expires=(now + ttl).isoformat(), state=ApprovalState.PENDING,
            decided_by=None, decided=None, reason=None, used_by=None)
        self.db.approvals.add(row)
        return row

    def get(self, request_id: str) -> ApprovalRow:
        row = self.db.approvals.get(request_id) if re.fullmatch(REQUEST_ID, request_id) else None
        if row is None:
            raise ApprovalUnknownError(f"no approval request {request_id!r}")
        return row

    def decide(self, request_id: str, actor: str, *, approve: bool,
               reason: str | None = None) -> ApprovalRow:
        """Approve or reject as ``actor``, who must not be the requester."""
        row = self.get(request_id)
        if identity.same(actor, row.requester):
            raise ApprovalSelfError(
                f"{actor} requested {request_id} and cannot also "
                f"{'approve' if approve else 'reject'} it")
        if row.state != ApprovalState.PENDING:
            raise ApprovalDecidedError(f"{request_id} was already {row.state} by {row.decided_by}")
        self._not_expired(row)
        if not self.db.approvals.decide(
                request_id, ApprovalState.APPROVED if approve else ApprovalState.REJECTED, actor,
                self.clock().isoformat(), reason):
            raise ApprovalDecidedError(f"{request_id} was decided by someone else meanwhile")
        return self.get(request_id)

    def check(self, request_id: str, plan: Plan, actor: str) -> SecondPersonFacts:
        """The approval may let this exact plan run now, for ``actor``; else raise."""
        row = self.get(request_id)
        if row.state == ApprovalState.REJECTED:
            raise ApprovalRejectedError(f"{request_id} was rejected by {row.decided_by}: "
                                        f"{row.reason}")
        if row.used_by:
            raise ApprovalUsedError(f"{request_id} was already used by run {row.used_by}")
        self._not_expired(row)
        if row.state != ApprovalState.APPROVED:
            raise ApprovalPendingError(f"{request_id} is still waiting for a second person",
                                       details={"approval_request": request_id})
        if identity.same(actor, row.decided_by):
            raise ApprovalSelfError(f"{actor} approved {request_id} and cannot also run it")
        digest = plan_digest(plan)
        if digest != row.plan_digest:
            raise ApprovalPlanChangedError(
                f"{request_id} approved plan {row.plan_digest[:19]}…, this run's plan is "
                f"{digest[:19]}… ({_plan_changes(json.loads(row.plan), plan.to_dict())})")
        return SecondPersonFacts(request_id, str(row.decided_by))

    def use(self, request_id: str, run_id: str) -> None:
        if not self.db.approvals.use(request_id, run_id):
            raise ApprovalUsedError(f"{request_id} was used by another run meanwhile")

    def _not_expired(self, row: ApprovalRow) -> None:
        if self.clock() >= datetime.fromisoformat(row.expires):
            raise ApprovalExpiredError(f"{row.request_id} expired at {row.expires}")


def plan_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Which approved facts (see APPROVED) differ between two plan documents."""
    old, new = _approved(before), _approved(after)
    return [key for key in APPROVED if old[key] != new[key]]


def _plan_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    changed = plan_changes(before, after)
    return "changed: " + ", ".join(changed) if changed else "changed"
