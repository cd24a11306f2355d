"""``autoops watch`` end to end on this machine: real runs, real SOPS secrets, a real receiver."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

import pytest

from autoops.exits import ExitStatus
from autoops.settings import Settings
from tests.conftest import run_cli
from tests.integration.receivers import Receiver

TOKEN = "987654:watch-test-token"


def thresholds(project: Path, disk_warning: int) -> None:
    path = project / "inventories" / "local" / "group_vars" / "all" / "watch.yml"
    path.write_text(f"---\nwatch_disk_warning_percent: {disk_warning}\n")


@pytest.fixture
def watched(settings: Settings, project: Path, receiver: Receiver) -> Settings:
    """local, with a SOPS file telling watch where its Telegram is (the loopback receiver)."""
    assert run_cli(settings, "secrets", "init", "--env", "local").status == ExitStatus.OK
    for name, value in (("notify_telegram_token", TOKEN), ("notify_telegram_chat_id", "4242"),
                        ("notify_telegram_base_url", receiver.url)):
        done = run_cli(settings, "secrets", "set", "--env", "local", name, stdin=value)
        assert done.status == ExitStatus.OK, done.err
    return settings


def watch(settings: Settings) -> tuple[ExitStatus, dict[str, Any]]:
    result = run_cli(settings, "watch", "--env", "local", "--json")
    return result.status, json.loads(result.out)


def test_a_full_disk_fires_once_and_recovers_once(watched: Settings, project: Path,
                                                  receiver: Receiver) -> None:
    thresholds(project, 0)  # every mount is "full" at 0%
    statuses = [watch(watched)[0] for _ in range(4)]
    assert statuses == [ExitStatus.OK, ExitStatus.OK, ExitStatus.PLAYBOOK_FAILED,
                        ExitStatus.PLAYBOOK_FAILED], "pending twice, then firing"
    (problems,) = receiver.texts()
    assert "problem(s)</b> in local" in problems
    assert "localhost: disk /" in problems
    assert TOKEN not in problems
    (_path, _headers, body) = receiver.posts[0]
    assert json.loads(body)["chat_id"] == "4242"
    thresholds(project, 99)
    assert watch(watched)[0] == ExitStatus.PLAYBOOK_FAILED, "one good reading is not enough"
    status, doc = watch(watched)
    assert status == ExitStatus.OK
    assert doc["firing"] == []
    assert len(receiver.texts()) == 2
    assert "recovered" in receiver.texts()[1]
    listed = json.loads(run_cli(watched, "alerts", "list", "--all", "--json").out)["alerts"]
    assert {a["check"] for a in listed} >= {"reachable", "disk", "inodes", "memory", "load"}
    assert all(a["state"] == "ok" for a in listed)


def test_an_overlapping_watch_stops_at_once(watched: Settings) -> None:
    lock = watched.state_dir / "watch-local.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        result = run_cli(watched, "watch", "--env", "local")
    finally:
        os.close(fd)
    assert result.status == ExitStatus.BUSY
    assert "AUTOOPS-WATCH-BUSY" in result.err
    assert '"run.requested"' not in watched.audit_path.read_text(), "nothing was run"


def test_without_a_notifier_watch_still_remembers(settings: Settings, project: Path) -> None:
    thresholds(project, 0)
    docs = [watch(settings)[1] for _ in range(3)]
    assert docs[-1]["channels"] == []
    assert [n["notice"] for n in docs[-1]["notices"]]  # it would have told someone
    assert docs[-1]["firing"]
    text = run_cli(settings, "watch", "--env", "local")
    assert "no notifier configured" in text.out
