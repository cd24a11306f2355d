"""The run path's values: what was asked, what it presented, and what came of it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from autoops.core.plan import Plan
from autoops.core.policy import Decision, SecondPersonFacts
from autoops.errors import AutoopsError
from autoops.exits import ExitStatus
from autoops.guard.confirmation import Clearance
from autoops.guard.grants import Grant


@dataclass(frozen=True)
class RunRequest:
    """What somebody asked for; parameters are still raw (strings from a command line)."""

    action: str
    env: str
    params: Mapping[str, Any] = field(default_factory=dict)
    limit: str | None = None
    check_mode: bool = False
    actor: str | None = None
    one_host: bool = False  # refuse unless the limit resolves to exactly one host (vm-safe)
    wait: float = 0  # seconds to wait for another run's host lock
    grant: str | None = None  # a grant token (or the id of one this machine has seen)
    approval: str | None = None  # an approved two-person request id
    promote_from: str | None = None  # `autoops promote`: the environment that proved it
    node: str | None = None  # an execution node of the environment's (nodes/ENV.yml)


@dataclass(frozen=True)
class Authority:
    """What a request presented in place of a human now: a grant, a second person."""

    grant: Grant | None = None
    second_person: SecondPersonFacts | None = None

    def grant_summary(self) -> dict[str, Any] | None:
        grant = self.grant
        if grant is None:
            return None
        return {"grant_id": grant.id, "issuer": grant.issuer, "break_glass": grant.break_glass,
                "reason": grant.reason, "expires": grant.to_dict()["expires"],
                "max_uses": grant.uses}


@dataclass
class RunResult:
    run_id: str
    plan: Plan
    decision: Decision
    approval: Clearance
    status: ExitStatus
    runner_status: str
    stats: dict[str, dict[str, int]]
    results: list[dict[str, Any]]
    error: AutoopsError | None = None
    warnings: list[str] = field(default_factory=list)
    promotion: dict[str, Any] | None = None  # the promotion gate's evidence, when one applied
    node: str | None = None  # the execution node it ran on (None: this machine)

    @property
    def reports(self) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {}
        for res in self.results:
            if res.get("report") is not None:
                found.setdefault(res["host"], []).append(res["report"])
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "plan": self.plan.to_dict(),
            "decision": self.decision.to_dict(),
            "approval": self.approval.to_dict(),
            "status": self.status.name.lower(),
            "exit_status": int(self.status),
            "runner_status": self.runner_status,
            "stats": self.stats,
            "reports": self.reports,
            "results": self.results,
            "warnings": self.warnings,
            "error": self.error.to_dict() if self.error else None,
            "node": self.node,
            **({"promotion": self.promotion} if self.promotion is not None else {}),
        }
