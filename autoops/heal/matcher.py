"""Which runbook a firing finding calls for, and what each of its steps would do. Pure.

The first runbook (in file-name order) whose match fits the finding wins. Only findings
that fire (or still fire) call for a heal. A step's parameters are made concrete from
the finding and checked against the catalog for the finding's environment, so an
allowlist of services (say) refuses here exactly as it would at run time. The breaker
counts this runbook's heals of this host within its window: at the limit the finding
is escalated to a person, not healed again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from autoops.common.durations import format_duration
from autoops.core.catalog import Catalog
from autoops.errors import AutoopsError
from autoops.heal.runbooks import Runbook, Step

HEALS_ON = frozenset({"firing", "repeat"})
"""Notices that call for a heal: a new problem, or one still there after a fix."""


@dataclass(frozen=True)
class Finding:
    """What the matcher needs to know about a finding (one notice of ``autoops watch``)."""

    at: datetime
    env: str
    host: str
    check: str
    subject: str
    severity: str
    notice: str = "firing"
    groups: tuple[str, ...] = ()

    def label(self) -> str:
        subject = f" {self.subject}" if self.subject else ""
        return f"{self.env}/{self.host}: {self.check}{subject} ({self.severity}, {self.notice})"


@dataclass(frozen=True)
class PlannedStep:
    action: str
    params: Mapping[str, Any]
    refused: str = ""  # why the catalog would refuse it ("" when it would pass)


@dataclass(frozen=True)
class Choice:
    """What a finding leads to: ``heal``, ``escalate``, ``refused``, ``no-runbook``, ``ignored``."""

    finding: Finding
    outcome: str
    runbook: str | None = None
    steps: tuple[PlannedStep, ...] = ()
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"finding": self.finding.label(), "at": self.finding.at.isoformat(),
                "outcome": self.outcome, "runbook": self.runbook, "reason": self.reason,
                "steps": [{"action": s.action, "params": dict(s.params), "refused": s.refused}
                          for s in self.steps]}


def matches(runbook: Runbook, finding: Finding) -> bool:
    m = runbook.match
    return (m.check == finding.check and finding.severity in m.severities
            and (not m.environments or finding.env in m.environments)
            and (not m.hosts or finding.host in m.hosts)
            and (not m.groups or bool(set(m.groups) & set(finding.groups)))
            and (not m.subjects or finding.subject in m.subjects))


def concrete(step: Step, finding: Finding) -> dict[str, Any]:
    """The step's parameters with ``{from: …}`` replaced by the finding's value, whole."""
    values = {"subject": finding.subject, "host": finding.host}
    return {name: values[value["from"]] if isinstance(value, Mapping) else value
            for name, value in step.params.items()}


def refusal(catalog: Catalog, action: str, params: Mapping[str, Any], env: str) -> str:
    """Why the catalog would refuse ``action`` with ``params`` in ``env`` ("" if it would not)."""
    try:
        if env not in catalog.get(action).environments:
            return f"{action} may not run in {env} (catalog.yml)"
        catalog.resolve(action, params, env)
    except AutoopsError as exc:
        return exc.message
    return ""


def plan_steps(runbook: Runbook, finding: Finding, catalog: Catalog) -> tuple[PlannedStep, ...]:
    planned = []
    for step in runbook.steps:
        params = concrete(step, finding)
        planned.append(PlannedStep(step.action, params,
                                   refusal(catalog, step.action, params, finding.env)))
    return tuple(planned)


@dataclass
class Breakers:
    """Past heals by (runbook, env, host), for the circuit breaker."""

    heals: dict[tuple[str, str, str], list[datetime]] = field(default_factory=dict)

    def open_for(self, runbook: Runbook, finding: Finding) -> int:
        """How many heals within the window, when that is already the limit (else 0)."""
        past = self.heals.get((runbook.name, finding.env, finding.host), [])
        recent = [t for t in past if finding.at - t < runbook.breaker.within]
        return len(recent) if len(recent) >= runbook.breaker.attempts else 0

    def record(self, runbook: Runbook, finding: Finding) -> None:
        self.heals.setdefault((runbook.name, finding.env, finding.host), []).append(finding.at)


def choose(runbooks: Sequence[Runbook], finding: Finding, catalog: Catalog,
           breakers: Breakers) -> Choice:
    """What ``finding`` leads to; a heal is recorded in ``breakers``."""
    if finding.notice not in HEALS_ON:
        return Choice(finding, "ignored", reason=f"a {finding.notice} notice calls for no heal")
    runbook = next((r for r in runbooks if matches(r, finding)), None)
    if runbook is None:
        return Choice(finding, "no-runbook", reason="no runbook matches: a person decides")
    steps = plan_steps(runbook, finding, catalog)
    refused = [s for s in steps if s.refused]
    if refused:
        return Choice(finding, "refused", runbook.name, steps, refused[0].refused)
    count = breakers.open_for(runbook, finding)
    if count:
        within = format_duration(runbook.breaker.within)
        return Choice(finding, "escalate", runbook.name, steps,
                      f"breaker open: {count} heals of {finding.host} within {within}; "
                      "the fix does not hold, a person is told")
    breakers.record(runbook, finding)
    return Choice(finding, "heal", runbook.name, steps)
