"""The promotion gate: may a commit go on from one environment to the next, now?

Pure: the deploy service feeds it the source's deploy history (newest first), what is
firing critical in both environments and when the source was last watched. A commit may
be promoted when it is what the source runs now, deployed there and verified, has soaked
there for the policy's time since, a watch of the source ran after the soak ended with
nothing critical firing, and the target's own health has nothing critical firing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from autoops.common.durations import format_duration

GATED_ACTIONS = frozenset({"deploy"})
"""Actions a promotion policy gates; deploy-rollback stays open (going back must work)."""


@dataclass(frozen=True)
class Deployed:
    """One deploy or rollback of the app in the source, as it ended."""

    run_id: str
    commit: str
    operation: str  # deploy | rollback
    outcome: str  # verified | rolled_back | failed
    finished: datetime


@dataclass(frozen=True)
class Firing:
    """One critical finding firing now."""

    host: str
    check: str
    subject: str
    summary: str

    def describe(self) -> str:
        return f"{self.host} {self.check}{' ' + self.subject if self.subject else ''}: {self.summary}"


@dataclass(frozen=True)
class Evidence:
    """What the gate saw and decided; it goes into the plan and the audit log."""

    app: str
    source: str
    target: str
    commit: str
    soak: timedelta
    deploy_run_id: str | None = None
    soak_started: datetime | None = None
    soak_ends: datetime | None = None
    source_last_watch: datetime | None = None
    source_critical: tuple[str, ...] = ()
    target_critical: tuple[str, ...] = ()
    refusals: tuple[str, ...] = field(default_factory=tuple)

    @property
    def allowed(self) -> bool:
        return not self.refusals

    def to_dict(self) -> dict[str, Any]:
        def iso(at: datetime | None) -> str | None:
            return at.isoformat() if at else None
        return {"app": self.app, "from": self.source, "to": self.target, "commit": self.commit,
                "soak": format_duration(self.soak), "deploy_run_id": self.deploy_run_id,
                "soak_started": iso(self.soak_started), "soak_ends": iso(self.soak_ends),
                "source_last_watch": iso(self.source_last_watch),
                "source_critical": list(self.source_critical),
                "target_critical": list(self.target_critical),
                "allowed": self.allowed, "refusals": list(self.refusals)}


def evaluate(*, app: str, source: str, target: str, soak: timedelta, commit: str | None,
             history: Sequence[Deployed], source_firing: Sequence[Firing],
             target_firing: Sequence[Firing], source_last_watch: datetime | None,
             now: datetime) -> Evidence:
    """The evidence for promoting ``commit`` (None: what the source runs now) of ``app``."""
    if not history:
        return Evidence(app, source, target, commit or "", soak, refusals=(
            f"{app} was never deployed in {source}: deploy and verify it there first",))
    latest = history[0]
    wanted = commit or latest.commit
    refusals: list[str] = []
    if latest.commit != wanted:
        refusals.append(f"{source} runs {latest.commit[:12]} now (run {latest.run_id}), not "
                        f"{wanted[:12]}: deploy {wanted[:12]} there first")
    elif latest.outcome != "verified":
        refusals.append(f"the last {latest.operation} of {wanted[:12]} in {source} "
                        f"{latest.outcome.replace('_', ' ')} (run {latest.run_id})")
    started, verified_by = _soak(history, wanted)
    ends = started + soak if started else None
    if started is not None and ends is not None and now < ends and not refusals:
        refusals.append(f"{wanted[:12]} has soaked in {source} for "
                        f"{format_duration(now - started)} of {format_duration(soak)}: "
                        f"promote after {ends.isoformat(timespec='seconds')}")
    if source_firing:
        refusals.append(f"{source} has critical findings firing: "
                        + "; ".join(f.describe() for f in source_firing))
    if ends is not None and not refusals and (source_last_watch is None
                                              or source_last_watch < ends):
        refusals.append(f"no watch of {source} ran since the soak ended "
                        f"({ends.isoformat(timespec='seconds')}): run `autoops watch --env "
                        f"{source}` (cron does) and promote again")
    if target_firing:
        refusals.append(f"{target} is not green: "
                        + "; ".join(f.describe() for f in target_firing))
    return Evidence(app, source, target, wanted, soak,
                    deploy_run_id=verified_by, soak_started=started,
                    soak_ends=ends, source_last_watch=source_last_watch,
                    source_critical=tuple(f.describe() for f in source_firing),
                    target_critical=tuple(f.describe() for f in target_firing),
                    refusals=tuple(refusals))


def _soak(history: Sequence[Deployed], commit: str) -> tuple[datetime | None, str | None]:
    """When the source's current stretch of verified runs of ``commit`` began, and its run.

    A redeploy of the same commit does not restart the soak; anything else in between
    (another commit, a rollback, a failure) does.
    """
    started, run_id = None, None
    for row in history:
        if row.commit != commit or row.outcome != "verified":
            break
        started, run_id = row.finished, row.run_id
    return started, run_id
