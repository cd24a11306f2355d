"""Heartbeats: did each cron job and worker run when its schedule said, and end well?

A job is declared with a cron schedule, a grace and (optionally) a longest run; it
reports through ``autoops heartbeat run NAME -- COMMAND`` (start, end, exit status,
the recent start times) or by touching a file when it succeeds. healthchecks.io's
model, plus what it lacks: a run that *started too often* is news as well (a retry
after a failed run is not). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from autoops.common.durations import format_duration, parse_duration
from autoops.common.zones import zone
from autoops.watch.findings import Severity

SLACK = timedelta(seconds=60)
"""Host and controller clocks, and cron itself, may be a minute apart."""


@dataclass(frozen=True)
class Job:
    name: str
    schedule: str
    grace: timedelta
    max_runtime: timedelta | None
    timezone: str
    severity: Severity

    @classmethod
    def from_declared(cls, doc: Mapping[str, Any]) -> Job:
        """A job from inventory vars; ValueError says what is wrong with it."""
        schedule = str(doc.get("schedule") or "")
        name = str(doc.get("name") or "")
        try:
            CronSim(schedule, datetime(2026, 1, 1, tzinfo=UTC))
        except CronSimError as exc:
            raise ValueError(f"heartbeat {name}: schedule {schedule!r}: {exc}") from None
        try:
            zone(str(doc.get("timezone") or "UTC"))
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"heartbeat {name}: unknown timezone {doc.get('timezone')!r}") \
                from None
        runtime = doc.get("max_runtime")
        return cls(name, schedule, parse_duration(str(doc.get("grace") or "5m")),
                   parse_duration(str(runtime)) if runtime else None,
                   str(doc.get("timezone") or "UTC"), Severity(doc.get("severity") or "critical"))

    def fire_at_or_before(self, when: datetime) -> datetime:
        local = when.astimezone(zone(self.timezone))
        return next(CronSim(self.schedule, local + timedelta(seconds=1), reverse=True))

    def fire_before(self, when: datetime) -> datetime:
        return next(CronSim(self.schedule, when.astimezone(zone(self.timezone)), reverse=True))


@dataclass(frozen=True)
class Verdict:
    ok: bool
    severity: Severity
    summary: str


def _at(value: Any) -> datetime | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), UTC)
    return None


def _clock(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def judge(job: Job, record: Mapping[str, Any], now: datetime) -> Verdict:
    """The worst of: unreadable, stuck, failed, missed, too often; or fine."""
    bad = Verdict
    if record.get("error"):
        return bad(False, Severity.WARNING, f"{job.name}: {record['error']}")
    due = job.fire_at_or_before(now - job.grace)  # the newest run whose grace has passed
    interval = due - job.fire_before(due)
    started, finished = _at(record.get("started")), _at(record.get("finished"))
    last_success = _at(record.get("last_success"))
    if started and (finished is None or finished < started):
        limit = job.max_runtime or interval
        if now - started > limit:
            return bad(False, job.severity,
                       f"{job.name} started {_clock(started)} and has not finished after "
                       f"{_minutes(now - started)} (longest run {format_duration(limit)})")
    elif started and finished and record.get("exit_status") not in (0, None):
        return bad(False, job.severity,
                   f"{job.name} failed: exit status {record['exit_status']} at {_clock(finished)}")
    newest = started if record.get("mode") != "file" else last_success
    if newest is None or newest < due - SLACK:
        last = f"last run {_clock(newest)}" if newest else "no run recorded"
        return bad(False, job.severity,
                   f"{job.name} missed its run due {_clock(due)} (grace "
                   f"{format_duration(job.grace)}; {last})")
    latest_fire = job.fire_at_or_before(now)
    retries = {s for s in (_at(x) for x in _list(record.get("retries"))) if s}
    starts = [s for s in (_at(x) for x in _list(record.get("starts"))) if s]
    extra = [s for s in starts if s >= latest_fire - SLACK and s not in retries]
    if len(extra) > 1:  # a second cron entry, a loop calling it, a host clock gone wrong
        return bad(False, Severity.WARNING,
                   f"{job.name} ran {len(extra)} times since {_clock(latest_fire)}; its "
                   f"schedule ({job.schedule}) starts it once")
    return Verdict(True, job.severity, f"{job.name} ran {_clock(newest)}")


def _minutes(delta: timedelta) -> str:
    return format_duration(timedelta(minutes=int(delta.total_seconds() // 60)))


def _list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list) else []
