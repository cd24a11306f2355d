"""Restart loops from remembered counters: systemd/Docker counters, supervisord PIDs, resets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from autoops.watch.restarts import Sample, advance, from_list, to_list

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=15)


def replay(readings: list[tuple[int | None, str | None]], every: int = 5) -> list[int]:
    """Restarts within the window after each reading, one reading every ``every`` minutes."""
    history: list[Sample] = []
    counts = []
    for index, (counter, marker) in enumerate(readings):
        history, count = advance(history, T0 + timedelta(minutes=every * index), counter,
                                 marker, WINDOW)
        counts.append(count)
    return counts


def test_a_counter_that_climbs_is_counted_within_the_window() -> None:
    assert replay([(0, None), (2, None), (3, None), (5, None), (5, None), (5, None),
                   (5, None)]) == [0, 2, 3, 5, 3, 2, 0]


def test_the_first_reading_counts_nothing_it_did_not_see() -> None:
    assert replay([(40, "1")]) == [0]


def test_a_counter_reset_is_not_a_negative_count_nor_a_hidden_loop() -> None:
    # the host rebooted (counter back to 0) and then restarted the unit twice
    assert replay([(7, None), (7, None), (0, None), (2, None)]) == [0, 0, 0, 2]


def test_supervisord_pid_changes_are_restarts() -> None:
    assert replay([(None, "10"), (None, "11"), (None, "12"), (None, None), (None, "13")]) == \
        [0, 1, 2, 2, 2]


def test_watch_runs_further_apart_than_the_window_count_since_the_last_run() -> None:
    assert replay([(0, None), (4, None), (4, None)], every=60) == [0, 4, 0]


def test_samples_survive_storage() -> None:
    history, _ = advance([], T0, 3, "9", WINDOW)
    assert from_list(to_list(history)) == history


@given(st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 50)),
                          st.one_of(st.none(), st.sampled_from("abc"))), max_size=40))
def test_counts_are_never_negative_and_history_stays_bounded(
        readings: list[tuple[int | None, str | None]]) -> None:
    history: list[Sample] = []
    for index, (counter, marker) in enumerate(readings):
        history, count = advance(history, T0 + timedelta(minutes=5 * index), counter, marker,
                                 WINDOW)
        assert count >= 0
        assert len(history) <= 5  # the window's readings and this one
        assert [s.total for s in history] == sorted(s.total for s in history)
