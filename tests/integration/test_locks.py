"""Real concurrent runs against the same hosts: the second waits or exits with 8."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoops.exits import ExitStatus
from autoops.settings import Settings
from autoops.state.db import StateDB
from autoops.state.locks import LockHolder
from tests.conftest import VENV_BIN, cli_env, run_script
from tests.integration.conftest import records, wait_for

pytestmark = pytest.mark.integration


def start(settings: Settings, *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen([str(VENV_BIN / "autoops"), *argv], env=cli_env(settings),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def holding(settings: Settings) -> Iterator[subprocess.Popen[str]]:
    """A LOW-risk run that holds localhost's lock for a while."""
    proc = start(settings, "run", "test-hold", "--env", "local", "-p", "seconds=93",
                 "--actor", "alice")
    db = StateDB(settings.db_path)
    wait_for(lambda: bool(db.locks.held()), what="the first run to lock its hosts")
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)


def test_a_second_changing_run_on_the_same_hosts_is_refused(
        settings: Settings, holding: subprocess.Popen[str]) -> None:
    holder = StateDB(settings.db_path).locks.held()[0][3]
    second = run_script(settings, "run", "test-hold", "--env", "local", "-p", "seconds=1")
    assert second.returncode == ExitStatus.BUSY, second.stderr
    assert "AUTOOPS-LOCKED" in second.stderr
    assert holder.run_id in second.stderr
    assert "alice" in second.stderr
    finished = [r for r in records(settings) if r["type"] == "run.finished"]
    assert finished[-1]["data"]["error"]["code"] == "AUTOOPS-LOCKED"
    assert not [r for r in records(settings) if r["type"] == "run.started"
                and r["run_id"] != holder.run_id], "the refused run executed nothing"


def test_plan_shows_who_holds_the_hosts(settings: Settings,
                                       holding: subprocess.Popen[str]) -> None:
    holder = StateDB(settings.db_path).locks.held()[0][3]
    busy = run_script(settings, "plan", "test-hold", "--env", "local", "-p", "seconds=1")
    assert f"BUSY: run {holder.run_id} of alice holds 1 of them" in busy.stdout
    doc = json.loads(run_script(settings, "plan", "test-hold", "--env", "local", "--json").stdout)
    assert [h["run_id"] for h in doc["lock"]["held_by"]] == [holder.run_id]
    safe = run_script(settings, "plan", "test-sleep", "--env", "local")
    assert "lock:     none" in safe.stdout


def test_read_only_runs_are_not_blocked(settings: Settings,
                                        holding: subprocess.Popen[str]) -> None:
    safe = run_script(settings, "run", "test-sleep", "--env", "local", "-p", "seconds=1")
    assert safe.returncode == ExitStatus.OK, safe.stderr
    assert holding.poll() is None


def test_a_waiting_run_goes_once_the_holder_ends(settings: Settings,
                                                 holding: subprocess.Popen[str]) -> None:
    waiting = start(settings, "run", "test-hold", "--env", "local", "-p", "seconds=1",
                    "--wait", "120")
    wait_for(lambda: sum(r["type"] == "run.requested" for r in records(settings)) == 2,
             what="the second run to queue")
    assert waiting.poll() is None, "it waits instead of failing"
    holding.send_signal(signal.SIGINT)
    holding.communicate(timeout=60)
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == ExitStatus.OK, out + err


def test_a_lock_left_by_a_dead_process_is_released_and_audited(settings: Settings,
                                                               tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    db = StateDB(settings.db_path)
    live, _ = db.locks.try_lock("local", ["localhost"], LockHolder(
        run_id="20261122T000000Z-deadbeef", actor="mallory", pid=gone.pid, pid_start="1",
        acquired="2026-11-22T00:00:00+00:00"), lambda _holder: True, addresses=["local"])
    assert live == []
    result = run_script(settings, "run", "test-hold", "--env", "local", "-p", "seconds=1")
    assert result.returncode == ExitStatus.OK, result.stderr
    stale = [r for r in records(settings) if r["type"] == "lock.stale_released"]
    assert stale[0]["data"]["holder"]["run_id"] == "20261122T000000Z-deadbeef"
    assert db.locks.held() == [], "the run released its own lock too"
