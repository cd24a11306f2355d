"""Per-environment policy and its pure evaluation.

``evaluate`` does no I/O and reads no clock: everything it needs (the policy, the
plan's facts, the time) is passed in, so every rule is table-tested from YAML cases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from autoops import yamlfile
from autoops.catalog import ENV_NAME
from autoops.errors import PolicyInvalidError
from autoops.risk import NAMES as RISK_NAMES
from autoops.risk import Risk

POLICY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["version", "environments"],
    "properties": {
        "version": {"const": 1},
        "environments": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": ENV_NAME},
            "additionalProperties": {
                "type": "object",
                "required": ["unattended_max_risk", "confirm_max_risk"],
                "properties": {
                    "description": {"type": "string"},
                    "unattended_max_risk": {"enum": list(RISK_NAMES)},
                    "confirm_max_risk": {"enum": [*RISK_NAMES, "NONE"]},
                },
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}

TYPED_CONFIRMATION = "typed-confirmation"


@dataclass(frozen=True)
class EnvPolicy:
    """What one environment allows: unattended up to a class, confirmed up to another."""

    name: str
    description: str
    unattended_max_risk: Risk
    confirm_max_risk: Risk | None  # None: nothing above the unattended ceiling may run


@dataclass(frozen=True)
class Policy:
    environments: Mapping[str, EnvPolicy]
    path: Path | None = None

    @classmethod
    def load(cls, path: Path) -> Policy:
        """Load and check policy.yml; unknown keys or values name the file and line."""
        doc = yamlfile.load(path, PolicyInvalidError)
        yamlfile.validate(doc, POLICY_SCHEMA, path, PolicyInvalidError)
        return cls.from_mapping(doc, path)

    @classmethod
    def from_mapping(cls, doc: Mapping[str, Any], path: Path | None = None) -> Policy:
        envs: dict[str, EnvPolicy] = {}
        for name, spec in doc["environments"].items():
            unattended = Risk.parse(spec["unattended_max_risk"])
            confirm_name = spec["confirm_max_risk"]
            confirm = None if confirm_name == "NONE" else Risk.parse(confirm_name)
            if confirm is not None and confirm < unattended:
                line = yamlfile.line_of(doc, ["environments", name, "confirm_max_risk"])
                raise PolicyInvalidError(
                    f"{path}:{line}: {name}: confirm_max_risk {confirm.name} is below "
                    f"unattended_max_risk {unattended.name}"
                )
            envs[name] = EnvPolicy(name, spec.get("description", ""), unattended, confirm)
        return cls(envs, path)

    def to_dict(self) -> dict[str, Any]:
        return {
            name: {
                "description": env.description,
                "unattended_max_risk": env.unattended_max_risk.name,
                "confirm_max_risk": env.confirm_max_risk.name if env.confirm_max_risk else "NONE",
            }
            for name, env in self.environments.items()
        }


class Outcome(StrEnum):
    ALLOWED = "allowed"
    APPROVAL_REQUIRED = "approval_required"
    DENIED = "denied"


@dataclass(frozen=True)
class RuleResult:
    """One rule's contribution: its id, what it decided and why."""

    rule: str
    outcome: Outcome
    reason: str


@dataclass(frozen=True)
class Request:
    """The facts about a planned run that the policy looks at."""

    env: str
    action: str
    risk: Risk
    action_environments: tuple[str, ...]
    actor: str
    check_mode: bool
    now: datetime


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    risk: Risk
    rules: tuple[RuleResult, ...]
    requirements: tuple[str, ...] = field(default_factory=tuple)

    @property
    def deciding_rule(self) -> RuleResult:
        """The last rule whose outcome is the decision's outcome (the one that settled it)."""
        return next(r for r in reversed(self.rules) if r.outcome is self.outcome)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "risk": self.risk.name,
            "rule": self.deciding_rule.rule,
            "reason": self.deciding_rule.reason,
            "requirements": list(self.requirements),
            "rules": [
                {"rule": r.rule, "outcome": r.outcome.value, "reason": r.reason} for r in self.rules
            ],
        }


def evaluate(policy: Policy, request: Request) -> Decision:
    """Decide whether ``request`` may run now, needs a human, or is denied."""
    rules: list[RuleResult] = []
    env = policy.environments.get(request.env)
    if env is None:
        rules.append(RuleResult("env-declared", Outcome.DENIED,
                                f"environment {request.env!r} is not declared in policy.yml"))
        return Decision(Outcome.DENIED, request.risk, tuple(rules))
    rules.append(RuleResult("env-declared", Outcome.ALLOWED,
                            f"environment {request.env!r} is declared"))
    if request.env not in request.action_environments:
        rules.append(RuleResult(
            "action-env", Outcome.DENIED,
            f"{request.action} may run only in: {', '.join(request.action_environments)}"))
        return Decision(Outcome.DENIED, request.risk, tuple(rules))
    rules.append(RuleResult("action-env", Outcome.ALLOWED,
                            f"{request.action} is allowed in {request.env}"))
    return _risk_rules(env, request, rules)


def _risk_rules(env: EnvPolicy, request: Request, rules: list[RuleResult]) -> Decision:
    risk = request.risk
    mode = " in check mode" if request.check_mode else ""
    if risk <= env.unattended_max_risk:
        rules.append(RuleResult(
            "risk-unattended", Outcome.ALLOWED,
            f"{risk.name} is within {env.name}'s unattended ceiling "
            f"{env.unattended_max_risk.name}{mode}"))
        return Decision(Outcome.ALLOWED, risk, tuple(rules))
    if env.confirm_max_risk is not None and risk <= env.confirm_max_risk:
        rules.append(RuleResult(
            "risk-confirm", Outcome.APPROVAL_REQUIRED,
            f"{risk.name} is above {env.name}'s unattended ceiling "
            f"{env.unattended_max_risk.name}: a typed confirmation of the environment name "
            f"is required{mode}"))
        return Decision(Outcome.APPROVAL_REQUIRED, risk, tuple(rules), (TYPED_CONFIRMATION,))
    ceiling = env.confirm_max_risk.name if env.confirm_max_risk else env.unattended_max_risk.name
    rules.append(RuleResult(
        "risk-ceiling", Outcome.DENIED,
        f"{risk.name} is above the highest class {env.name} allows ({ceiling})"))
    return Decision(Outcome.DENIED, risk, tuple(rules))
