"""Change windows and freezes, by time travel: ``now`` is always an argument."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoops.core import windows
from autoops.core.risk import Risk
from autoops.core.windows import Schedule, describe_opening, may_run, next_opening, parse_schedule

OFFICE = {"timezone": "UTC", "above": "LOW",
          "weekly": [{"days": ["mon", "tue", "wed", "thu"], "start": "07:00", "end": "17:00"},
                     {"days": ["fri"], "start": "07:00", "end": "12:00"}]}
MON = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """``day`` days after Monday 2026-11-23, UTC."""
    return MON + timedelta(days=day, hours=hour, minutes=minute, seconds=second)


def office(freezes: list[dict[str, Any]] | None = None) -> Schedule:
    return parse_schedule(OFFICE, freezes or [])


@pytest.mark.parametrize(("now", "risk", "allowed"), [
    (at(0, 7), Risk.HIGH, True),  # the start is inside
    (at(0, 6, 59, 59), Risk.HIGH, False),
    (at(0, 16, 59, 59), Risk.HIGH, True),
    (at(0, 17), Risk.HIGH, False),  # the end is outside
    (at(4, 11, 59), Risk.HIGH, True),  # Friday's shorter window
    (at(4, 12), Risk.HIGH, False),
    (at(5, 10), Risk.HIGH, False),  # Saturday
    (at(5, 10), Risk.LOW, True),  # LOW is not above the window's class
    (at(6, 3), Risk.SAFE, True),
])
def test_weekly_window_bounds(now: datetime, risk: Risk, allowed: bool) -> None:
    assert may_run(office(), now, risk) is allowed


@pytest.mark.parametrize(("now", "expected"), [
    (at(0, 6), at(0, 7)),
    (at(0, 12), at(0, 12)),  # already open: now
    (at(0, 17), at(1, 7)),
    (at(4, 12), at(7, 7)),  # Friday noon -> next Monday
    (at(5, 23, 59), at(7, 7)),
])
def test_next_opening(now: datetime, expected: datetime) -> None:
    assert next_opening(office(), now, Risk.HIGH) == expected


def test_a_window_past_midnight_belongs_to_the_day_it_starts() -> None:
    night = parse_schedule({"timezone": "UTC", "above": "SAFE",
                            "weekly": [{"days": ["fri"], "start": "22:00", "end": "02:00"}]}, [])
    assert may_run(night, at(4, 22), Risk.LOW)
    assert may_run(night, at(5, 1, 59), Risk.LOW)  # Saturday morning, Friday's window
    assert not may_run(night, at(5, 2), Risk.LOW)
    assert not may_run(night, at(0, 1), Risk.LOW)  # Monday morning: Sunday has no window
    assert next_opening(night, at(5, 2), Risk.LOW) == at(11, 22)


def test_end_2400_is_midnight() -> None:
    day = parse_schedule({"timezone": "UTC", "above": "SAFE",
                          "weekly": [{"days": ["sat"], "start": "00:00", "end": "24:00"}]}, [])
    assert day.weekly[0].length() == timedelta(days=1)
    assert day.weekly[0].to_dict()["end"] == "24:00"
    assert may_run(day, at(5, 23, 59, 59), Risk.HIGH)
    assert not may_run(day, at(6, 0), Risk.HIGH)


def test_local_time_follows_daylight_saving() -> None:
    berlin = parse_schedule({"timezone": "Europe/Berlin", "above": "LOW", "weekly": [
        {"days": ["mon"], "start": "09:00", "end": "17:00"}]}, [])
    summer = datetime(2026, 10, 19, 7, tzinfo=UTC)  # Monday, CEST (+2)
    winter = datetime(2026, 10, 26, 7, tzinfo=UTC)  # Monday after the change, CET (+1)
    assert may_run(berlin, summer, Risk.HIGH)
    assert not may_run(berlin, winter, Risk.HIGH)
    opening = next_opening(berlin, datetime(2026, 10, 25, 12, tzinfo=UTC), Risk.HIGH)
    assert opening == datetime(2026, 10, 26, 8, tzinfo=UTC)
    assert opening is not None
    assert opening.utcoffset() == timedelta(hours=1)
    assert describe_opening(berlin, opening) == (
        "Mon 2026-10-26 09:00 Europe/Berlin (2026-10-26T08:00:00Z)")


def test_a_window_starting_in_the_skipped_hour_opens_after_the_jump() -> None:
    spring = parse_schedule({"timezone": "Europe/Berlin", "above": "SAFE", "weekly": [
        {"days": ["sun"], "start": "02:30", "end": "04:00"}]}, [])
    # 2026-03-29 02:00 CET jumps to 03:00 CEST: 02:30 does not exist that night.
    before = datetime(2026, 3, 29, 0, 59, tzinfo=UTC)
    assert next_opening(spring, before, Risk.LOW) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert not may_run(spring, datetime(2026, 3, 29, 2, 0, tzinfo=UTC), Risk.LOW)  # 04:00 CEST


def test_freezes_stop_what_is_above_their_class_until_they_end() -> None:
    schedule = office([{"start": "2026-11-24T00:00:00+00:00", "end": "2026-11-26T12:00:00+00:00",
                        "reason": "peak sales", "above": "LOW"}])
    freeze = windows.active_freeze(schedule, at(1, 10), Risk.MEDIUM)
    assert freeze is not None
    assert freeze.reason == "peak sales"
    assert windows.active_freeze(schedule, at(1, 10), Risk.LOW) is None
    assert not may_run(schedule, at(1, 10), Risk.HIGH)
    assert may_run(schedule, at(1, 10), Risk.LOW)
    assert next_opening(schedule, at(1, 10), Risk.HIGH) == at(3, 12)  # mid-window, freeze end


def test_overlapping_freezes_open_only_after_the_last_one() -> None:
    schedule = parse_schedule(None, [
        {"start": "2026-12-20T00:00", "end": "2026-12-27T00:00", "reason": "holidays"},
        {"start": "2026-12-26T00:00", "end": "2027-01-02T00:00", "reason": "year end"}])
    now = datetime(2026, 12, 21, tzinfo=UTC)
    freeze = windows.active_freeze(schedule, datetime(2026, 12, 26, 12, tzinfo=UTC), Risk.LOW)
    assert freeze is not None
    assert freeze.reason == "year end"
    assert may_run(schedule, now, Risk.SAFE)  # a freeze without `above` still lets SAFE run
    assert next_opening(schedule, now, Risk.LOW) == datetime(2027, 1, 2, tzinfo=UTC)


def test_no_opening_within_the_horizon() -> None:
    schedule = parse_schedule(None, [{"start": "2026-01-01T00:00", "end": "2030-01-01T00:00",
                                      "reason": "forever"}])
    assert next_opening(schedule, at(0, 0), Risk.LOW) is None
    assert describe_opening(schedule, None) == "no opening within 400 days"


@pytest.mark.parametrize(("window", "freezes", "needle"), [
    ({"timezone": "Mars/Base", "above": "LOW", "weekly": [{"days": ["mon"], "start": "09:00",
                                                           "end": "10:00"}]}, [], "timezone"),
    ({"timezone": "UTC", "above": "LOW", "weekly": []}, [], "at least one window"),
    ({"timezone": "UTC", "above": "LOUD", "weekly": [{"days": ["mon"], "start": "09:00",
                                                      "end": "10:00"}]}, [], "windows.above"),
    ({"timezone": "UTC", "above": "LOW", "weekly": [{"days": ["mon", "MON"], "start": "09:00",
                                                     "end": "10:00"}]}, [], "given twice"),
    ({"timezone": "UTC", "above": "LOW", "weekly": [{"days": [], "start": "09:00",
                                                     "end": "10:00"}]}, [], "no days"),
    ({"timezone": "UTC", "above": "LOW", "weekly": [{"days": ["mon"], "start": "9:00",
                                                     "end": "10:00"}]}, [], "weekly[0].start"),
    ({"timezone": "UTC", "above": "LOW", "weekly": [{"days": ["mon"], "start": "10:00",
                                                     "end": "10:00"}]}, [], "equals start"),
    (None, [{"start": "tomorrow", "end": "2026-01-01", "reason": "x"}], "freezes[0].start"),
    (None, [{"start": "2026-01-02", "end": "2026-01-01", "reason": "x"}], "not after start"),
    (None, [{"start": "2026-01-01", "end": "2026-01-02"}], "reason is required"),
    (None, [{"start": "2026-01-01", "end": "2026-01-02", "reason": "x", "above": "NONE"}],
     "freezes[0].above"),
])
def test_bad_schedules_name_the_item(window: dict[str, Any] | None,
                                     freezes: list[dict[str, Any]], needle: str) -> None:
    with pytest.raises(ValueError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        parse_schedule(window, freezes)


# -- properties -----------------------------------------------------------------------

ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata")
hhmm = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 15, 30]))


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    weekly = draw(st.lists(st.fixed_dictionaries({
        "days": st.lists(st.sampled_from(windows.DAYS), min_size=1, max_size=7, unique=True),
        "start": hhmm, "end": hhmm}).filter(lambda w: w["start"] != w["end"]),
        min_size=1, max_size=3))
    base = datetime(2026, 1, 1, tzinfo=UTC)
    freezes = []
    for offset, length in draw(st.lists(st.tuples(st.integers(0, 60 * 24 * 400),
                                                  st.integers(1, 60 * 24 * 20)), max_size=3)):
        start = base + timedelta(minutes=offset)
        freezes.append({"start": start.isoformat(),
                        "end": (start + timedelta(minutes=length)).isoformat(),
                        "reason": "r", "above": draw(st.sampled_from(["SAFE", "LOW", "HIGH"]))})
    zone = draw(st.sampled_from(ZONES))
    return parse_schedule({"timezone": zone, "above": "LOW", "weekly": weekly}, freezes)


instants = st.integers(0, 60 * 60 * 24 * 420).map(
    lambda s: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=s))


@settings(max_examples=150, deadline=None)
@given(schedule=schedules(), now=instants, risk=st.sampled_from(list(Risk)),
       probes=st.lists(st.floats(0, 1, exclude_max=True), max_size=20))
def test_next_opening_is_open_and_nothing_earlier_is(schedule: Schedule, now: datetime,
                                                     risk: Risk, probes: list[float]) -> None:
    opening = next_opening(schedule, now, risk)
    if opening is None:
        assert not may_run(schedule, now, risk)
        return
    assert opening >= now
    assert may_run(schedule, opening, risk)
    if opening == now:
        return
    assert not may_run(schedule, now, risk)
    assert not may_run(schedule, opening - timedelta(seconds=1), risk)
    gap = int((opening - now).total_seconds())  # whole seconds: windows and freezes are
    for fraction in probes:                        # minute-aligned, `now` is second-aligned
        assert not may_run(schedule, now + timedelta(seconds=min(int(gap * fraction), gap - 1)), risk)


@settings(max_examples=100, deadline=None)
@given(schedule=schedules(), now=instants)
def test_risk_never_makes_it_easier(schedule: Schedule, now: datetime) -> None:
    allowed = [may_run(schedule, now, r) for r in Risk]
    assert allowed == sorted(allowed, reverse=True)  # once denied, every higher class is too
    assert allowed[Risk.SAFE]  # neither a window nor a freeze ever stops a read-only action


@settings(max_examples=100, deadline=None)
@given(schedule=schedules())
def test_a_schedule_round_trips_through_its_dict(schedule: Schedule) -> None:
    doc = schedule.to_dict()
    again = parse_schedule({k: doc[k] for k in ("timezone", "above", "weekly")}, doc["freezes"])
    assert again == schedule
