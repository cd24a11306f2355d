"""Findings with memory: what one check on one subject has been doing, and what to say about it.

Each (env, host, check, subject) moves ``ok → pending → firing → ok`` on consecutive
readings: ``fail_after`` failures in a row fire it (a blip stays pending, and quiet),
``recover_after`` successes in a row resolve it. A finding that keeps changing its
mind (8 changes in 20 readings) is *flapping*: one notice says so, then nothing
until its last 10 readings agree. What is still firing is repeated every
``repeat_every``, unless a person acknowledged it (quiet until it resolves) or
silenced it (quiet until the silence ends). Pure: the caller stores findings and
sends the notices.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class FindingKey:
    """What a finding is about: one check on one subject (a mount, a unit) of one host."""

    env: str
    host: str
    check: str
    subject: str = ""

    @property
    def id(self) -> str:
        """Stable and short: ``f-`` and 12 hex digits of the key (what ``alerts ack`` takes)."""
        key = "\0".join((self.env, self.host, self.check, self.subject)).encode()
        return "f-" + hashlib.sha256(key).hexdigest()[:12]


class State(enum.StrEnum):
    OK = "ok"
    PENDING = "pending"  # failing, not long enough to fire
    FIRING = "firing"


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Notice(enum.StrEnum):
    """What a step has to tell people (None when it has nothing to say)."""

    FIRING = "firing"  # newly firing, or worse than when it fired
    REPEAT = "repeat"  # still firing, nobody acknowledged it
    RESOLVED = "resolved"  # was announced as firing, is fine again
    FLAPPING = "flapping"  # changing its mind too often: one notice, then quiet


@dataclass(frozen=True)
class Thresholds:
    """Gatus-like consecutive thresholds, Alertmanager-like repeats, Nagios-like flaps."""

    fail_after: int = 3
    recover_after: int = 2
    repeat_every: timedelta = timedelta(hours=4)
    flap_window: int = 20  # readings remembered to tell a flap
    flap_changes: int = 8  # ok/fail changes within the window that start a flap (40%)

    def __post_init__(self) -> None:
        if min(self.fail_after, self.recover_after) < 1:
            raise ValueError("fail_after and recover_after must be at least 1")
        if not 2 <= self.flap_changes < self.flap_window:
            raise ValueError("flap_changes must be at least 2 and below flap_window")
        if self.flap_window < 4:
            raise ValueError("flap_window must be at least 4 readings")
        if self.repeat_every <= timedelta(0):
            raise ValueError("repeat_every must be positive")


@dataclass(frozen=True)
class Reading:
    """One check's verdict on one subject at one time (judged on the controller)."""

    ok: bool
    at: datetime
    severity: Severity = Severity.WARNING
    summary: str = ""  # one line for people: "/var 93% full (threshold 90%)"
    value: float | None = None  # the measured number, where there is one (for metrics)


@dataclass(frozen=True)
class Finding:
    """What is remembered between watch runs (state.db keeps one per key)."""

    state: State = State.OK
    severity: Severity = Severity.WARNING
    summary: str = ""
    fails: int = 0  # consecutive failing readings
    oks: int = 0  # consecutive good readings
    history: tuple[bool, ...] = ()  # the newest ``flap_window`` readings, oldest first
    flapping: bool = False
    since: datetime | None = None  # when the current state began
    announced: Severity | None = None  # the severity people were last told it fires at
    last_sent: datetime | None = None  # when people were last told about it
    acked_by: str | None = None  # acknowledged while firing: no repeats until resolved
    silenced_until: datetime | None = None
    seen: datetime | None = None  # the newest reading
    value: float | None = None  # the newest reading's measured number, if it had one

    def silenced(self, now: datetime) -> bool:
        return self.silenced_until is not None and now < self.silenced_until


@dataclass(frozen=True)
class Step:
    finding: Finding
    notice: Notice | None = None
    changes: list[str] = field(default_factory=list)  # for the audit log: what moved


_ORDER = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


def step(previous: Finding | None, reading: Reading, limits: Thresholds) -> Step:
    """The finding after ``reading``, and the notice (if any) people should get now."""
    was = previous or Finding()
    history = (*was.history, reading.ok)[-limits.flap_window:]
    fails, oks = (0, was.oks + 1) if reading.ok else (was.fails + 1, 0)
    found = replace(was, history=history, fails=fails, oks=oks, seen=reading.at,
                    value=reading.value,
                    summary=reading.summary if not reading.ok else was.summary,
                    severity=reading.severity if not reading.ok else was.severity)
    moved, changes = _move(found, limits, reading.at)
    flapping = _flapping(history, was.flapping, limits)
    if flapping and not was.flapping:
        return _notify(replace(moved, flapping=True), Notice.FLAPPING, reading.at,
                       [*changes, "flapping"])
    if flapping:  # quiet while it flaps; the state still follows the readings
        return Step(replace(moved, flapping=True), None, changes)
    if was.flapping:  # calm again: the changes that made it a flap are forgotten
        moved = replace(moved, history=history[-(limits.flap_window // 2):])
        changes = [*changes, "stable"]
    return _decide(replace(moved, flapping=False), changes, limits, reading.at)


def _move(found: Finding, limits: Thresholds, now: datetime) -> tuple[Finding, list[str]]:
    """The state the consecutive counts call for."""
    if found.fails >= limits.fail_after:
        target = State.FIRING
    elif found.fails:
        target = State.FIRING if found.state is State.FIRING else State.PENDING
    elif found.state is State.FIRING and found.oks < limits.recover_after:
        target = State.FIRING
    else:
        target = State.OK
    if target is found.state:
        return found, []
    moved = replace(found, state=target, since=now)
    if target is State.OK:
        moved = replace(moved, acked_by=None)  # an acknowledgement ends with the incident
    return moved, [f"{found.state}→{target}"]


def _decide(now_finding: Finding, changes: list[str], limits: Thresholds, now: datetime) -> Step:
    quiet = now_finding.silenced(now)
    if now_finding.state is State.FIRING:
        worse = (now_finding.announced is not None
                 and _ORDER[now_finding.severity] > _ORDER[now_finding.announced])
        if now_finding.announced is None or worse:
            if quiet:  # said once the silence ends, if it still fires
                return Step(now_finding, None, changes)
            return _notify(replace(now_finding, acked_by=None if worse else now_finding.acked_by),
                           Notice.FIRING, now, changes)
        due = now_finding.last_sent is None or now - now_finding.last_sent >= limits.repeat_every
        if due and not quiet and now_finding.acked_by is None:
            return _notify(now_finding, Notice.REPEAT, now, changes)
        return Step(now_finding, None, changes)
    if now_finding.state is State.OK and now_finding.announced is not None:  # told it fired
        resolved = replace(now_finding, announced=None)
        if quiet:
            return Step(resolved, None, changes)
        return _notify(resolved, Notice.RESOLVED, now, changes)
    return Step(now_finding, None, changes)


def _notify(found: Finding, notice: Notice, now: datetime, changes: list[str]) -> Step:
    announced = found.severity if notice in {Notice.FIRING, Notice.REPEAT} else found.announced
    if notice is Notice.FLAPPING:
        announced = found.announced
    return Step(replace(found, last_sent=now, announced=announced), notice, changes)


def _flapping(history: tuple[bool, ...], was: bool, limits: Thresholds) -> bool:
    """Too many changes in the window start a flap; half a window of agreement ends it."""
    if was:
        return len(set(history[-(limits.flap_window // 2):])) > 1
    return sum(a != b for a, b in itertools.pairwise(history)) >= limits.flap_changes


def acknowledge(found: Finding, who: str) -> Finding:
    """A person has it: no repeats until it resolves (a worse severity fires again)."""
    if found.state is not State.FIRING:
        raise ValueError("only a firing finding can be acknowledged")
    return replace(found, acked_by=who)


def silence(found: Finding, until: datetime) -> Finding:
    return replace(found, silenced_until=until)


def unsilence(found: Finding) -> Finding:
    return replace(found, silenced_until=None)


def to_dict(found: Finding) -> dict[str, Any]:
    """The JSON form state.db keeps (and ``alerts show`` prints)."""
    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None
    return {"state": found.state.value, "severity": found.severity.value,
            "summary": found.summary, "fails": found.fails, "oks": found.oks,
            "history": "".join("." if ok else "x" for ok in found.history),
            "flapping": found.flapping, "since": when(found.since),
            "announced": found.announced.value if found.announced else None,
            "last_sent": when(found.last_sent), "acked_by": found.acked_by,
            "silenced_until": when(found.silenced_until), "seen": when(found.seen),
            "value": found.value}


def from_dict(doc: Mapping[str, Any]) -> Finding:
    def when(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None
    return Finding(
        state=State(doc["state"]), severity=Severity(doc["severity"]), summary=doc["summary"],
        fails=int(doc["fails"]), oks=int(doc["oks"]),
        history=tuple(char == "." for char in doc["history"]), flapping=bool(doc["flapping"]),
        since=when(doc["since"]),
        announced=Severity(doc["announced"]) if doc["announced"] else None,
        last_sent=when(doc["last_sent"]), acked_by=doc["acked_by"],
        silenced_until=when(doc["silenced_until"]), seen=when(doc["seen"]),
        value=float(doc["value"]) if doc.get("value") is not None else None)
