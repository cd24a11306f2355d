from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from autoops.common.files import ensure_dir
from autoops.common.procs import is_alive, process_start_time
from autoops.errors import StateError
from autoops.state.db import StateDB
from autoops.state.runs import RunRow, RunState


def test_own_process_is_alive() -> None:
    start = process_start_time(os.getpid())
    assert start is not None
    assert is_alive(os.getpid(), start)
    assert not is_alive(os.getpid(), "1")


def test_dead_process_is_not_alive() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert process_start_time(proc.pid) is None


def test_runs_and_anchor(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "s" / "state.db")
    db.runs.register(RunRow("r1", 1, "5", "local", "health", "alice", "t", "running", None))
    assert [r.run_id for r in db.runs.running()] == ["r1"]
    db.runs.set_state("r1", RunState.FINISHED)
    assert db.runs.running() == []
    assert db.anchor.get() is None
    db.anchor.advance(3, "abc")
    db.anchor.advance(2, "old")  # never moves backwards
    assert db.anchor.get() == (3, "abc")
    assert oct((tmp_path / "s").stat().st_mode & 0o777) == "0o700"


def test_state_dir_writable_by_others_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(StateError, match="writable by other users"):
        ensure_dir(shared)
