from __future__ import annotations

from pathlib import Path

import pytest

from autoops.core.risk import Risk
from autoops.errors import LockedError
from autoops.exits import ExitStatus
from autoops.guard.locks import Locks, needs_lock
from autoops.state.db import StateDB
from autoops.state.locks import LockHolder


def holder(run_id: str, pid: int = 100) -> LockHolder:
    return LockHolder(run_id=run_id, actor=f"actor-{run_id}", pid=pid, pid_start="1",
                      acquired="2026-11-22T09:00:00+00:00")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> StateDB:
    return StateDB(tmp_path / "state.db")


@pytest.fixture
def dead() -> set[int]:
    return set()


@pytest.fixture
def locks(db: StateDB, dead: set[int]) -> Locks:
    clock = Clock()
    return Locks(db, alive=lambda holder: holder.pid not in dead, sleep=clock.sleep,
                 monotonic=clock.monotonic)


@pytest.mark.parametrize(("risk", "check_mode", "expected"), [
    (Risk.SAFE, False, False), (Risk.LOW, False, True), (Risk.DESTRUCTIVE, False, True),
    (Risk.HIGH, True, False),
])
def test_only_runs_that_can_change_something_lock(risk: Risk, check_mode: bool,
                                                  expected: bool) -> None:
    assert needs_lock(risk, check_mode) is expected


def test_overlapping_hosts_in_one_environment_conflict(locks: Locks, db: StateDB) -> None:
    locks.acquire("staging", ["web1", "web2"], holder("a"))
    with pytest.raises(LockedError) as caught:
        locks.acquire("staging", ["web2", "db1"], holder("b"))
    assert caught.value.status is ExitStatus.BUSY
    assert "run a of actor-a" in caught.value.message
    assert caught.value.details["holders"][0]["run_id"] == "a"
    assert {h for _env, h, _a, who in db.locks.held() if who.run_id == "b"} == set()
    locks.acquire("staging", ["db1"], holder("c"))
    locks.acquire("production", ["web1"], holder("d"), addresses=["10.1.0.1:22"])
    assert len(db.locks.held()) == 4


def test_one_machine_is_one_lock_whatever_the_environment(locks: Locks) -> None:
    """A host is locked by the machine it reaches, so two environments cannot share it."""
    locks.acquire("staging", ["web1"], holder("a"), addresses=["192.0.2.11:22"])
    with pytest.raises(LockedError) as caught:
        locks.acquire("production", ["app9"], holder("b"), addresses=["192.0.2.11:22"])
    assert caught.value.details["holders"][0]["run_id"] == "a"
    assert [hosts for _h, hosts in locks.holders(
        "production", ["app9"], ["192.0.2.11:22"])] == [["web1 (staging)"]]


def test_release_frees_the_hosts(locks: Locks, db: StateDB) -> None:
    locks.acquire("staging", ["web1"], holder("a"))
    locks.release("a")
    locks.acquire("staging", ["web1"], holder("b"))
    assert [who.run_id for _e, _h, _a, who in db.locks.held()] == ["b"]


def test_a_dead_holders_lock_is_released_and_reported(locks: Locks, dead: set[int]) -> None:
    locks.acquire("staging", ["web1", "web2"], holder("a", pid=7))
    dead.add(7)
    seen: list[LockHolder] = []
    locks.acquire("staging", ["web2"], holder("b"), on_stale=seen.append)
    assert [h.run_id for h in seen] == ["a"]


def test_waiting_gives_up_at_the_deadline(locks: Locks) -> None:
    locks.acquire("staging", ["web1"], holder("a"))
    with pytest.raises(LockedError):
        locks.acquire("staging", ["web1"], holder("b"), wait=1.0)
    assert locks.monotonic() == pytest.approx(1.0)


def test_waiting_succeeds_once_the_holder_finishes(db: StateDB) -> None:
    clock = Clock()

    def holder_finishes(seconds: float) -> None:
        clock.sleep(seconds)
        db.locks.unlock("a")

    locks = Locks(db, alive=lambda _holder: True, monotonic=clock.monotonic,
                  sleep=holder_finishes)
    locks.acquire("staging", ["web1"], holder("a"))
    locks.acquire("staging", ["web1"], holder("b"), wait=30)
    assert len(clock.slept) == 1


def test_holders_are_the_live_runs_on_the_asked_hosts(locks: Locks, dead: set[int]) -> None:
    locks.acquire("staging", ["web1", "web2"], holder("a", pid=1))
    locks.acquire("staging", ["db1"], holder("b", pid=2))
    locks.acquire("production", ["web1"], holder("c", pid=3), addresses=["10.1.0.1:22"])
    found = {h.run_id: hosts for h, hosts in locks.holders("staging", ["web2", "web1", "db9"])}
    assert found == {"a": ["web1", "web2"]}
    dead.add(1)
    assert locks.holders("staging", ["web1"]) == []
