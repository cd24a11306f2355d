"""``autoops watch`` end to end on this machine: real runs, real SOPS secrets, a real receiver."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoops.exits import ExitStatus
from autoops.settings import Settings
from tests.conftest import VENV_BIN, run_cli, run_script
from tests.integration.receivers import Receiver
from tests.tls import TlsServer

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


def watch(settings: Settings) -> tuple[int, dict[str, Any]]:
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


def _caddy_log(path: Path, status: int, count: int) -> None:
    now = time.time()
    path.write_text("".join(json.dumps({"level": "info", "ts": now - i, "logger":
                                        "http.log.access.log0", "msg": "handled request",
                                        "status": status}) + "\n" for i in range(count)))


def _backup(directory: Path, age_hours: float) -> None:
    for old in directory.glob("*"):
        old.unlink()
    archive = directory / "backup-localhost-1-manual.tar.gz"
    archive.write_bytes(b"not really a tarball")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    Path(f"{archive}.sha256").write_text(f"{digest}  {archive.name}\n")
    manifest = directory / "backup-localhost-1-manual.manifest.json"
    manifest.write_text(json.dumps({"archive": archive.name, "sha256": digest,
                                    "bytes": archive.stat().st_size}))
    stamp = time.time() - age_hours * 3600
    os.utime(manifest, (stamp, stamp))


def test_each_declared_failure_class_fires_once_and_recovers_once(
        watched: Settings, project: Path, receiver: Receiver, supervisor: Path,
        tmp_path: Path) -> None:
    """Restart loop, proxy 5xx, failed heartbeat, expiring certificate, stale backup: for real."""
    access, beats, backups = tmp_path / "access.log", tmp_path / "beats", tmp_path / "backups"
    backups.mkdir()
    _caddy_log(access, 502, 40)
    _backup(backups, age_hours=30)
    failed = run_script(watched, "heartbeat", "run", "nightly", "--dir", str(beats), "--",
                        "false")
    assert failed.returncode == 1, failed.stderr
    ctl = [str(VENV_BIN / "supervisorctl"), "-c", str(supervisor)]

    def declare(loop_at: int, warning_days: int) -> None:
        path = project / "inventories" / "local" / "group_vars" / "all" / "watch.yml"
        path.write_text(yaml.safe_dump({
            "watch_services": [{"name": "autoops-demo", "restarts": loop_at,
                                "within_minutes": 60}],
            "watch_proxy_logs": [{"path": str(access), "min_requests": 20}],
            "watch_heartbeats": [{"name": "nightly", "schedule": "*/5 * * * *",
                                  "grace": "10m"}],
            "watch_heartbeat_dir": str(beats),
            "watch_tls_endpoints": [{"host": "127.0.0.1", "port": port,
                                     "server_name": "shop.test", "warning_days": warning_days,
                                     "critical_days": min(warning_days, 7)}],
            "watch_backups": {"dir": str(backups), "max_age": "26h"}}))

    def restart() -> None:
        subprocess.run([*ctl, "restart", "autoops-demo"], check=True, capture_output=True)

    with TlsServer(tmp_path, datetime.now(UTC) + timedelta(days=2)) as port:
        declare(loop_at=2, warning_days=21)
        for _ in range(2):  # pending: nothing said yet
            assert watch(watched)[0] == ExitStatus.OK
            restart()
        status, doc = watch(watched)
        assert status == ExitStatus.PLAYBOOK_FAILED
        (first,) = receiver.texts()
        for words in ("localhost: heartbeat nightly", "nightly failed: exit status 1",
                      f"localhost: proxy {access}", "40 of 40 requests",
                      "localhost: tls 127.0.0.1:", "shop.test", "expires",
                      f"localhost: backup {backups}", "1d6h old"):
            assert words in first, (words, first)
        assert "restarts" not in first
        fired = {(n["check"], n["severity"]) for n in doc["notices"]}
        assert fired == {("heartbeat", "critical"), ("proxy", "critical"),
                         ("tls", "critical"), ("backup", "critical")}
        for _ in range(2):  # the restart loop needs three failing readings of its own
            restart()
            watch(watched)
        assert len(receiver.texts()) == 2
        assert "localhost: restarts autoops-demo" in receiver.texts()[1]
        assert "restarted 4 time(s) in the last 1h" in receiver.texts()[1]
        assert watch(watched)[1]["notices"] == [], "still firing, no repeat within 4h"

        _caddy_log(access, 200, 40)
        _backup(backups, age_hours=1)
        ok = run_script(watched, "heartbeat", "run", "nightly", "--dir", str(beats), "--", "true")
        assert ok.returncode == 0, ok.stderr
        declare(loop_at=100, warning_days=1)  # two days left is fine at one day's warning
        assert watch(watched)[0] == ExitStatus.PLAYBOOK_FAILED, "one good reading is not enough"
        status, doc = watch(watched)
    assert status == ExitStatus.OK, doc["firing"]
    assert len(receiver.texts()) == 3
    recovered = receiver.texts()[2]
    assert "recovered" in recovered
    for check in ("restarts", "heartbeat", "proxy", "tls", "backup"):
        assert f"localhost: {check} " in recovered, (check, recovered)


def test_alerts_test_sends_one_message_per_class_and_audits_it(watched: Settings,
                                                               receiver: Receiver) -> None:
    done = run_cli(watched, "alerts", "test", "--env", "local", "--json")
    assert done.status == ExitStatus.OK, done.err
    doc = json.loads(done.out)
    classes = doc["classes"]
    assert {"disk", "service", "restarts", "proxy", "heartbeat", "tls", "backup"} <= set(classes)
    assert doc["sent"] == {"telegram": classes}
    texts = receiver.texts()
    assert len(texts) == len(classes), "one message per failure class"
    assert all("TEST:" in text and TOKEN not in text for text in texts)
    audit = [json.loads(line) for line in watched.audit_path.read_text().splitlines()]
    assert [e["type"] for e in audit if e["type"] == "alert.tested"] == ["alert.tested"]
    one = run_cli(watched, "alerts", "test", "--env", "local", "--class", "proxy")
    assert one.status == ExitStatus.OK, one.err
    assert "telegram: sent 1 (proxy)" in one.out
    assert len(receiver.texts()) == len(classes) + 1
    assert "5xx" in receiver.texts()[-1]


def test_alerts_test_refuses_unknown_classes_and_missing_notifiers(watched: Settings,
                                                                   receiver: Receiver) -> None:
    bad = run_cli(watched, "alerts", "test", "--env", "local", "--class", "dsik")
    assert bad.status == ExitStatus.BAD_INPUT
    assert "AUTOOPS-BAD-INPUT" in bad.err
    assert "dsik" in bad.err
    assert receiver.texts() == [], "nothing was sent"
    assert run_cli(watched, "secrets", "unset", "--env", "local",
                   "notify_telegram_token").status == ExitStatus.OK
    none = run_cli(watched, "alerts", "test", "--env", "local")
    assert none.status == ExitStatus.BAD_INPUT
    assert "AUTOOPS-NOTIFY-NONE" in none.err


def test_alerts_test_says_at_once_when_the_receiver_is_down(watched: Settings,
                                                            receiver: Receiver) -> None:
    receiver.script = [(403, {"ok": False, "error_code": 403, "description": "Forbidden: bot"})]
    done = run_cli(watched, "alerts", "test", "--env", "local", "--class", "disk")
    assert done.status == ExitStatus.UNREACHABLE
    assert "AUTOOPS-NOTIFY-FAILED" in done.err
    assert "Forbidden" in done.err
    assert TOKEN not in done.err
    assert receiver.texts() == []
    audit = [json.loads(line) for line in watched.audit_path.read_text().splitlines()]
    (tested,) = [e for e in audit if e["type"] == "alert.tested"]
    assert "telegram" in json.dumps(tested), "the failure is audited too"


def _watch_vars(project: Path, **values: Any) -> None:
    path = project / "inventories" / "local" / "group_vars" / "all" / "watch.yml"
    path.write_text("---\n" + yaml.safe_dump(values))


def test_per_check_patience_and_a_removed_declaration_resolves(
        watched: Settings, project: Path, receiver: Receiver) -> None:
    _watch_vars(project, watch_check_limits={"service": {"fail_after": 1}},
                watch_services=[{"name": "no-such-unit-anywhere"}])
    status, doc = watch(watched)
    assert status == ExitStatus.PLAYBOOK_FAILED, "fail_after 1: the first reading fires"
    assert [(n["check"], n["notice"]) for n in doc["notices"]] == [("service", "firing")]
    (problem,) = receiver.texts()
    assert "no-such-unit-anywhere" in problem
    _watch_vars(project)  # the operator removes the declaration
    statuses = [watch(watched)[0] for _ in range(2)]
    assert statuses == [ExitStatus.PLAYBOOK_FAILED, ExitStatus.OK], "2 good readings resolve"
    assert len(receiver.texts()) == 2
    assert "recovered" in receiver.texts()[1]
    (gone,) = [a for a in json.loads(run_cli(watched, "alerts", "list", "--all",
                                             "--json").out)["alerts"]
               if a["check"] == "service"]
    assert gone["state"] == "ok"
