"""Catalog actions against real SSH hosts (the lab), through autoops run."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autoops.engine import Autoops, RunRequest
from autoops.exits import ExitStatus
from autoops.lab import manager
from tests.fleet.conftest import Lab
from tests.integration.conftest import records, wait_for

pytestmark = pytest.mark.fleet
HOSTS = ["db1", "web1", "web2"]


@pytest.fixture
def app(lab: Lab) -> Autoops:
    return Autoops(lab.settings)


def task_hosts(lab: Lab, run_id: str, task: str) -> list[str]:
    return sorted(r["data"]["host"] for r in records(lab.settings, run_id)
                  if r["type"] == "task.result" and r["data"]["task"] == task)


def test_health_over_ssh_on_every_host(app: Autoops, lab: Lab) -> None:
    result = app.run(RunRequest("health", "lab"))
    assert result.status is ExitStatus.OK, result.results
    assert sorted(result.plan.hosts) == HOSTS
    assert task_hosts(lab, result.run_id, "Read uptime, load, memory and disks") == HOSTS
    hostnames = sorted(result.reports[h][0]["hostname"] for h in HOSTS)
    assert hostnames == HOSTS  # each host is its own UTS namespace


def test_hosts_have_separate_filesystems(app: Autoops, lab: Lab) -> None:
    lab.on_host("web1", "sh", "-c", "echo only-here > /tmp/marker")
    result = app.run(RunRequest("backup", "lab", {"label": "sep"}, limit="web1"))
    assert result.status is ExitStatus.OK, result.results
    assert "backup-web1-" in lab.on_host("web1", "ls", "/var/backups/autoops")
    assert lab.docker("exec", "autoops-lab-web2", "sh", "-c",
                      "ls /var/backups/autoops 2>/dev/null; cat /tmp/marker 2>/dev/null; true") == ""


def test_service_status_and_restart_change_the_pid(app: Autoops, lab: Lab) -> None:
    status = app.run(RunRequest("service-status", "lab", {"service": "autoops-demo"},
                                limit="web"))
    assert status.status is ExitStatus.OK, status.results
    before = {h: int(status.reports[h][-1]["pid"]) for h in ("web1", "web2")}
    restart = app.run(RunRequest("restart-service", "lab", {"service": "autoops-demo"},
                                 limit="web"))
    assert restart.status is ExitStatus.OK, restart.results
    for host in ("web1", "web2"):
        now = int(lab.on_host(host, "supervisorctl", "pid", "autoops-demo").strip())
        assert now != before[host]
        assert int(restart.reports[host][-1]["pid"]) == now
    assert task_hosts(lab, restart.run_id, "Restart through supervisord") == ["web1", "web2"]


def test_backup_then_prune_keeps_the_newest(app: Autoops, lab: Lab) -> None:
    for label in ("a", "b", "c"):
        assert app.run(RunRequest("backup", "lab", {"label": label},
                                  limit="db1")).status is ExitStatus.OK
    listing = lab.on_host("db1", "ls", "/var/backups/autoops").split()
    newest = max(n for n in listing if n.endswith(".tar.gz"))
    prune = app.run(RunRequest("backup-prune", "lab", {"keep": "1"}, limit="db1"),
                    confirm=lambda _p, _d: "lab")
    assert prune.status is ExitStatus.OK, prune.results
    left = sorted(lab.on_host("db1", "ls", "/var/backups/autoops").split())
    assert left == sorted([newest, f"{newest}.sha256",
                           newest.replace(".tar.gz", ".manifest.json")])
    check = lab.on_host("db1", "sh", "-c", f"cd /var/backups/autoops && sha256sum -c {newest}.sha256")
    assert "OK" in check
    deleted = [r for r in records(lab.settings, prune.run_id)
               if r["type"] == "task.result" and r["data"]["task"].startswith("Delete old")]
    assert deleted
    assert all(r["data"]["host"] == "db1" for r in deleted)


def test_paramiko_reaches_the_hosts_too(app: Autoops, lab: Lab) -> None:
    host_vars = lab.paths.inventory_dir / "host_vars"
    host_vars.mkdir(exist_ok=True)
    (host_vars / "web2.yml").write_text(
        "---\nansible_connection: paramiko\n"
        # paramiko reads ~/.ssh/known_hosts only; the lab's keys live in its own file
        "ansible_paramiko_host_key_checking: false\n")
    try:
        result = app.run(RunRequest("health", "lab", limit="web2"))
        assert result.status is ExitStatus.OK, result.results
        assert result.reports["web2"][0]["hostname"] == "web2"
    finally:
        (host_vars / "web2.yml").unlink()


@pytest.fixture
def restarted_db1(lab: Lab) -> Iterator[None]:
    yield
    lab.docker("start", "autoops-lab-db1")
    # `supervisorctl status` exits non-zero until sshd is RUNNING (or supervisord is up):
    # that is the wait's "not yet", not a failure.
    wait_for(lambda: "RUNNING" in lab.docker("exec", "autoops-lab-db1", "supervisorctl",
                                             "status", "sshd", check=False), 60, "db1's sshd")


def test_host_stopped_mid_run_is_unreachable_and_others_complete(
        app: Autoops, lab: Lab, restarted_db1: None) -> None:
    outcome: dict[str, Any] = {}
    run = threading.Thread(target=lambda: outcome.update(
        result=app.run(RunRequest("test-sleep", "lab", {"seconds": "4"}))))
    run.start()
    wait_for(lambda: any(r["type"] == "run.started" for r in records(lab.settings)
                         if r["action"] == "test-sleep"), 60, "run.started")
    time.sleep(1.5)
    manager.stop_host(lab.paths, "db1")
    run.join(120)
    result = outcome["result"]
    assert result.status is ExitStatus.UNREACHABLE, result.results
    assert result.stats["db1"].get("dark") == 1
    for host in ("web1", "web2"):
        assert result.stats[host].get("failures", 0) == 0
        assert result.stats[host]["ok"] >= 2
    dark = [r["data"]["host"] for r in records(lab.settings, result.run_id)
            if r["type"] == "task.result" and r["data"]["status"] == "unreachable"]
    assert dark == ["db1"]


def test_lab_down_removes_everything_it_created(tmp_path_factory: pytest.TempPathFactory) -> None:
    from tests.conftest import CACHE_DIR

    base = tmp_path_factory.mktemp("labdown")
    paths = manager.LabPaths(base / "lab", CACHE_DIR / "lab", base / "inventories" / "lab")
    before = Path("/proc/mounts").read_text()
    manager.up(paths, manager.parse_groups(1, None), print)
    assert (paths.inventory_dir / "hosts.yml").exists()
    record = manager.load_record(paths)
    assert record is not None
    engine = manager.engine_of(record)
    manager.down(paths, print)
    assert not paths.inventory_dir.exists()
    assert not paths.record.exists()
    assert not paths.key.exists()
    if engine.private_dir is not None:
        assert not engine.private_dir.exists()
        assert str(base) not in Path("/proc/mounts").read_text()
    else:  # a system engine stays, without our containers
        assert "autoops-lab-lab1" not in engine.docker("ps", "--all").stdout
    assert Path("/proc/mounts").read_text().count(str(base)) == before.count(str(base))
