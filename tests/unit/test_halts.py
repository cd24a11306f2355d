"""The emergency stop's state: scopes, precedence and the running run's poll."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from autoops.guard.halts import ALL, POLL_SECONDS, Halts
from autoops.state.db import StateDB

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.fixture
def halts(tmp_path: Path) -> Halts:
    return Halts(StateDB(tmp_path / "state.db"), lambda: NOW)


def test_a_halt_covers_its_environment_only(halts: Halts) -> None:
    row, engaged = halts.engage("production", "bad deploy", "alice")
    assert engaged
    facts = halts.for_env("production")
    assert facts is not None
    assert (facts.scope, facts.reason, facts.actor) == ("production", "bad deploy", "alice")
    assert halts.for_env("staging") is None
    assert row.since == NOW.isoformat()


def test_a_second_halt_keeps_the_first(halts: Halts) -> None:
    halts.engage("production", "first", "alice")
    row, engaged = halts.engage("production", "second", "bob")
    assert not engaged
    assert (row.reason, row.actor) == ("first", "alice")
    assert [h.reason for h in halts.active()] == ["first"]


def test_a_global_halt_covers_everything_and_lifts_only_globally(halts: Halts) -> None:
    halts.engage(ALL, "datacentre fire", "alice")
    for env in ("local", "staging", "production"):
        facts = halts.for_env(env)
        assert facts is not None
        assert facts.scope == ALL
    assert halts.lift("production") is None  # nothing to lift there
    assert halts.for_env("production") is not None
    lifted = halts.lift(ALL)
    assert lifted is not None
    assert lifted.reason == "datacentre fire"
    assert halts.for_env("production") is None


def test_an_environments_own_halt_is_named_before_a_global_one(halts: Halts) -> None:
    halts.engage(ALL, "everything", "alice")
    halts.engage("staging", "staging only", "bob")
    facts = halts.for_env("staging")
    assert facts is not None
    assert facts.reason == "staging only"
    halts.lift("staging")
    facts = halts.for_env("staging")
    assert facts is not None
    assert facts.scope == ALL


def test_the_watcher_polls_at_most_every_interval_and_remembers(halts: Halts) -> None:
    now = [100.0]
    reads: list[str] = []
    original = halts.for_env

    def counting(env: str, actor: str | None = None) -> object:
        reads.append(env)
        return original(env, actor)

    halts.for_env = counting  # type: ignore[method-assign,assignment]
    poll = halts.watcher("staging", monotonic=lambda: now[0])
    assert poll() is None
    assert poll() is None  # within the interval: no read
    assert len(reads) == 1
    halts.engage("staging", "stop", "alice")
    now[0] += POLL_SECONDS
    first = poll()
    assert first is not None
    assert first.reason == "stop"
    halts.lift("staging")
    now[0] += 10 * POLL_SECONDS
    assert poll() == first  # once seen, a run stays halted even if the halt is lifted
    assert len(reads) == 2
