"""Clearing a decision to run now: unattended, by a typed confirmation, or not at all.

The library never talks to a terminal: the caller passes a ``confirm`` function
(the CLI's prompt) or None when nobody is there to ask, and the run then stops
with approval required, having run nothing. A second person is not asked here
(see :mod:`autoops.guard.approvals`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autoops.core.plan import Plan
from autoops.core.policy import SECOND_PERSON, TYPED_CONFIRMATION, Decision, Outcome

Confirm = Callable[[Plan, Decision], str | None]


@dataclass(frozen=True)
class Clearance:
    """What cleared a decision to run (or why nothing did); shown as a run's ``approval``."""

    satisfied: bool
    method: str  # unattended | typed-confirmation | none
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"satisfied": self.satisfied, "method": self.method, "detail": self.detail}


def satisfy(plan: Plan, decision: Decision, confirm: Confirm | None) -> Clearance:
    """Whether the decision's requirements are met now; asks ``confirm`` at most once.

    A second person cannot be satisfied here (the engine records a request for one);
    the typed confirmation is asked only when it is all that is missing.
    """
    if decision.outcome is Outcome.ALLOWED:
        method = "+".join(decision.authorised_by) or "unattended"
        return Clearance(True, method, decision.deciding_rule.reason)
    if decision.outcome is Outcome.DENIED:
        return Clearance(False, "none", decision.deciding_rule.reason)
    if SECOND_PERSON in decision.requirements:
        return Clearance(False, SECOND_PERSON, "a second person has not approved this plan")
    if confirm is None:
        return Clearance(False, TYPED_CONFIRMATION, "no terminal to confirm on")
    typed = confirm(plan, decision)
    if typed is None:
        return Clearance(False, TYPED_CONFIRMATION, "confirmation not given")
    if typed.strip() != plan.env:
        return Clearance(False, TYPED_CONFIRMATION, "the typed text did not match the environment")
    via = "".join(f"{v}+" for v in decision.authorised_by)
    return Clearance(True, via + TYPED_CONFIRMATION, f"operator typed {plan.env!r}")
