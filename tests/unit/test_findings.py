"""The findings state machine, table-driven from cases/findings.yml, plus its invariants."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from autoops.common.durations import parse_duration
from autoops.watch.findings import (
    Finding,
    Notice,
    Reading,
    Severity,
    State,
    Thresholds,
    acknowledge,
    from_dict,
    silence,
    step,
    to_dict,
)

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "findings.yml").read_text())
START = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)
KINDS = {".": None, "w": Severity.WARNING, "c": Severity.CRITICAL}


def replay(readings: str, limits: Thresholds, every: timedelta, *,
           ack_after: int | None = None,
           silence_after: dict[str, Any] | None = None) -> tuple[list[str], Finding]:
    finding: Finding | None = None
    said = []
    for index, char in enumerate(readings):
        at = START + index * every
        severity = KINDS[char]
        result = step(finding, Reading(ok=severity is None, at=at,
                                       severity=severity or Severity.WARNING,
                                       summary=f"reading {index}"), limits)
        finding = result.finding
        if result.notice is not None:
            said.append(f"{index} {result.notice}")
        if index == ack_after:
            finding = acknowledge(finding, "alice")
        if silence_after and index == silence_after["at"]:
            finding = silence(finding, at + parse_duration(silence_after["for"]))
    assert finding is not None
    return said, finding


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case: dict[str, Any]) -> None:
    limits = Thresholds(**case.get("thresholds", {}))
    said, final = replay(case["readings"], limits, parse_duration(case.get("every", "5m")),
                         ack_after=case.get("ack_after"), silence_after=case.get("silence_after"))
    assert said == case["notices"]
    assert final.state == case["state"]


def test_only_a_firing_finding_can_be_acknowledged() -> None:
    with pytest.raises(ValueError, match="only a firing"):
        acknowledge(Finding(), "alice")


@pytest.mark.parametrize("bad", [{"fail_after": 0}, {"recover_after": 0},
                                 {"flap_changes": 1}, {"flap_changes": 20},
                                 {"flap_window": 3, "flap_changes": 2},
                                 {"repeat_every": timedelta(0)}])
def test_thresholds_refuse_nonsense(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each message names its own field
        Thresholds(**bad)


runs = st.text(alphabet=".wc", min_size=1, max_size=80)


@settings(max_examples=300, deadline=None)
@given(runs)
def test_what_people_hear_is_consistent(readings: str) -> None:
    """Recoveries follow firings; no flap notice twice in a row; never more than raw failures."""
    said, final = replay(readings, Thresholds(), timedelta(minutes=5))
    kinds = [s.split()[1] for s in said]
    told_firing = False
    for kind in kinds:
        if kind == Notice.RESOLVED:
            assert told_firing, "a recovery for something never announced"
            told_firing = False
        elif kind in {Notice.FIRING, Notice.REPEAT}:
            told_firing = True
    assert all(a != b or a != Notice.FLAPPING for a, b in itertools.pairwise(kinds))
    assert len(said) <= readings.count("w") + readings.count("c") + kinds.count(Notice.RESOLVED)
    if final.state is State.OK:
        assert final.acked_by is None


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=".", max_size=10), st.integers(min_value=3, max_value=30))
def test_an_incident_of_three_runs_is_never_missed(calm: str, length: int) -> None:
    """From calm, fail_after failures in a row always fire (and say so) at the third."""
    said, final = replay(calm + "w" * length, Thresholds(), timedelta(minutes=5))
    assert said[0] == f"{len(calm) + 2} firing"
    assert final.state is State.FIRING


@settings(max_examples=200, deadline=None)
@given(runs, st.booleans())
def test_a_finding_survives_a_round_trip_through_json(readings: str, acked: bool) -> None:
    """What state.db keeps is what the next watch run continues from, exactly."""
    _said, final = replay(readings, Thresholds(), timedelta(minutes=7),
                          ack_after=None)
    if acked and final.state is State.FIRING:
        final = acknowledge(final, "bob")
    final = silence(final, START + timedelta(hours=1))
    assert from_dict(json.loads(json.dumps(to_dict(final)))) == final
