"""Heartbeats: on time, late, never ran, failed, stuck, too often; and the wrapper's record."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from autoops.errors import BadInputError, StateError
from autoops.watch import beat
from autoops.watch.findings import Severity
from autoops.watch.heartbeats import Job, judge
from tests.conftest import VENV_BIN

NOW = datetime(2026, 12, 2, 3, 20, tzinfo=UTC)  # a */15 job was due at 03:15


def at(hhmm: str, day: int = 2) -> float:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC).timestamp()


JOB = Job.from_declared({"name": "sync", "schedule": "*/15 * * * *", "grace": "3m"})


@pytest.mark.parametrize(("record", "ok", "severity", "words"), [
    ({"mode": "wrapper", "started": at("03:15"), "finished": at("03:16"), "exit_status": 0,
      "starts": [at("03:00"), at("03:15")]}, True, Severity.CRITICAL, "ran 2026-12-02 03:15"),
    ({"mode": "wrapper", "started": at("03:00"), "finished": at("03:01"), "exit_status": 0,
      "starts": [at("03:00")]}, False, Severity.CRITICAL, "missed its run due 2026-12-02 03:15"),
    ({"mode": "wrapper"}, False, Severity.CRITICAL, "no run recorded"),
    ({"mode": "wrapper", "started": at("03:15"), "finished": at("03:16"), "exit_status": 2},
     False, Severity.CRITICAL, "failed: exit status 2"),
    ({"mode": "wrapper", "started": at("02:45"), "finished": at("02:40"), "exit_status": 0},
     False, Severity.CRITICAL, "has not finished after 35m"),
    ({"mode": "wrapper", "started": at("03:15"), "finished": at("03:10"), "exit_status": 0},
     True, Severity.CRITICAL, "ran"),  # running, within its longest run
    ({"mode": "wrapper", "started": at("03:18"), "finished": at("03:18"), "exit_status": 0,
      "starts": [at("03:15"), at("03:16"), at("03:18")]}, False, Severity.WARNING,
     "ran 3 times since 2026-12-02 03:15"),
    ({"mode": "file", "exists": True, "last_success": at("03:16")}, True, Severity.CRITICAL, ""),
    ({"mode": "file", "exists": True, "last_success": at("02:16")}, False, Severity.CRITICAL,
     "last run 2026-12-02 02:16"),
    ({"error": "cannot read /x: Permission denied"}, False, Severity.WARNING, "Permission"),
], ids=["on-time", "late", "never", "failed", "stuck", "running", "too-often", "touched",
        "touched-late", "unreadable"])
def test_verdicts(record: dict[str, Any], ok: bool, severity: Severity, words: str) -> None:
    verdict = judge(JOB, record, NOW)
    assert (verdict.ok, verdict.severity) == (ok, severity), verdict.summary
    assert words in verdict.summary


def test_within_grace_is_not_late_yet() -> None:
    record = {"mode": "wrapper", "started": at("03:00"), "finished": at("03:01"),
              "exit_status": 0}
    assert judge(JOB, record, datetime(2026, 12, 2, 3, 17, tzinfo=UTC)).ok  # 03:15 + 3m grace
    assert not judge(JOB, record, datetime(2026, 12, 2, 3, 19, tzinfo=UTC)).ok


def test_schedules_are_read_in_their_time_zone() -> None:
    berlin = Job.from_declared({"name": "report", "schedule": "0 4 * * *", "grace": "10m",
                                "timezone": "Europe/Berlin"})  # 03:00 UTC in December
    ran = {"mode": "wrapper", "started": at("03:00"), "finished": at("03:02"), "exit_status": 0}
    assert judge(berlin, ran, datetime(2026, 12, 2, 3, 30, tzinfo=UTC)).ok
    ran_day_before = dict(ran, started=at("03:00", day=1), finished=at("03:02", day=1))
    assert not judge(berlin, ran_day_before, datetime(2026, 12, 2, 3, 30, tzinfo=UTC)).ok


def test_a_longest_run_overrides_the_interval() -> None:
    job = Job.from_declared({"name": "sync", "schedule": "*/15 * * * *", "max_runtime": "5m"})
    record = {"mode": "wrapper", "started": at("03:14"), "finished": at("03:01")}
    assert "has not finished after 6m" in judge(job, record, NOW).summary


@pytest.mark.parametrize(("declared", "words"), [
    ({"name": "x", "schedule": "61 * * * *"}, "schedule"),
    ({"name": "x", "schedule": "* * *"}, "schedule"),
    ({"name": "x", "schedule": "* * * * *", "grace": "soon"}, "duration"),
    ({"name": "x", "schedule": "* * * * *", "timezone": "Mars/Olympus"}, "timezone"),
    ({"name": "x", "schedule": "* * * * *", "severity": "doom"}, "doom"),
])
def test_bad_declarations_say_what_is_wrong(declared: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Job.from_declared(declared)


# -- the wrapper -----------------------------------------------------------------------------

def test_the_record_says_how_each_run_went(tmp_path: Path) -> None:
    ticks = iter([100.0, 104.5, 200.0, 201.0])
    clock = ticks.__next__
    assert beat.run(tmp_path, "sync", [sys.executable, "-c", "raise SystemExit(3)"], clock) == 3
    doc = json.loads((tmp_path / "sync.json").read_text())
    assert (doc["started"], doc["finished"], doc["exit_status"], doc["duration_seconds"]) == \
        (100.0, 104.5, 3, 4.5)
    assert "last_success" not in doc
    assert beat.run(tmp_path, "sync", ["true"], clock) == 0
    doc = json.loads((tmp_path / "sync.json").read_text())
    assert (doc["last_success"], doc["starts"]) == (201.0, [100.0, 200.0])
    assert oct((tmp_path / "sync.json").stat().st_mode & 0o777) == "0o644"


def test_the_command_is_argv_not_a_shell_string(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    status = beat.run(tmp_path, "job", ["echo", f"; touch {marker}"])
    assert status == 0
    assert not marker.exists()


def test_bad_names_and_missing_commands_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInputError):
        beat.run(tmp_path, "../escape", ["true"])
    with pytest.raises(BadInputError, match="needs a command"):
        beat.run(tmp_path, "job", [])
    with pytest.raises(BadInputError, match="cannot run"):
        beat.run(tmp_path, "job", [str(tmp_path / "missing")])
    assert json.loads((tmp_path / "job.json").read_text())["exit_status"] == 127


def test_a_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(StateError, match="writable by other users"):
        beat.run(shared, "job", ["true"])


def test_sigterm_reaches_the_job_and_its_status_is_recorded(tmp_path: Path) -> None:
    wrapper = subprocess.Popen(
        [str(VENV_BIN / "autoops"), "heartbeat", "run", "slow", "--dir", str(tmp_path), "--",
         sys.executable, "-c", "import time; time.sleep(60)"])
    record = tmp_path / "slow.json"
    deadline = time.monotonic() + 30
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the job itself has started
    wrapper.send_signal(signal.SIGTERM)
    assert wrapper.wait(30) == 128 + signal.SIGTERM
    doc = json.loads(record.read_text())
    assert doc["exit_status"] == 128 + signal.SIGTERM
    assert doc["finished"] >= doc["started"]


def test_grace_defaults_and_interval() -> None:
    job = Job.from_declared({"name": "n", "schedule": "0 * * * *"})
    assert job.grace == timedelta(minutes=5)
    assert job.max_runtime is None


def test_a_retry_after_a_failure_is_not_too_often(tmp_path: Path) -> None:
    ticks = iter([at("03:15"), at("03:15") + 5, at("03:17"), at("03:17") + 5])
    assert beat.run(tmp_path, "sync", ["false"], ticks.__next__) == 1
    assert beat.run(tmp_path, "sync", ["true"], ticks.__next__) == 0
    record = {"mode": "wrapper", **json.loads((tmp_path / "sync.json").read_text())}
    assert record["retries"] == [at("03:17")]
    assert judge(JOB, record, NOW).ok
    assert not judge(JOB, dict(record, retries=[]), NOW).ok
