"""``autoops schedule``: intervals, the rendered units and cron entries, install/list/remove.

Rendering is checked against what cron and systemd do with the text: cron's ``%``
handling and ``/bin/sh`` are replayed on the rendered command, the calendar against
cronsim. The real daemons and ``systemd-analyze`` are in tests/integration.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypedDict

import pytest
from cronsim import CronSim
from hypothesis import given
from hypothesis import strategies as st

from autoops.errors import BadInputError, ScheduleInvalidError
from autoops.exits import ExitStatus
from autoops.settings import SYSTEM_PATH, ServiceConfig, Settings
from autoops.setup import schedule
from autoops.setup.schedule import Interval, Job, parse_interval

MINUTES = {1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30}
HOURS = {1, 2, 3, 4, 6, 8, 12, 24}
ODD = "/opt/auto ops/it's 100%/$HOME;x\"y"  # a space, quotes, %, $ and ; in one path


def job(**changes: object) -> Job:
    base = Job(action="watch", env="staging", every=Interval(5, "m"), user="root",
               argv=("/opt/autoops/bin/autoops", "watch", "--env", "staging"),
               environment=(("AUTOOPS_PROJECT_DIR", "/srv/ops"),
                            ("AUTOOPS_STATE_DIR", "/var/lib/autoops/state")),
               log=Path("/var/lib/autoops/state/schedule-staging.log"))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# -- intervals ------------------------------------------------------------------------


def _accepted(amount: int, unit: str) -> bool:
    return (unit == "m" and amount in MINUTES) or (unit == "h" and amount in HOURS)


@given(st.integers(min_value=0, max_value=2000), st.sampled_from(["s", "m", "h", "d", "", "M"]))
def test_an_interval_is_accepted_exactly_when_it_repeats_evenly(amount: int, unit: str) -> None:
    text = f"{amount}{unit}"
    if _accepted(amount, unit):
        interval = parse_interval(text)
        assert (interval.amount, interval.unit, interval.text) == (amount, unit, text)
    else:
        with pytest.raises(ScheduleInvalidError) as caught:
            parse_interval(text)
        assert caught.value.status == ExitStatus.BAD_INPUT
        assert caught.value.code == "AUTOOPS-SCHEDULE-INVALID"
        assert "\n" not in caught.value.remedy


@given(st.text(max_size=12))
def test_any_text_is_an_interval_or_a_schedule_error(text: str) -> None:
    try:
        interval = parse_interval(text)
    except ScheduleInvalidError as exc:
        assert len(exc.message) < 200
        return
    assert interval.text == text


@pytest.mark.parametrize("text", ["05m", "5 m", " 5m", "5m ", "5min", "1d", "60m", "0h", "48h",
                                  "30s", "60s", "-5m", "5", "m", "", "\uff15m"])
def test_what_is_refused(text: str) -> None:
    with pytest.raises(ScheduleInvalidError):
        parse_interval(text)


@pytest.mark.parametrize("text", sorted([f"{n}m" for n in MINUTES] + [f"{n}h" for n in HOURS]))
def test_cron_fires_on_the_interval_all_day_long(text: str) -> None:
    interval = parse_interval(text)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    fires = CronSim(interval.cron, start - timedelta(seconds=1))
    times = [next(fires) for _ in range(2 * 86400 // interval.seconds + 1)]
    assert times[0] == start, "the grid starts on the hour / at midnight"
    assert {b - a for a, b in itertools.pairwise(times)} == {
        timedelta(seconds=interval.seconds)}


@pytest.mark.parametrize(("text", "cron", "calendar"), [
    ("1m", "* * * * *", "*-*-* *:*:00"),
    ("5m", "*/5 * * * *", "*-*-* *:00/5:00"),
    ("30m", "*/30 * * * *", "*-*-* *:00/30:00"),
    ("1h", "0 * * * *", "*-*-* 00/1:00:00"),
    ("6h", "0 */6 * * *", "*-*-* 00/6:00:00"),
    ("24h", "0 0 * * *", "*-*-* 00:00:00"),
])
def test_cron_and_systemd_say_the_same_grid(text: str, cron: str, calendar: str) -> None:
    interval = parse_interval(text)
    assert (interval.cron, interval.on_calendar) == (cron, calendar)


def test_the_error_is_bad_input_with_a_stable_code() -> None:
    assert issubclass(ScheduleInvalidError, BadInputError)
    assert ScheduleInvalidError.code == "AUTOOPS-SCHEDULE-INVALID"
    assert ScheduleInvalidError.status == ExitStatus.BAD_INPUT
    assert int(ScheduleInvalidError.status) == 2
    assert "5m" in ScheduleInvalidError.default_remedy


# -- rendering ------------------------------------------------------------------------


def test_the_cron_file_has_header_path_user_and_the_entry() -> None:
    lines = schedule.render_cron(job()).splitlines()
    assert lines[0].startswith("# managed by autoops")
    assert lines[1] == ("# autoops-schedule: kind=cron action=watch env=staging every=5m "
                        "user=root mode=same-user")
    assert "SHELL=/bin/sh" in lines
    assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in lines
    assert lines[-1] == ("*/5 * * * * root  AUTOOPS_PROJECT_DIR=/srv/ops "
                         "AUTOOPS_STATE_DIR=/var/lib/autoops/state /opt/autoops/bin/autoops "
                         "watch --env staging >>/var/lib/autoops/state/schedule-staging.log 2>&1")
    assert schedule.render_cron(job()).endswith("\n"), "cron ignores a last line without newline"


def cron_to_shell(field: str) -> tuple[str, str | None]:
    """What Debian's cron does to a command field (do_command.c): ``\\%`` → ``%``, the
    first unescaped ``%`` ends the command (the rest is stdin)."""
    out: list[str] = []
    escaped = False
    for i, char in enumerate(field):
        if escaped:
            if char == "%":
                out[-1] = "%"
            else:
                out.append(char)
            escaped = False
            continue
        if char == "\\":
            escaped = True
        if char == "%":
            return "".join(out), field[i + 1:]
        out.append(char)
    return "".join(out), None


def test_cron_carries_every_word_exactly_through_percent_and_the_shell(tmp_path: Path) -> None:
    weird = tmp_path / "it's a 100% $HOME; `x` \"y\" *"
    weird.mkdir()
    probe = weird / "autoops"
    probe.write_text('#!/bin/sh\nprintf "%s\\0" "$@" "$AUTOOPS_PROJECT_DIR" "$AUTOOPS_STATE_DIR"\n')
    probe.chmod(0o755)
    entry = job(argv=(str(probe), "watch", "--env", "staging"),
                environment=(("AUTOOPS_PROJECT_DIR", ODD), ("AUTOOPS_STATE_DIR", str(weird))),
                log=weird / "schedule-staging.log")
    field = schedule.render_cron(entry).splitlines()[-1].split("root  ", 1)[1]
    command, stdin = cron_to_shell(field)
    assert stdin is None, "an unescaped % would cut the command"
    subprocess.run(["/bin/sh", "-c", command], check=True, env={"PATH": "/usr/bin:/bin"})
    seen = (weird / "schedule-staging.log").read_bytes().split(b"\0")[:-1]
    assert [s.decode() for s in seen] == ["watch", "--env", "staging", ODD, str(weird)]


@pytest.mark.parametrize("bad", ["/a\nb", "/a\rb", "/a\x00b", "/a\\%b", "/tab\tbed"])
def test_cron_refuses_what_it_cannot_carry(bad: str) -> None:
    with pytest.raises(ScheduleInvalidError):
        schedule.render_cron(job(environment=(("AUTOOPS_STATE_DIR", bad),)))


@pytest.mark.parametrize(("word", "command", "expected"), [
    ("/opt/autoops/bin/autoops", True, "/opt/autoops/bin/autoops"),
    ("--env", True, "--env"),
    ("/a b", True, '"/a b"'),
    ("/100%", True, '"/100%%"'),
    ("/$HOME", True, '"/$$HOME"'),
    ("A=/$HOME", False, '"A=/$HOME"'),
    ("A=/x%y", False, '"A=/x%%y"'),
    ('/q"uo\\te', True, '"/q\\"uo\\\\te"'),
    ("/semi;colon", True, '"/semi;colon"'),
])
def test_systemd_quoting(word: str, command: bool, expected: str) -> None:
    assert schedule.systemd_quote(word, command=command) == expected


def test_systemd_refuses_control_characters() -> None:
    with pytest.raises(ScheduleInvalidError):
        schedule.systemd_quote("/a\nExecStartPre=/bin/evil")


def test_the_service_is_a_oneshot_run_as_the_user_with_the_pins() -> None:
    text = schedule.render_service(job(argv=("/opt/auto ops/autoops", "watch", "--env", "staging"),
                                       environment=(("AUTOOPS_PROJECT_DIR", "/srv/o ps"),)))
    assert text.startswith("# managed by autoops")
    section = text.split("[Service]\n", 1)[1].splitlines()
    assert section[:2] == ["Type=oneshot", "User=root"]
    assert 'Environment="AUTOOPS_PROJECT_DIR=/srv/o ps"' in section
    assert 'ExecStart="/opt/auto ops/autoops" watch --env staging' in section
    assert "SuccessExitStatus=5 8" in section
    assert any(line.startswith("TimeoutStartSec=") for line in section)


def test_the_timer_is_persistent_on_the_calendar() -> None:
    text = schedule.render_timer(job(every=Interval(15, "m")))
    lines = text.splitlines()
    assert "OnCalendar=*-*-* *:00/15:00" in lines
    assert "Persistent=true" in lines
    assert "Unit=autoops-watch-staging.service" in lines
    assert lines[-2:] == ["[Install]", "WantedBy=timers.target"]


# -- the job: who, what, with which pins ----------------------------------------------


def test_same_user_mode_pins_project_and_state(settings: Settings) -> None:
    settings = dataclasses.replace(settings, age_key_file=None, witness=None, metrics_dir=None)
    found = schedule.job_for(settings, "watch", "local", Interval(5, "m"),
                             command=("/x/autoops",))
    assert found.argv == ("/x/autoops", "watch", "--env", "local")
    assert dict(found.environment) == {"AUTOOPS_PROJECT_DIR": str(settings.project_dir),
                                       "AUTOOPS_STATE_DIR": str(settings.state_dir)}
    assert found.user == settings.account
    assert found.log == settings.state_dir / "schedule-local.log"
    assert found.mode == "same-user"
    assert found.name == "autoops-watch-local"


def test_heal_is_scheduled_beside_watch_and_nothing_else_is(settings: Settings) -> None:
    found = schedule.job_for(settings, "heal", "local", Interval(5, "m"), command=("/x/autoops",))
    assert (found.argv, found.name) == (("/x/autoops", "heal", "--env", "local"),
                                        "autoops-heal-local")
    with pytest.raises(ScheduleInvalidError, match="only watch, heal"):
        schedule.job_for(settings, "deploy", "local", Interval(5, "m"), command=("/x/autoops",))


def test_what_this_shell_set_for_keys_witness_and_metrics_goes_with_the_job(
        settings: Settings) -> None:
    shell = dataclasses.replace(settings, age_key_file=Path("/k/local.txt"),
                                witness="udp://127.0.0.1:5514", metrics_dir=Path("/m"))
    found = dict(schedule.job_for(shell, "watch", "local", Interval(5, "m"),
                                  command=("/x/autoops",)).environment)
    assert (found["SOPS_AGE_KEY_FILE"], found["AUTOOPS_AUDIT_WITNESS"],
            found["AUTOOPS_METRICS_DIR"]) == ("/k/local.txt", "udp://127.0.0.1:5514", "/m")


def test_service_mode_runs_as_the_service_user_through_its_launcher(settings: Settings) -> None:
    service = ServiceConfig(path=Path("/etc/autoops/service.yml"), user="autoops",
                            operators="autoops-operators", project_dir=Path("/srv/ops"),
                            state_dir=Path("/var/lib/autoops/state"),
                            config_dir=Path("/var/lib/autoops/config"),
                            launcher=Path("/usr/local/bin/autoops"))
    svc = dataclasses.replace(settings, service=service, state_dir=service.state_dir)
    found = schedule.job_for(svc, "watch", "production", Interval(5, "m"),
                             command=("/ignored/autoops",))
    assert found.user == "autoops"
    assert found.argv == ("/usr/local/bin/autoops", "watch", "--env", "production")
    assert found.environment == ()
    assert found.mode == "service"
    assert "Environment=" not in schedule.render_service(found)
    with pytest.raises(ScheduleInvalidError, match="launcher"):
        schedule.job_for(dataclasses.replace(svc, service=dataclasses.replace(
            service, launcher=None)), "watch", "production", Interval(5, "m"))


@pytest.mark.parametrize(("action", "env"), [("run", "local"), ("watch", "Prod"),
                                             ("watch", "../etc"), ("watch", "a.b")])
def test_names_that_cannot_be_scheduled(settings: Settings, action: str, env: str) -> None:
    with pytest.raises(ScheduleInvalidError):
        schedule.job_for(settings, action, env, Interval(5, "m"), command=("/x/autoops",))


def test_an_account_without_a_name_cannot_be_scheduled(settings: Settings,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Settings, "account", property(lambda _self: "uid:4242"))
    with pytest.raises(ScheduleInvalidError, match="uid:4242"):
        schedule.job_for(settings, "watch", "local", Interval(5, "m"), command=("/x/autoops",))


def test_the_launcher_is_the_running_script_the_venvs_or_python_m(tmp_path: Path) -> None:
    real = tmp_path / "venv" / "bin"
    real.mkdir(parents=True)
    script = real / "autoops"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    (tmp_path / "autoops").symlink_to(script)
    python = str(real / "python")
    assert schedule.launcher(str(tmp_path / "autoops"), python) == (str(script),)
    assert schedule.launcher("/usr/bin/pytest", python) == (str(script),)
    script.unlink()
    assert schedule.launcher("/usr/bin/pytest", python) == (python, "-m", "autoops")


# -- install, list, remove (files only; systemctl is a recorded fake) -----------------


class Systemctl:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")


class Dirs(TypedDict):
    units_dir: Path
    cron_dir: Path


def dirs(tmp_path: Path) -> Dirs:
    return {"units_dir": tmp_path / "units", "cron_dir": tmp_path / "cron.d"}


def test_install_is_idempotent_and_the_files_are_0644(tmp_path: Path) -> None:
    entry = job(log=tmp_path / "state" / "schedule-staging.log")
    first = schedule.install(entry, "cron", **dirs(tmp_path), systemd_running=False)
    path = tmp_path / "cron.d" / "autoops-watch-staging"
    assert first["files"] == {str(path): "written"}
    assert first["changed"] is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700, "the log's dir exists"
    if os.geteuid() == 0:
        assert (path.stat().st_uid, path.stat().st_gid) == (0, 0)
    again = schedule.install(entry, "cron", **dirs(tmp_path), systemd_running=False)
    assert again["files"] == {str(path): "unchanged"}
    assert again["changed"] is False
    path.chmod(0o664)  # cron would ignore it: a fix counts as a change
    assert schedule.install(entry, "cron", **dirs(tmp_path),
                            systemd_running=False)["files"][str(path)] == "written"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_auto_means_systemd_where_it_runs(tmp_path: Path) -> None:
    fake = Systemctl()
    doc = schedule.install(job(), "auto", **dirs(tmp_path), systemd_running=True, run=fake)
    assert doc["kind"] == "systemd"
    assert sorted(p.name for p in (tmp_path / "units").iterdir()) == [
        "autoops-watch-staging.service", "autoops-watch-staging.timer"]
    assert not doc["activated"], "units outside /etc/systemd/system are not enabled"
    assert schedule.install(job(log=tmp_path / "s" / "x.log"), "auto", **dirs(tmp_path),
                            systemd_running=False)["kind"] == "cron"


def test_activation_reloads_enables_and_starts_the_timer(tmp_path: Path) -> None:
    fake = Systemctl()
    schedule.install(job(), "systemd", **dirs(tmp_path), systemd_running=True, activate=True,
                     run=fake)
    verbs = [c[1:] for c in fake.calls if c[0] == "systemctl"]
    assert verbs == [["daemon-reload"], ["enable", "autoops-watch-staging.timer"],
                     ["restart", "autoops-watch-staging.timer"]]
    fake.calls.clear()
    schedule.install(job(), "systemd", **dirs(tmp_path), systemd_running=True, activate=True,
                     run=fake)
    assert [c[1:] for c in fake.calls if c[0] == "systemctl"] == [
        ["enable", "autoops-watch-staging.timer"], ["start", "autoops-watch-staging.timer"]]
    fake.calls.clear()
    doc = schedule.remove("watch", "staging", **dirs(tmp_path), systemd_running=True,
                          activate=True, run=fake)
    assert [c[1:] for c in fake.calls] == [["disable", "--now", "autoops-watch-staging.timer"],
                                           ["daemon-reload"]]
    assert len(doc["removed"]) == 2
    assert not list((tmp_path / "units").iterdir())


def test_a_failing_systemctl_is_reported(tmp_path: Path) -> None:
    def broken(argv: list[str]) -> subprocess.CompletedProcess[str]:
        code = 1 if argv[0] == "systemctl" else 0
        return subprocess.CompletedProcess(argv, code, "", "Access denied")

    with pytest.raises(ScheduleInvalidError, match="Access denied"):
        schedule.install(job(), "systemd", **dirs(tmp_path), systemd_running=True,
                         activate=True, run=broken)


def test_switching_kind_removes_the_other(tmp_path: Path) -> None:
    entry = job(log=tmp_path / "state" / "x.log")
    schedule.install(entry, "cron", **dirs(tmp_path), systemd_running=False)
    doc = schedule.install(entry, "systemd", **dirs(tmp_path), systemd_running=False,
                           run=Systemctl())
    assert doc["replaced"] == [str(tmp_path / "cron.d" / "autoops-watch-staging")]
    assert [r["kind"] for r in schedule.listing(**dirs(tmp_path), systemd_running=False)] == [
        "systemd"]


def test_a_file_autoops_did_not_write_is_never_touched(tmp_path: Path) -> None:
    cron_d = tmp_path / "cron.d"
    cron_d.mkdir()
    foreign = cron_d / "autoops-watch-staging"
    foreign.write_text("*/5 * * * * root /usr/local/bin/something-else\n")
    with pytest.raises(ScheduleInvalidError, match="did not write"):
        schedule.install(job(log=tmp_path / "s.log"), "cron", **dirs(tmp_path),
                         systemd_running=False)
    doc = schedule.remove("watch", "staging", **dirs(tmp_path), systemd_running=False)
    assert doc == {"action": "watch", "env": "staging", "removed": [], "kept": [str(foreign)]}
    assert foreign.read_text().startswith("*/5")
    assert schedule.listing(**dirs(tmp_path), systemd_running=False) == []


def test_list_shows_kind_env_interval_user_and_paths(tmp_path: Path) -> None:
    schedule.install(job(log=tmp_path / "s" / "l.log"), "cron", **dirs(tmp_path),
                     systemd_running=False)
    schedule.install(job(env="production", every=Interval(2, "h"),
                         argv=("/x/autoops", "watch", "--env", "production")),
                     "systemd", **dirs(tmp_path), systemd_running=False, run=Systemctl())
    rows = schedule.listing(**dirs(tmp_path), systemd_running=False)
    assert [(r["kind"], r["env"], r["every"], r["user"], r["action"]) for r in rows] == [
        ("systemd", "production", "2h", "root", "watch"), ("cron", "staging", "5m", "root", "watch")]
    assert rows[0]["paths"] == [str(tmp_path / "units" / f"autoops-watch-production.{s}")
                                for s in ("timer", "service")]
    assert schedule.listing(tmp_path / "none", tmp_path / "nothing", systemd_running=False) == []


def test_remove_of_nothing_is_fine(tmp_path: Path) -> None:
    doc = schedule.remove("watch", "staging", **dirs(tmp_path), systemd_running=False)
    assert doc["removed"] == []
    assert doc["kept"] == []


def test_a_unit_that_does_not_verify_is_never_written(tmp_path: Path) -> None:
    def analyze(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 0, "", f"{Path(argv[-2]).name}:7: Failed to "
                                           "parse service type, ignoring: oneshott")

    if shutil.which("systemd-analyze", path=SYSTEM_PATH) is None:
        pytest.skip("systemd-analyze is not installed: the verify step is skipped, not faked")
    with pytest.raises(ScheduleInvalidError, match="do not verify"):
        schedule.install(job(), "systemd", **dirs(tmp_path), systemd_running=False, run=analyze)
    assert not (tmp_path / "units").exists()


def test_a_dollar_in_the_launcher_path_is_refused() -> None:
    """systemd runs the path as written but expands ``$`` in the argv[0] it passes."""
    with pytest.raises(ScheduleInvalidError, match=r"\$"):
        schedule.render_service(job(argv=("/opt/$x/autoops", "watch", "--env", "staging")))
