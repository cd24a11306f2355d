"""Satisfying a decision that needs a human: today, a typed confirmation.

The library never talks to a terminal: the caller passes a ``confirm`` function
(the CLI's prompt) or None when nobody is there to ask, and the run then stops
with approval required, having run nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autoops.plan import Plan
from autoops.policy import TYPED_CONFIRMATION, Decision, Outcome

Confirm = Callable[[Plan, Decision], str | None]


@dataclass(frozen=True)
class Approval:
    satisfied: bool
    method: str  # unattended | typed-confirmation | none
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"satisfied": self.satisfied, "method": self.method, "detail": self.detail}


def satisfy(plan: Plan, decision: Decision, confirm: Confirm | None) -> Approval:
    """Whether the decision's requirements are met now; asks ``confirm`` at most once."""
    if decision.outcome is Outcome.ALLOWED:
        return Approval(True, "unattended", decision.deciding_rule.reason)
    if decision.outcome is Outcome.DENIED:
        return Approval(False, "none", decision.deciding_rule.reason)
    if TYPED_CONFIRMATION not in decision.requirements:  # pragma: no cover - future approvals
        return Approval(False, "none", f"unsupported requirements {decision.requirements}")
    if confirm is None:
        return Approval(False, TYPED_CONFIRMATION, "no terminal to confirm on")
    typed = confirm(plan, decision)
    if typed is None:
        return Approval(False, TYPED_CONFIRMATION, "confirmation not given")
    if typed.strip() != plan.env:
        return Approval(False, TYPED_CONFIRMATION, "the typed text did not match the environment")
    return Approval(True, TYPED_CONFIRMATION, f"operator typed {plan.env!r}")
