"""``autoops schedule`` for real: units checked by systemd-analyze, an entry run by Debian's cron.

This machine is a container without systemd as PID 1, so the units are verified, never
started; the cron entry is the one ``schedule install`` writes, run by a real ``cron -f``
in a private mount namespace whose /etc/cron.d holds only it (the machine's own cron jobs
and /etc/cron.d are never touched).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from autoops.errors import ScheduleInvalidError
from autoops.exits import ExitStatus
from autoops.settings import SYSTEM_PATH, Settings
from autoops.setup import schedule
from tests.conftest import VENV_BIN, CliResult, needs, run_cli
from tests.integration.conftest import records

pytestmark = pytest.mark.integration

ANALYZE = shutil.which("systemd-analyze", path=SYSTEM_PATH)
CRON = Path("/usr/sbin/cron")
ROOT = os.geteuid() == 0
needs_analyze = needs(ANALYZE is not None, "needs systemd-analyze (Debian: systemd)")
ENV = {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8", "TZ": "UTC"}


def schedule_cli(settings: Settings, tmp_path: Path, *argv: str) -> CliResult:
    return run_cli(settings, "--json", "schedule", *argv, "--units-dir", str(tmp_path / "units"),
                   "--cron-dir", str(tmp_path / "cron.d"))


def analyze(*argv: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run([ANALYZE, *argv], capture_output=True, text=True, env=ENV, check=False,
                          timeout=60)


@needs_analyze
def test_systemd_units_verify_and_a_second_install_changes_nothing(settings: Settings,
                                                                    tmp_path: Path) -> None:
    first = schedule_cli(settings, tmp_path, "install", "--env", "local", "--every", "5m",
                         "--kind", "systemd")
    assert first.status == ExitStatus.OK, first.out + first.err
    doc = json.loads(first.out)
    units = tmp_path / "units"
    service, timer = units / "autoops-watch-local.service", units / "autoops-watch-local.timer"
    assert doc["files"] == {str(service): "written", str(timer): "written"}
    assert doc["verified"] is True
    assert doc["activated"] is False, "systemd is not PID 1 here"
    assert doc["argv"] == [str(VENV_BIN / "autoops"), "watch", "--env", "local"]
    checked = analyze("verify", str(service), str(timer))
    assert checked.returncode == 0, checked.stderr
    assert not (checked.stdout + checked.stderr).strip(), checked.stderr
    text = service.read_text()
    assert f"ExecStart={VENV_BIN / 'autoops'} watch --env local" in text.splitlines()
    assert f"AUTOOPS_STATE_DIR={settings.state_dir}" in text
    before = {p.name: p.read_bytes() for p in units.iterdir()}

    again = schedule_cli(settings, tmp_path, "install", "--env", "local", "--every", "5m",
                         "--kind", "systemd")
    assert json.loads(again.out)["files"] == {str(service): "unchanged", str(timer): "unchanged"}
    assert {p.name: p.read_bytes() for p in units.iterdir()} == before
    text_mode = run_cli(settings, "schedule", "install", "--env", "local", "--every", "5m",
                        "--kind", "systemd", "--units-dir", str(units),
                        "--cron-dir", str(tmp_path / "cron.d"))
    assert ": unchanged" in text_mode.out.splitlines()[0]

    listed = json.loads(schedule_cli(settings, tmp_path, "list").out)["schedules"]
    assert [(r["kind"], r["env"], r["every"], r["action"]) for r in listed] == [
        ("systemd", "local", "5m", "watch")]
    removed = json.loads(schedule_cli(settings, tmp_path, "remove", "--env", "local").out)
    assert sorted(removed["removed"]) == sorted([str(service), str(timer)])
    assert not list(units.iterdir())


CALENDAR_LINE = re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) UTC$")


@needs_analyze
@pytest.mark.parametrize("every", [f"{n}m" for n in schedule.MINUTES]
                         + [f"{n}h" for n in schedule.HOURS])
def test_systemd_reads_the_calendar_as_the_interval(every: str) -> None:
    interval = schedule.parse_interval(every)
    shown = analyze("calendar", "--iterations=4", interval.on_calendar)
    assert shown.returncode == 0, shown.stderr
    times = [datetime.fromisoformat(m[1]) for line in shown.stdout.splitlines()
             if (m := CALENDAR_LINE.search(line.strip()))]
    assert len(times) == 4, shown.stdout
    assert {b - a for a, b in itertools.pairwise(times)} == {
        timedelta(seconds=interval.seconds)}
    if interval.unit == "m":
        assert all(t.second == 0 and t.minute % interval.amount == 0 for t in times)
    else:
        assert all((t.second, t.minute, t.hour % interval.amount) == (0, 0, 0) for t in times)


@needs_analyze
def test_systemd_quoting_survives_a_launcher_path_with_space_and_percent(
        settings: Settings, tmp_path: Path) -> None:
    odd = tmp_path / "a b%c"
    odd.mkdir()
    (odd / "autoops").symlink_to(VENV_BIN / "autoops")
    job = schedule.job_for(settings, "watch", "local", schedule.Interval(15, "m"),
                           command=(str(odd / "autoops"),))
    doc = schedule.install(job, "systemd", units_dir=tmp_path / "units",
                           cron_dir=tmp_path / "cron.d", systemd_running=False)
    assert doc["verified"] is True  # verify looks the ExecStart= path up: it parsed right
    assert 'ExecStart="' in (tmp_path / "units" / "autoops-watch-local.service").read_text()

    missing = schedule.job_for(settings, "watch", "staging", schedule.Interval(15, "m"),
                               command=(str(tmp_path / "gone" / "autoops"),))
    with pytest.raises(ScheduleInvalidError, match="not executable"):
        schedule.install(missing, "systemd", units_dir=tmp_path / "units",
                         cron_dir=tmp_path / "cron.d", systemd_running=False)
    assert not (tmp_path / "units" / "autoops-watch-staging.service").exists()

    quoted = tmp_path / 'say "hi"'  # systemd refuses such an executable name: so does install
    quoted.mkdir()
    (quoted / "autoops").symlink_to(VENV_BIN / "autoops")
    refused = schedule.job_for(settings, "watch", "staging", schedule.Interval(15, "m"),
                               command=(str(quoted / "autoops"),))
    with pytest.raises(ScheduleInvalidError, match="special characters"):
        schedule.install(refused, "systemd", units_dir=tmp_path / "units",
                         cron_dir=tmp_path / "cron.d", systemd_running=False)
    assert not (tmp_path / "units" / "autoops-watch-staging.service").exists()


def test_refusals_are_bad_input_with_a_remedy(settings: Settings, project: Path,
                                              tmp_path: Path) -> None:
    unknown = schedule_cli(settings, tmp_path, "install", "--env", "nowhere", "--every", "5m")
    assert unknown.status == ExitStatus.BAD_INPUT
    assert json.loads(unknown.out)["error"]["code"] == "AUTOOPS-ENV-UNKNOWN"
    odd = schedule_cli(settings, tmp_path, "install", "--env", "local", "--every", "7m")
    error = json.loads(odd.out)["error"]
    assert (odd.status, error["code"]) == (ExitStatus.BAD_INPUT, "AUTOOPS-SCHEDULE-INVALID")
    assert "30m" in error["remedy"]
    plain = run_cli(settings, "schedule", "install", "--env", "local", "--every", "90s",
                    "--cron-dir", str(tmp_path / "cron.d"))
    assert plain.err.startswith("error[AUTOOPS-SCHEDULE-INVALID]: --every '90s'")
    assert "\n  remedy: " in plain.err

    catalog = yaml.safe_load((project / "catalog.yml").read_text())
    catalog["actions"]["watch"]["environments"] = ["local"]
    (project / "catalog.yml").write_text(yaml.safe_dump(catalog, sort_keys=False))
    barred = schedule_cli(settings, tmp_path, "install", "--env", "staging", "--every", "5m")
    assert json.loads(barred.out)["error"]["code"] == "AUTOOPS-SCHEDULE-INVALID"
    assert not (tmp_path / "cron.d").exists(), "nothing was written"


@pytest.mark.skipif(not ROOT, reason="a service config must be root's (trusted_path): run as root")
def test_root_schedules_the_service_users_watch_through_its_launcher(
        settings: Settings, project: Path, tmp_path: Path) -> None:
    launcher = tmp_path / "launcher"
    launcher.write_text("#!/bin/sh\nexit 0\n")
    launcher.chmod(0o755)
    state = tmp_path / "service-state"
    state.mkdir(mode=0o700)
    config = tmp_path / "service.yml"
    config.write_text(yaml.safe_dump({
        "version": 1, "user": "autoops", "operators": "autoops-operators",
        "project_dir": str(project), "state_dir": str(state),
        "config_dir": str(tmp_path / "svc-config"), "launcher": str(launcher)}))
    config.chmod(0o644)
    done = schedule_cli(settings, tmp_path, "install", "--env", "staging", "--every", "10m",
                        "--kind", "cron", "--service-config", str(config))
    assert done.status == ExitStatus.OK, done.out
    doc = json.loads(done.out)
    assert (doc["user"], doc["mode"], doc["environment"]) == ("autoops", "service", {})
    assert doc["argv"] == [str(launcher), "watch", "--env", "staging"]
    assert doc["log"] == str(state / "schedule-staging.log")
    line = (tmp_path / "cron.d" / "autoops-watch-staging").read_text().splitlines()[-1]
    assert line == (f"*/10 * * * * autoops  {launcher} watch --env staging "
                    f">>{state}/schedule-staging.log 2>&1")


# -- Debian's cron runs the entry -----------------------------------------------------


def _can_unshare() -> bool:
    if not ROOT or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                           capture_output=True, check=False, timeout=30)
    return probe.returncode == 0


class PrivateCron:
    """``cron -f`` in its own mount namespace, whose /etc/cron.d is :attr:`cron_d`.

    /etc/crontab, the users' crontabs and /run (its pid file) are empty stand-ins too, so
    only the entry under test runs, beside any cron the machine runs itself.
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self.cron_d = base / "cron.d"
        for name in ("cron.d", "run", "spool"):
            (base / name).mkdir(parents=True, mode=0o755)
        (base / "crontab").write_text("# empty: only the entry under test runs\n")
        (base / "crontab").chmod(0o644)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start after the entry is written: cron compares /etc/cron.d's mtime in seconds,
        so an entry written in the second cron first read the directory would be missed."""
        script = ('mount --bind "$1" /etc/cron.d && mount --bind "$2" /etc/crontab && '
                  'mount --bind "$3" /run && mount --bind "$4" /var/spool/cron/crontabs && '
                  'exec "$5" -f -L 15')
        with (self.base / "cron.out").open("wb") as out:
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script,
                 "sh", str(self.cron_d), str(self.base / "crontab"), str(self.base / "run"),
                 str(self.base / "spool"), str(CRON)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def private_cron(tmp_path: Path) -> Iterator[PrivateCron]:
    cron = PrivateCron(tmp_path / "cron")
    try:
        yield cron
    finally:
        cron.stop()


@pytest.mark.skipif(not ROOT, reason="cron runs /etc/cron.d entries only for root: run as root")
@needs(CRON.exists(), "needs /usr/sbin/cron (Debian: cron)")
@needs(_can_unshare(), "needs a private mount namespace (unshare --mount) to give cron its own "
       "/etc/cron.d")
def test_cron_runs_the_installed_entry(settings: Settings, tmp_path: Path,
                                       private_cron: PrivateCron) -> None:
    odd = dataclasses.replace(settings, state_dir=tmp_path / "st ate%1 it's")  # quoting, for real
    done = run_cli(odd, "--json", "schedule", "install", "--env", "local", "--every", "1m",
                   "--kind", "cron", "--cron-dir", str(private_cron.cron_d),
                   "--units-dir", str(tmp_path / "units"))
    assert done.status == ExitStatus.OK, done.out
    entry = private_cron.cron_d / "autoops-watch-local"
    assert entry.stat().st_mode & 0o777 == 0o644
    assert entry.stat().st_uid == 0
    line = entry.read_text().splitlines()[-1]
    assert line.startswith("* * * * * root  AUTOOPS_PROJECT_DIR=")
    assert "\\%" in line, "cron's % is escaped"
    log = odd.state_dir / "schedule-local.log"

    private_cron.start()
    deadline = time.monotonic() + 130
    while time.monotonic() < deadline and "watch local:" not in _read(log):
        time.sleep(1)
    assert "watch local: 1 host(s)" in _read(log), (
        _read(log) + _read(private_cron.base / "cron.out"))
    runs = {r["run_id"] for r in records(odd) if r["action"] == "watch"}
    assert runs, "the watch run is in the audit log of the pinned state directory"
    assert {r["actor"] for r in records(odd) if r["run_id"] in runs} == {"root"}

    gone = run_cli(odd, "--json", "schedule", "remove", "--env", "local",
                   "--cron-dir", str(private_cron.cron_d), "--units-dir", str(tmp_path / "units"))
    assert json.loads(gone.out)["removed"] == [str(entry)]
    assert not entry.exists()


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
