from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from autoops.common.files import ensure_dir
from autoops.common.procs import is_alive, process_start_time
from autoops.errors import StateError
from autoops.state.db import RunRow, StateDB


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
    db.register_run(RunRow("r1", 1, "5", "local", "health", "alice", "t", "running", None))
    assert [r.run_id for r in db.running()] == ["r1"]
    db.set_run_status("r1", "finished")
    assert db.running() == []
    assert db.anchor() is None
    db.set_anchor(3, "abc")
    db.set_anchor(2, "old")  # never moves backwards
    assert db.anchor() == (3, "abc")
    assert oct((tmp_path / "s").stat().st_mode & 0o777) == "0o700"


def test_state_dir_writable_by_others_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(StateError, match="writable by other users"):
        ensure_dir(shared)
