"""Alerting patience from inventory vars: what is used, and what bad tuning becomes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoops.watch import limits
from autoops.watch.findings import Thresholds


def test_nothing_set_is_the_documented_defaults() -> None:
    parsed = limits.parse(None)
    assert parsed.of("disk") == Thresholds() == Thresholds(3, 2, timedelta(hours=4))
    assert parsed.problems == ()


def test_environment_values_then_per_check_values_on_top() -> None:
    parsed = limits.parse({"fail_after": "4", "recover_after": 3, "repeat_every": "1h",
                           "checks": {"disk": {"fail_after": 1},
                                      "proxy": {"repeat_every": "30m"}}})
    assert parsed.problems == ()
    assert parsed.of("memory") == Thresholds(4, 3, timedelta(hours=1))
    assert parsed.of("disk") == Thresholds(1, 3, timedelta(hours=1))
    assert parsed.of("proxy") == Thresholds(4, 3, timedelta(minutes=30))


@pytest.mark.parametrize(("alerting", "said"), [
    ({"fail_after": 0}, "watch fail_after must be a whole number from 1 to 100"),
    ({"fail_after": True}, "watch fail_after must be a whole number"),
    ({"recover_after": "two"}, "watch recover_after must be a whole number"),
    ({"repeat_every": "0s"}, "watch repeat_every must be a duration from 1m to 7d"),
    ({"repeat_every": "30d"}, "watch repeat_every must be a duration from 1m to 7d"),
    ({"checks": {"dsik": {"fail_after": 1}}}, "watch_check_limits names no check 'dsik'"),
    ({"checks": {"disk": {"fial_after": 1}}}, "watch_check_limits.disk has unknown keys"),
    ({"checks": {"disk": 1}}, "watch_check_limits.disk is not a mapping"),
    ({"checks": ["disk"]}, "watch_check_limits is not a mapping"),
    ("fail_after=1", "watch alerting vars are not a mapping"),
])
def test_bad_tuning_keeps_the_defaults_and_says_why(alerting: Any, said: str) -> None:
    parsed = limits.parse(alerting)
    assert any(problem.startswith(said) for problem in parsed.problems), parsed.problems
    assert parsed.of("disk") == Thresholds()


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["fail_after", "recover_after",
                                                       "repeat_every", "checks", "disk", "x"]),
                                      inner, max_size=4),
                    max_leaves=12))
def test_any_inventory_value_parses_without_raising(alerting: Any) -> None:
    parsed = limits.parse(alerting)
    for check in ("disk", "proxy", "x"):
        found = parsed.of(check)
        assert 1 <= found.fail_after <= 100
        assert 1 <= found.recover_after <= 100
        assert timedelta(minutes=1) <= found.repeat_every <= timedelta(days=7)
