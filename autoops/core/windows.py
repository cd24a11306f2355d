"""Change windows and freezes: when actions above a risk class may run.

Pure: nothing here reads the clock or a file; ``now`` is always passed in, so every
rule is tested by time travel. Local wall times are turned into instants with
``datetime.combine(day, time, tzinfo=zone)`` (zoneinfo, fold=0): on a DST change a
window starting in the skipped hour opens at the equivalent instant after the jump,
and one in the repeated hour opens at its first occurrence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from autoops.common.zones import zone
from autoops.core.risk import Risk

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HORIZON_DAYS = 400
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


@dataclass(frozen=True)
class Weekly:
    """One weekly window: on these weekdays (0=Monday), from start to end local time."""

    days: frozenset[int]
    start: time
    end: time  # end <= start: the window runs past midnight into the next day

    def to_dict(self) -> dict[str, Any]:
        return {"days": [DAYS[d] for d in sorted(self.days)], "start": _hhmm(self.start),
                "end": "24:00" if self.end == time(0) else _hhmm(self.end)}

    def length(self) -> timedelta:
        start = timedelta(hours=self.start.hour, minutes=self.start.minute)
        end = timedelta(hours=self.end.hour, minutes=self.end.minute)
        return end - start if end > start else end - start + timedelta(days=1)


@dataclass(frozen=True)
class Freeze:
    start: datetime
    end: datetime
    reason: str
    above: Risk  # the freeze stops actions whose risk is above this class

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(),
                "reason": self.reason, "above": self.above.name}


@dataclass(frozen=True)
class Schedule:
    timezone: str
    above: Risk | None  # None: no window restriction
    weekly: tuple[Weekly, ...]
    freezes: tuple[Freeze, ...]

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)

    def to_dict(self) -> dict[str, Any]:
        return {"timezone": self.timezone, "above": self.above.name if self.above else None,
                "weekly": [w.to_dict() for w in self.weekly],
                "freezes": [f.to_dict() for f in self.freezes]}


def _hhmm(value: time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


def _time(text: Any, where: str, *, end: bool) -> time:
    if end and text == "24:00":
        return time(0)
    match = _HHMM.match(str(text))
    if not match:
        raise ValueError(f"{where}: {text!r} is not a time HH:MM")
    return time(int(match.group(1)), int(match.group(2)))


def _zone(name: Any) -> ZoneInfo:
    try:
        return zone(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"windows.timezone: unknown timezone {name!r}") from None


def _weekly(spec: Mapping[str, Any], where: str) -> Weekly:
    days: set[int] = set()
    for name in spec.get("days") or []:
        key = str(name).strip().lower()
        if key not in DAYS:
            raise ValueError(f"{where}: unknown day {name!r} (use {', '.join(DAYS)})")
        if DAYS.index(key) in days:
            raise ValueError(f"{where}: day {name!r} given twice")
        days.add(DAYS.index(key))
    if not days:
        raise ValueError(f"{where}: no days")
    start = _time(spec.get("start"), f"{where}.start", end=False)
    end = _time(spec.get("end"), f"{where}.end", end=True)
    if start == end and spec.get("end") != "24:00":
        raise ValueError(f"{where}: end {_hhmm(end)} equals start")
    return Weekly(frozenset(days), start, end)


def _instant(text: Any, zone: ZoneInfo, where: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(text))
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not an ISO 8601 date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def parse_schedule(windows: Mapping[str, Any] | None,
                   freezes: Sequence[Mapping[str, Any]]) -> Schedule:
    """Build a Schedule from policy.yml's ``windows`` and ``freezes`` (ValueError names the item)."""
    timezone: str = "UTC"
    above: Risk | None = None
    weekly: tuple[Weekly, ...] = ()
    if windows:
        _zone(windows.get("timezone"))  # a clear error for an unknown zone
        timezone = str(windows.get("timezone"))
        try:
            above = Risk.parse(str(windows.get("above")))
        except ValueError as exc:
            raise ValueError(f"windows.above: {exc}") from None
        items = windows.get("weekly") or []
        if not items:
            raise ValueError("windows.weekly: at least one window is needed")
        weekly = tuple(_weekly(w, f"windows.weekly[{i}]") for i, w in enumerate(items))
    tz = zone(timezone)
    parsed = []
    for i, spec in enumerate(freezes or []):
        where = f"freezes[{i}]"
        start = _instant(spec.get("start"), tz, f"{where}.start")
        end = _instant(spec.get("end"), tz, f"{where}.end")
        if end <= start:
            raise ValueError(f"{where}: end is not after start")
        reason = str(spec.get("reason") or "").strip()
        if not reason:
            raise ValueError(f"{where}: a reason is required")
        try:
            freeze_above = Risk.parse(str(spec.get("above", "SAFE")))
        except ValueError as exc:
            raise ValueError(f"{where}.above: {exc}") from None
        parsed.append(Freeze(start, end, reason, freeze_above))
    return Schedule(timezone, above, weekly, tuple(parsed))


def needs_window(schedule: Schedule, risk: Risk) -> bool:
    return schedule.above is not None and risk > schedule.above


def _openings(schedule: Schedule, window: Weekly, first: date, last: date,
              ) -> list[tuple[datetime, datetime]]:
    """The window's [open, close) instants for local start days first..last."""
    zone = schedule.tz
    out = []
    day = first
    while day <= last:
        if day.weekday() in window.days:
            start = datetime.combine(day, window.start, tzinfo=zone)
            end_day = day if window.end > window.start else day + timedelta(days=1)
            end = datetime.combine(end_day, window.end, tzinfo=zone)
            out.append((start.astimezone(UTC), end.astimezone(UTC)))
        day += timedelta(days=1)
    return out


def in_window(schedule: Schedule, now: datetime) -> Weekly | None:
    """The weekly window open at ``now``, if any (start inclusive, end exclusive)."""
    local = now.astimezone(schedule.tz).date()
    instant = now.astimezone(UTC)
    for window in schedule.weekly:
        for start, end in _openings(schedule, window, local - timedelta(days=1), local):
            if start <= instant < end:
                return window
    return None


def active_freeze(schedule: Schedule, now: datetime, risk: Risk) -> Freeze | None:
    """The freeze stopping ``risk`` at ``now`` (the one ending last if several)."""
    found = [f for f in schedule.freezes if f.start <= now < f.end and risk > f.above]
    return max(found, key=lambda f: f.end) if found else None


def may_run(schedule: Schedule, now: datetime, risk: Risk) -> bool:
    if active_freeze(schedule, now, risk) is not None:
        return False
    return not needs_window(schedule, risk) or in_window(schedule, now) is not None


def next_opening(schedule: Schedule, now: datetime, risk: Risk) -> datetime | None:
    """The earliest instant at or after ``now`` when ``risk`` may run, in the schedule's zone."""
    zone = schedule.tz
    if may_run(schedule, now, risk):
        return now.astimezone(zone)
    horizon = now + timedelta(days=HORIZON_DAYS)
    candidates = {f.end for f in schedule.freezes if now < f.end <= horizon}
    if needs_window(schedule, risk):
        first = now.astimezone(zone).date() - timedelta(days=1)
        last = horizon.astimezone(zone).date()
        for window in schedule.weekly:
            candidates.update(start for start, _end in _openings(schedule, window, first, last)
                              if now < start <= horizon)
    for instant in sorted(candidates):
        if may_run(schedule, instant, risk):
            return instant.astimezone(zone)
    return None


def describe_opening(schedule: Schedule, when: datetime | None) -> str:
    if when is None:
        return f"no opening within {HORIZON_DAYS} days"
    local = when.astimezone(schedule.tz)
    utc = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{local.strftime('%a %Y-%m-%d %H:%M')} {schedule.timezone} ({utc})"
