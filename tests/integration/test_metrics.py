"""``autoops metrics`` end to end: real watch and health runs leave a file promtool accepts."""

from __future__ import annotations

import dataclasses
import json
import stat
import subprocess
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from autoops.engine import Autoops
from autoops.exits import ExitStatus
from autoops.services.metrics import FILE_NAME
from autoops.settings import Settings
from autoops.watch.findings import FindingKey, Reading
from tests.conftest import VENV_BIN, cli_env, needs, run_cli

PROMTOOL = Path("/usr/bin/promtool")
needs_promtool = needs(PROMTOOL.exists(), "promtool (Debian's prometheus package) is missing")


@pytest.fixture
def metered(settings: Settings, textfile_dir: Path) -> Settings:
    return dataclasses.replace(settings, metrics_dir=textfile_dir)


def promtool_check(path: Path) -> subprocess.CompletedProcess[str]:
    with path.open() as text:
        return subprocess.run([str(PROMTOOL), "check", "metrics"], stdin=text,
                              capture_output=True, text=True, check=False, timeout=60)


def series(path: Path) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


@needs_promtool
def test_watch_and_a_run_leave_a_file_promtool_accepts(metered: Settings,
                                                       textfile_dir: Path) -> None:
    started = time.time()
    watched = run_cli(metered, "watch", "--env", "local", "--json")
    assert watched.status == ExitStatus.OK, watched.err
    # the console script, as cron runs it: the directory comes from AUTOOPS_METRICS_DIR
    env = {**cli_env(metered), "AUTOOPS_METRICS_DIR": str(textfile_dir)}
    ran = subprocess.run([str(VENV_BIN / "autoops"), "run", "health", "--env", "local", "--json"],
                         env=env, capture_output=True, text=True, timeout=300,
                         stdin=subprocess.DEVNULL, check=False)
    assert ran.returncode == ExitStatus.OK, ran.stderr
    path = textfile_dir / FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in textfile_dir.iterdir()) == [FILE_NAME]
    checked = promtool_check(path)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    got = series(path)
    hosts = json.loads(watched.out)["hosts"]
    statuses = {(s["host"], s["check"], s["subject"]): v for s, v in got["autoops_check_status"]}
    for host in hosts:
        assert statuses[host, "reachable", ""] == 0
        assert statuses[host, "memory", ""] == 0
        assert any(check == "disk" and h == host for h, check, _ in statuses)
    values = {(s["host"], s["check"]) for s, _ in got["autoops_check_value"]}
    assert {(hosts[0], "memory"), (hosts[0], "load")} <= values
    assert got["autoops_watch_runs_total"] == [({"env": "local", "exit_status": "0"}, 1.0)]
    ((where, last),) = got["autoops_watch_last_success_timestamp_seconds"]
    assert where == {"env": "local"}
    assert started <= last <= time.time()
    runs = {(s["action"], s["exit_status"]): v for s, v in got["autoops_runs_total"]}
    assert runs == {("watch", "0"): 1.0, ("health", "0"): 1.0}
    counts = {s["action"]: v for s, v in got["autoops_run_duration_seconds_count"]}
    assert counts == {"watch": 1.0, "health": 1.0}
    assert all(v > 0 for _, v in got["autoops_run_duration_seconds_sum"])
    infs = [v for s, v in got["autoops_run_duration_seconds_bucket"] if s["le"] == "+Inf"]
    assert infs == [1.0, 1.0]

    shown = subprocess.run([str(VENV_BIN / "autoops"), "metrics", "show"], env=env,
                           capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == path.read_text()


@needs_promtool
def test_a_refused_run_is_counted_and_a_hostile_subject_stays_one_label(
        metered: Settings, textfile_dir: Path) -> None:
    # DESTRUCTIVE in local needs a typed confirmation; without a terminal it stops (4)
    refused = run_cli(metered, "run", "backup-prune", "--env", "local", "-p", "keep=3")
    assert refused.status == ExitStatus.APPROVAL_REQUIRED, refused.err
    hostile = 'x"} evil{a="1\nautoops_runs_total{action="forged"} 1e9\\'
    app = Autoops(metered)
    app.alerts.observe(FindingKey("local", "localhost", "service", hostile),
                       Reading(False, app.context.clock(), summary="made up"))
    written = run_cli(metered, "metrics", "write", "--json")
    assert written.status == ExitStatus.OK, written.err
    path = Path(json.loads(written.out)["path"])
    assert path == textfile_dir / FILE_NAME
    checked = promtool_check(path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    got = series(path)
    assert [s["subject"] for s, _ in got["autoops_check_status"]] == [hostile]
    assert all(s["action"] != "forged" for s, _ in got["autoops_runs_total"])
    assert [(s, v) for s, v in got["autoops_runs_total"]] == [
        ({"action": "backup-prune", "env": "local", "exit_status": "4"}, 1.0)]
