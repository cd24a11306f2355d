"""Durations and the grant lifetime ceilings that shrink with risk."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoops.common import durations
from autoops.core import lifetimes
from autoops.core.risk import Risk


def test_lifetime_ceilings_shrink_with_risk_and_break_glass() -> None:
    assert lifetimes.ttl_ceiling(Risk.DESTRUCTIVE, False) == timedelta(hours=2)
    assert lifetimes.ttl_ceiling(Risk.SAFE, False) == timedelta(days=30)
    assert lifetimes.ttl_ceiling(Risk.SAFE, True) == timedelta(hours=2)
    generous = {r: timedelta(days=1) for r in Risk}
    assert lifetimes.ttl_ceiling(Risk.HIGH, True, generous, timedelta(days=1)) == timedelta(hours=2)
    assert lifetimes.ttl_ceiling(Risk.HIGH, True, generous, timedelta(minutes=30)) == (
        timedelta(minutes=30))
    lifetimes.check_ceilings(lifetimes.DEFAULT_TTL_CEILINGS)
    with pytest.raises(ValueError, match=r"HIGH \(9h\) may not exceed MEDIUM \(8h\)"):
        lifetimes.check_ceilings({Risk.MEDIUM: timedelta(hours=8), Risk.HIGH: timedelta(hours=9)})


@pytest.mark.parametrize(("text", "delta"), [
    ("90s", timedelta(seconds=90)), ("30m", timedelta(minutes=30)), ("2h", timedelta(hours=2)),
    ("1h30m", timedelta(minutes=90)), ("7d", timedelta(days=7)), ("1w", timedelta(days=7)),
    (" 2h ", timedelta(hours=2)),
])
def test_durations(text: str, delta: timedelta) -> None:
    assert durations.parse_duration(text) == delta


@pytest.mark.parametrize("text", ["", "2", "h", "0h", "0h0m", "-1h", "1.5h", "1h 30m", "2hours",
                                  "1y", "1234567h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        durations.parse_duration(text)


@given(st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=999)))
def test_format_and_parse_duration_round_trip(delta: timedelta) -> None:
    whole = timedelta(seconds=int(delta.total_seconds()))
    assert durations.parse_duration(durations.format_duration(whole)) == whole
