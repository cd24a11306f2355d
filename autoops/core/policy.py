"""Per-environment policy and its pure evaluation.

``evaluate`` does no I/O and reads no clock: everything it needs (the policy, the
plan's facts, the time) is passed in, so every rule is table-tested from YAML cases.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from autoops.common import durations, yamlfile
from autoops.common.names import ENV_NAME
from autoops.core import lifetimes, windows
from autoops.core.risk import NAMES as RISK_NAMES
from autoops.core.risk import Risk
from autoops.core.windows import Schedule
from autoops.errors import PolicyInvalidError
from autoops.exits import ExitStatus

DURATION = r"^([0-9]{1,6}[smhdw]){1,4}$"
_RISK_OR_NONE = {"enum": [*RISK_NAMES, "NONE"]}
_HHMM = {"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$"}
_RULES: dict[str, Any] = {  # what an environment (or `defaults:`) may set
    "description": {"type": "string"},
    "unattended_max_risk": {"enum": list(RISK_NAMES)},
    "confirm_max_risk": _RISK_OR_NONE,
    "two_person_min_risk": _RISK_OR_NONE,
    "typed_confirmation_max_risk": _RISK_OR_NONE,
    "approval_expires_in": {"type": "string", "pattern": DURATION},
    "self_heal": {"type": "boolean"},
    "promotion": {
        "type": "object", "required": ["from", "soak"],
        "properties": {"from": {"type": "string", "minLength": 1},
                       "soak": {"type": "string", "pattern": DURATION}},
        "additionalProperties": False,
    },
    "approvers": {
        "type": "object",
        "properties": {"users": {"type": "array", "items": {"type": "string", "minLength": 1}},
                       "groups": {"type": "array", "items": {"type": "string", "minLength": 1}}},
        "additionalProperties": False,
    },
    "windows": {
        "type": "object", "required": ["timezone", "above", "weekly"],
        "properties": {
            "timezone": {"type": "string", "minLength": 1},
            "above": {"enum": list(RISK_NAMES)},
            "weekly": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["days", "start", "end"],
                "properties": {"days": {"type": "array", "minItems": 1,
                                        "items": {"type": "string"}},
                               "start": _HHMM, "end": _HHMM},
                "additionalProperties": False}},
        },
        "additionalProperties": False,
    },
    "freezes": {"type": "array", "items": {
        "type": "object", "required": ["start", "end", "reason"],
        "properties": {"start": {"type": "string"}, "end": {"type": "string"},
                       "reason": {"type": "string", "minLength": 1},
                       "above": {"enum": list(RISK_NAMES)}},
        "additionalProperties": False}},
    "grants": {
        "type": "object",
        "properties": {
            "max_expires_in": {"type": "object", "propertyNames": {"enum": list(RISK_NAMES)},
                               "additionalProperties": {"type": "string", "pattern": DURATION}},
            "break_glass_max_expires_in": {"type": "string", "pattern": DURATION},
        },
        "additionalProperties": False,
    },
}
POLICY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["version", "environments"],
    "properties": {
        "version": {"const": 1},
        "defaults": {"type": "object", "properties": _RULES, "additionalProperties": False},
        "environments": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": ENV_NAME},
            "additionalProperties": {"type": "object", "properties": _RULES,
                                     "additionalProperties": False},
        },
    },
    "additionalProperties": False,
}

TYPED_CONFIRMATION = "typed-confirmation"
SECOND_PERSON = "second-person"
BUILTIN = "built-in"

# Built-in defaults, under policy.yml's `defaults:` and each environment's own keys.
# unattended/confirm have none: every environment must say them (or `defaults:` must).
BUILTIN_DEFAULTS: dict[str, Any] = {
    "description": "",
    "two_person_min_risk": "NONE",  # an environment named production: CRITICAL (see below)
    "typed_confirmation_max_risk": "DESTRUCTIVE",  # above: a second person instead
    "approval_expires_in": "4h",
    "approvers": None,  # None: anyone but the requester (and the actor a halt stops)
    "self_heal": False,  # true: each `autoops watch` of the environment runs `autoops heal`
    "promotion": None,  # {from: ENV, soak: 30m}: deploys come only through `autoops promote`
    "windows": None,
    "freezes": [],
    "grants": {"max_expires_in": {risk.name: durations.format_duration(ttl)
                                  for risk, ttl in lifetimes.DEFAULT_TTL_CEILINGS.items()},
               "break_glass_max_expires_in": durations.format_duration(lifetimes.BREAK_GLASS_CEILING)},
}
PRODUCTION_TWO_PERSON = "CRITICAL"


@dataclass(frozen=True)
class EnvPolicy:
    """One environment's effective rules: built-in defaults < `defaults:` < its own keys."""

    name: str
    description: str
    unattended_max_risk: Risk
    confirm_max_risk: Risk | None  # None: nothing above the unattended ceiling may run
    two_person_min_risk: Risk | None = None  # from this class up, a second person approves
    # Up to this class a typed confirmation will do; above it a second person instead
    # (None: never a typed confirmation).
    typed_confirmation_max_risk: Risk | None = Risk.DESTRUCTIVE
    approval_ttl: timedelta = timedelta(hours=4)
    approvers: Approvers | None = None  # who may approve, reject and resume; None: anyone else
    self_heal: bool = False  # watch runs the runbooks of what fires (autoops heal) itself
    promotion: Promotion | None = None  # deploys only of what `source` verified and soaked
    schedule: Schedule = field(default_factory=lambda: windows.parse_schedule(None, []))
    grant_ceilings: Mapping[Risk, timedelta] = field(
        default_factory=lambda: dict(lifetimes.DEFAULT_TTL_CEILINGS))
    break_glass_ceiling: timedelta = lifetimes.BREAK_GLASS_CEILING
    origins: Mapping[str, str] = field(default_factory=dict)  # key -> built-in|defaults|env

    def grant_ceiling(self, max_risk: Risk, break_glass: bool) -> timedelta:
        return lifetimes.ttl_ceiling(max_risk, break_glass, self.grant_ceilings,
                                  self.break_glass_ceiling)

    def to_dict(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "unattended_max_risk": self.unattended_max_risk.name,
            "confirm_max_risk": _name(self.confirm_max_risk),
            "two_person_min_risk": _name(self.two_person_min_risk),
            "typed_confirmation_max_risk": _name(self.typed_confirmation_max_risk),
            "approval_expires_in": durations.format_duration(self.approval_ttl),
            "approvers": self.approvers.to_dict() if self.approvers else None,
            "self_heal": self.self_heal,
            "promotion": self.promotion.to_dict() if self.promotion else None,
            "windows": self.schedule.to_dict(),
            "grants": {
                "max_expires_in": {r.name: durations.format_duration(t)
                                   for r, t in sorted(self.grant_ceilings.items())},
                "break_glass_max_expires_in": durations.format_duration(self.break_glass_ceiling)},
            "origins": dict(self.origins),
        }


@dataclass(frozen=True)
class Promotion:
    """Where an environment's deploys must come from, and how long they soak there first."""

    source: str
    soak: timedelta

    def to_dict(self) -> dict[str, str]:
        return {"from": self.source, "soak": durations.format_duration(self.soak)}


@dataclass(frozen=True)
class Approvers:
    """Who may approve or reject a two-person request and lift a halt in an environment."""

    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, list[str]]:
        return {"users": list(self.users), "groups": list(self.groups)}

    def describe(self) -> str:
        names = [*self.users, *(f"group {g}" for g in self.groups)]
        return ", ".join(names) or "nobody"


def _name(risk: Risk | None) -> str:
    return risk.name if risk is not None else "NONE"


@dataclass(frozen=True)
class Policy:
    environments: Mapping[str, EnvPolicy]
    path: Path | None = None

    @classmethod
    def load(cls, path: Path, verdicts: yamlfile.Verdicts | None = None) -> Policy:
        """Load and check policy.yml; unknown keys or values name the file and line.

        With ``verdicts``, a policy whose exact bytes passed the schema before skips it
        (the checks a schema cannot make run every time).
        """
        data = yamlfile.read(path, PolicyInvalidError)
        if verdicts is not None and verdicts.known("policy", data):
            return cls.from_mapping(yamlfile.load_checked_before(data), path)
        doc = yamlfile.load(path, PolicyInvalidError, data)
        yamlfile.validate(doc, POLICY_SCHEMA, path, PolicyInvalidError)
        policy = cls.from_mapping(doc, path)
        if verdicts is not None:
            verdicts.remember("policy", data)
        return policy

    @classmethod
    def from_mapping(cls, doc: Mapping[str, Any], path: Path | None = None) -> Policy:
        defaults = doc.get("defaults") or {}
        envs = {name: _env_policy(doc, path, name, defaults, spec or {})
                for name, spec in doc["environments"].items()}
        return cls(envs, path)

    def to_dict(self) -> dict[str, Any]:
        return {name: env.to_dict() for name, env in self.environments.items()}


def _env_policy(doc: Mapping[str, Any], path: Path | None, name: str,
                defaults: Mapping[str, Any], spec: Mapping[str, Any]) -> EnvPolicy:
    """Merge one environment's keys over the defaults and check what a schema cannot."""
    builtin = dict(BUILTIN_DEFAULTS)
    if name == "production":
        builtin["two_person_min_risk"] = PRODUCTION_TWO_PERSON
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for layer, values in ((BUILTIN, builtin), ("defaults", defaults), ("environment", spec)):
        for key, value in values.items():
            merged[key], origins[key] = value, layer

    def where(key: str) -> str:
        keys = ["environments", name, key] if key in spec else ["defaults", key]
        return f"{path}:{yamlfile.line_of(doc, keys)}: {name}"

    def duration(key: str, text: str) -> timedelta:
        try:
            return durations.parse_duration(text)
        except ValueError as exc:
            raise PolicyInvalidError(f"{where(key)}: {key}: {exc}") from None

    for key in ("unattended_max_risk", "confirm_max_risk"):
        if key not in merged:
            raise PolicyInvalidError(f"{path}:{yamlfile.line_of(doc, ['environments', name])}: "
                                     f"{name}: {key} is required (here or under defaults:)")
    unattended = Risk.parse(merged["unattended_max_risk"])
    confirm = _risk_or_none(merged["confirm_max_risk"])
    if confirm is not None and confirm < unattended:
        raise PolicyInvalidError(f"{where('confirm_max_risk')}: confirm_max_risk {confirm.name} "
                                 f"is below unattended_max_risk {unattended.name}")
    two_person = _risk_or_none(merged["two_person_min_risk"])
    if two_person is not None and two_person <= unattended:
        raise PolicyInvalidError(
            f"{where('two_person_min_risk')}: two_person_min_risk {two_person.name} must be "
            f"above unattended_max_risk {unattended.name} (a second person for unattended runs?)")
    try:
        schedule = windows.parse_schedule(merged["windows"], merged["freezes"])
    except ValueError as exc:
        key = "freezes" if str(exc).startswith("freezes") else "windows"
        raise PolicyInvalidError(f"{where(key)}: {exc}") from None
    ceilings, break_glass = _grant_ceilings(builtin["grants"], merged["grants"], where, duration)
    approvers = merged["approvers"]
    return EnvPolicy(
        name=name, description=merged["description"], unattended_max_risk=unattended,
        confirm_max_risk=confirm, two_person_min_risk=two_person,
        typed_confirmation_max_risk=_risk_or_none(merged["typed_confirmation_max_risk"]),
        approval_ttl=duration("approval_expires_in", merged["approval_expires_in"]),
        approvers=Approvers(tuple(approvers.get("users", ())), tuple(approvers.get("groups", ())))
        if approvers is not None else None,
        self_heal=bool(merged["self_heal"]),
        promotion=_promotion(doc, merged["promotion"], name, where, duration),
        schedule=schedule, grant_ceilings=ceilings, break_glass_ceiling=break_glass,
        origins=origins)


def _promotion(doc: Mapping[str, Any], spec: Mapping[str, Any] | None, name: str,
               where: Callable[[str], str], duration: Callable[[str, str], timedelta],
               ) -> Promotion | None:
    if spec is None:
        return None
    source = str(spec["from"])
    if source == name or source not in doc["environments"]:
        raise PolicyInvalidError(f"{where('promotion')}: promotion.from {source!r} must be "
                                 "another environment of this policy")
    return Promotion(source, duration("promotion", str(spec["soak"])))


def _grant_ceilings(builtin: Mapping[str, Any], given: Mapping[str, Any],
                    where: Callable[[str], str], duration: Callable[[str, str], timedelta],
                    ) -> tuple[dict[Risk, timedelta], timedelta]:
    texts = {**builtin["max_expires_in"], **given.get("max_expires_in", {})}
    ceilings = {Risk.parse(k): duration("grants", v) for k, v in texts.items()}
    break_glass = duration("grants", given.get("break_glass_max_expires_in",
                                               builtin["break_glass_max_expires_in"]))
    try:
        lifetimes.check_ceilings(ceilings)
    except ValueError as exc:
        raise PolicyInvalidError(f"{where('grants')}: grants.max_expires_in: {exc}") from None
    if break_glass > lifetimes.BREAK_GLASS_CEILING:
        raise PolicyInvalidError(f"{where('grants')}: break_glass_max_expires_in may not exceed "
                                 f"{durations.format_duration(lifetimes.BREAK_GLASS_CEILING)}")
    return ceilings, break_glass


def _risk_or_none(name: str) -> Risk | None:
    return None if name == "NONE" else Risk.parse(name)


class Outcome(StrEnum):
    ALLOWED = "allowed"
    APPROVAL_REQUIRED = "approval_required"
    DENIED = "denied"


_SEVERITY = {Outcome.ALLOWED: 0, Outcome.APPROVAL_REQUIRED: 1, Outcome.DENIED: 2}


@dataclass(frozen=True)
class RuleResult:
    """One rule's contribution: its id, what it decided, why, and what would satisfy it."""

    rule: str
    outcome: Outcome
    reason: str
    satisfy: str | None = None  # for a rule that stops the run: what would let it through
    requirement: str | None = None  # TYPED_CONFIRMATION | SECOND_PERSON
    via: str | None = None  # what let it through instead of a human now: grant / approval id

    def to_dict(self) -> dict[str, Any]:
        doc = {"rule": self.rule, "outcome": self.outcome.value, "reason": self.reason,
               "satisfy": self.satisfy}
        return doc | ({"via": self.via} if self.via else {})


@dataclass(frozen=True)
class HaltFacts:
    """An emergency stop in force for the run's environment (or for all)."""

    scope: str  # an environment, or "*"
    reason: str
    actor: str
    since: str
    against: str | None = None  # the actor whose runs it stops; None: everyone's

    def describe(self) -> str:
        scope = "every environment" if self.scope == "*" else self.scope
        whose = f" for {self.against}'s runs" if self.against else ""
        return (f"emergency stop of {scope}{whose} by {self.actor} since {self.since}: "
                f"{self.reason}")


@dataclass(frozen=True)
class GrantFacts:
    """A grant already verified genuine, unexpired, unrevoked and covering the run."""

    grant_id: str
    break_glass: bool
    reason: str


@dataclass(frozen=True)
class SecondPersonFacts:
    """An approval by another actor of exactly this plan, unexpired and unused."""

    request_id: str
    approver: str


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
    halt: HaltFacts | None = None
    grant: GrantFacts | None = None
    second_person: SecondPersonFacts | None = None


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    risk: Risk
    rules: tuple[RuleResult, ...]

    @property
    def requirements(self) -> tuple[str, ...]:
        """What a human must still provide (empty unless approval is required)."""
        if self.outcome is not Outcome.APPROVAL_REQUIRED:
            return ()
        return tuple(dict.fromkeys(r.requirement for r in self.rules
                                   if r.outcome is Outcome.APPROVAL_REQUIRED and r.requirement))

    @property
    def exit_status(self) -> ExitStatus:
        """What ``autoops plan`` exits with: 0 may run, 3 denied, 4 needs approval."""
        return {Outcome.ALLOWED: ExitStatus.OK, Outcome.DENIED: ExitStatus.DENIED,
                Outcome.APPROVAL_REQUIRED: ExitStatus.APPROVAL_REQUIRED}[self.outcome]

    @property
    def authorised_by(self) -> tuple[str, ...]:
        """Grants and approvals that stood in for a human at this decision."""
        return tuple(dict.fromkeys(r.via for r in self.rules if r.via))

    @property
    def deciding_rule(self) -> RuleResult:
        """The rule that settled it.

        The first denial, else the weightiest approval, else the risk rule that let it through.
        """
        if self.outcome is Outcome.DENIED:
            return next(r for r in self.rules if r.outcome is Outcome.DENIED)
        if self.outcome is Outcome.APPROVAL_REQUIRED:
            needs = [r for r in self.rules if r.outcome is Outcome.APPROVAL_REQUIRED]
            second = [r for r in needs if r.requirement == SECOND_PERSON]
            return next((r for r in second if r.rule == "two-person"),
                        second[0] if second else needs[0])
        return next(r for r in self.rules if r.rule.startswith("risk-"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "risk": self.risk.name,
            "rule": self.deciding_rule.rule,
            "reason": self.deciding_rule.reason,
            "requirements": list(self.requirements),
            "rules": [r.to_dict() for r in self.rules],
        }


def evaluate(policy: Policy, request: Request) -> Decision:
    """Decide whether ``request`` may run now, needs a human, or is denied.

    Every rule is evaluated (none short-circuits after the action is known to be
    allowed in the environment), so that ``plan`` can show all that stands in the way.
    """
    env = policy.environments.get(request.env)
    if env is None:
        return _decide(request, [RuleResult(
            "env-declared", Outcome.DENIED,
            f"environment {request.env!r} is not declared in policy.yml",
            f"declare {request.env!r} under environments: in policy.yml")])
    rules = [RuleResult("env-declared", Outcome.ALLOWED, f"environment {request.env!r} is declared")]
    if request.env not in request.action_environments:
        rules.append(RuleResult(
            "action-env", Outcome.DENIED,
            f"{request.action} may run only in: {', '.join(request.action_environments)}",
            f"use --env {' or '.join(request.action_environments)}"))
        return _decide(request, rules)
    rules.append(RuleResult("action-env", Outcome.ALLOWED,
                            f"{request.action} is allowed in {request.env}"))
    rules.append(_halt_rule(request))
    rules.append(_freeze_rule(env, request))
    rules.append(_window_rule(env, request))
    rules.append(_risk_rule(env, request))
    rules.append(_two_person_rule(env, request))
    return _decide(request, rules)


def _decide(request: Request, rules: list[RuleResult]) -> Decision:
    outcome = max((r.outcome for r in rules), key=_SEVERITY.__getitem__)
    return Decision(outcome, request.risk, tuple(rules))


def _halt_rule(request: Request) -> RuleResult:
    halt = request.halt
    if halt is None:
        return RuleResult("halt", Outcome.ALLOWED, "no emergency stop is in force")
    return RuleResult(
        "halt", Outcome.DENIED, halt.describe(),
        f"`autoops resume{'' if halt.scope == '*' else ' --env ' + halt.scope} --reason …` "
        "once it is safe")


def _unless_break_glass(rule: str, request: Request, what: str, satisfy: str) -> RuleResult:
    """Deny with ``what``, unless the request carries a break-glass grant (named in the reason)."""
    glass = request.grant
    if glass is not None and glass.break_glass:
        return RuleResult(rule, Outcome.ALLOWED,
                          f"{what}; overridden by break-glass grant {glass.grant_id}: "
                          f"{glass.reason}", via=f"break-glass:{glass.grant_id}")
    return RuleResult(rule, Outcome.DENIED, what, satisfy)


def _freeze_rule(env: EnvPolicy, request: Request) -> RuleResult:
    freeze = windows.active_freeze(env.schedule, request.now, request.risk)
    if freeze is None:
        return RuleResult("freeze", Outcome.ALLOWED,
                          f"no freeze in {env.name} covers {request.risk.name} now")
    what = (f"{env.name} is frozen until {freeze.end.isoformat()} for classes above "
            f"{freeze.above.name}: {freeze.reason}")
    return _unless_break_glass("freeze", request, what,
                               f"wait until {freeze.end.isoformat()}, or a --break-glass grant")


def _window_rule(env: EnvPolicy, request: Request) -> RuleResult:
    schedule = env.schedule
    if not windows.needs_window(schedule, request.risk):
        return RuleResult("window", Outcome.ALLOWED,
                          f"{request.risk.name} needs no change window in {env.name}")
    open_now = windows.in_window(schedule, request.now)
    if open_now is not None:
        return RuleResult("window", Outcome.ALLOWED,
                          f"inside the change window {_window_text(open_now, schedule)}")
    opening = windows.next_opening(schedule, request.now, request.risk)
    above = schedule.above.name if schedule.above else "-"
    what = (f"outside {env.name}'s change windows for classes above {above}; next opening "
            f"{windows.describe_opening(schedule, opening)}")
    return _unless_break_glass("window", request, what,
                               f"run it from {windows.describe_opening(schedule, opening)}, or "
                               "with a --break-glass grant")


def _window_text(window: windows.Weekly, schedule: Schedule) -> str:
    spec = window.to_dict()
    return f"{','.join(spec['days'])} {spec['start']}-{spec['end']} {schedule.timezone}"


def _risk_rule(env: EnvPolicy, request: Request) -> RuleResult:
    risk = request.risk
    mode = " in check mode" if request.check_mode else ""
    if risk <= env.unattended_max_risk:
        return RuleResult(
            "risk-unattended", Outcome.ALLOWED,
            f"{risk.name} is within {env.name}'s unattended ceiling "
            f"{env.unattended_max_risk.name}{mode}")
    if env.confirm_max_risk is not None and risk <= env.confirm_max_risk:
        above = (f"{risk.name} is above {env.name}'s unattended ceiling "
                 f"{env.unattended_max_risk.name}{mode}")
        typed_max = env.typed_confirmation_max_risk
        if typed_max is None or risk > typed_max:  # a second person instead of typing
            second = request.second_person
            if second is not None:
                return RuleResult("risk-confirm", Outcome.ALLOWED,
                                  f"{above}; approved by {second.approver} (request "
                                  f"{second.request_id})", via=f"second-person:{second.request_id}")
            return RuleResult(
                "risk-confirm", Outcome.APPROVAL_REQUIRED,
                f"{above}: {env.name} takes no typed confirmation above "
                f"{_name(typed_max)}; a second person must approve the exact plan",
                "`autoops run` records a request; another actor runs `autoops approve ID`; "
                "then `autoops run … --approval ID`", SECOND_PERSON)
        if request.grant is not None:
            return RuleResult("risk-confirm", Outcome.ALLOWED,
                              f"{above}; pre-authorised by grant {request.grant.grant_id}",
                              via=f"grant:{request.grant.grant_id}")
        return RuleResult("risk-confirm", Outcome.APPROVAL_REQUIRED,
                          f"{above}: a typed confirmation of the environment name is required",
                          f"type {env.name!r} at the prompt, or --grant TOKEN covering this run",
                          TYPED_CONFIRMATION)
    ceiling = env.confirm_max_risk.name if env.confirm_max_risk else env.unattended_max_risk.name
    return RuleResult(
        "risk-ceiling", Outcome.DENIED,
        f"{risk.name} is above the highest class {env.name} allows ({ceiling})",
        "nothing at run time: only a reviewed change to policy.yml raises confirm_max_risk")


def _two_person_rule(env: EnvPolicy, request: Request) -> RuleResult:
    threshold = env.two_person_min_risk
    if threshold is None or request.risk < threshold:
        return RuleResult("two-person", Outcome.ALLOWED,
                          f"{request.risk.name} needs no second person in {env.name}")
    second = request.second_person
    if second is not None:
        return RuleResult("two-person", Outcome.ALLOWED,
                          f"approved by {second.approver} (request {second.request_id})",
                          via=f"second-person:{second.request_id}")
    return RuleResult(
        "two-person", Outcome.APPROVAL_REQUIRED,
        f"{request.risk.name} in {env.name} needs a second person (from "
        f"{threshold.name} up); approvals expire after {durations.format_duration(env.approval_ttl)}",
        "`autoops run` records a request; another actor runs `autoops approve ID`; then "
        "`autoops run … --approval ID`", SECOND_PERSON)
