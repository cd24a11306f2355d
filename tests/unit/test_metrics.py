"""``autoops metrics``: the exposition rendered from rows, its escaping, and counters that persist."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from autoops.engine import Autoops, RunRequest
from autoops.errors import (
    BadInputError,
    MetricsDirError,
    ServiceInvalidError,
    ServiceRefusedError,
)
from autoops.exits import ExitStatus
from autoops.services.metrics import FILE_NAME, Metrics
from autoops.services.running import Attempt
from autoops.settings import SERVICE_CONFIG_VAR, ServiceConfig, Settings
from autoops.state.db import StateDB
from autoops.state.runs import RunRow, RunState
from autoops.state.runstats import DURATION_BUCKETS, RunStatRow, WatchStatRow, bucket_of
from autoops.state.schema import MIGRATIONS
from autoops.watch import metrics
from autoops.watch.findings import Finding, FindingKey, Severity, State
from tests.conftest import needs, run_cli
from tests.unit.test_settings import service_config

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
HOSTILE = 'a "quoted"\nsecond line\\ and \\n not a newline} x{y="z"'


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, by name and labels (parsed, as Prometheus would)."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def labels(**values: str) -> frozenset[tuple[str, str]]:
    return frozenset(values.items())


def render(checks: list[tuple[FindingKey, Finding]], runs: list[RunStatRow] | None = None,
           watches: list[WatchStatRow] | None = None) -> str:
    return metrics.exposition(metrics.registry(checks, runs or [], watches or [])).decode()


# -- rendering from rows ---------------------------------------------------------------

def test_findings_become_status_severity_and_value() -> None:
    disk = FindingKey("prod", "web-1", "disk", "/var")
    load = FindingKey("prod", "web-1", "load")
    text = render([(disk, Finding(State.FIRING, Severity.CRITICAL, value=97.5)),
                   (load, Finding(State.PENDING, Severity.WARNING)),
                   (FindingKey("prod", "web-2", "memory"), Finding(value=12.0))])
    got = samples(text)
    where = labels(env="prod", host="web-1", check="disk", subject="/var")
    assert got["autoops_check_status", where] == 2
    assert got["autoops_check_severity", where] == 2
    assert got["autoops_check_value", where] == 97.5
    pending = labels(env="prod", host="web-1", check="load", subject="")
    assert got["autoops_check_status", pending] == 1
    assert ("autoops_check_value", pending) not in got, "no number, no value series"
    ok = labels(env="prod", host="web-2", check="memory", subject="")
    assert got["autoops_check_status", ok] == 0
    assert got["autoops_check_severity", pending] == 1
    assert ("autoops_check_severity", ok) not in got, "an ok finding has no severity"
    assert got["autoops_check_value", ok] == 12.0
    for name in ("autoops_check_status", "autoops_check_value", "autoops_runs_total",
                 "autoops_watch_runs_total", "autoops_run_duration_seconds",
                 "autoops_watch_last_success_timestamp_seconds"):
        assert f"# HELP {name} " in text
        assert f"# TYPE {name} " in text


def test_run_counters_and_durations_render_as_counter_and_histogram() -> None:
    every = {**{repr(b): 0 for b in DURATION_BUCKETS}, "+Inf": 0}
    row = RunStatRow("deploy", "staging", 0, 3, 75.0, {**every, "5.0": 1, "60.0": 1, "+Inf": 1})
    refused = RunStatRow("deploy", "staging", 4, 1, 0.1, {**every, "0.5": 1})
    text = render([], [row, refused])
    got = samples(text)
    key = {"action": "deploy", "env": "staging", "exit_status": "0"}
    assert got["autoops_runs_total", labels(**key)] == 3
    assert got["autoops_runs_total", labels(**{**key, "exit_status": "4"})] == 1
    bucket = "autoops_run_duration_seconds_bucket"
    assert got[bucket, labels(**key, le="1.0")] == 0
    assert got[bucket, labels(**key, le="5.0")] == 1
    assert got[bucket, labels(**key, le="60.0")] == 2
    assert got[bucket, labels(**key, le="3600.0")] == 2
    assert got[bucket, labels(**key, le="+Inf")] == 3
    assert got["autoops_run_duration_seconds_count", labels(**key)] == 3
    assert got["autoops_run_duration_seconds_sum", labels(**key)] == 75.0
    les = [s.labels["le"] for f in text_string_to_metric_families(text) for s in f.samples
           if s.name == bucket and s.labels["exit_status"] == "4"]
    assert len(les) == len(DURATION_BUCKETS) + 1, "every series has every bucket"


def test_watch_runs_and_the_last_success() -> None:
    text = render([], watches=[WatchStatRow("prod", 0, 7, 1_700_000_000.0),
                               WatchStatRow("prod", 5, 2, 1_700_000_600.0),
                               WatchStatRow("lab", 8, 1, 1_700_000_900.0)])
    got = samples(text)
    assert got["autoops_watch_runs_total", labels(env="prod", exit_status="0")] == 7
    assert got["autoops_watch_runs_total", labels(env="prod", exit_status="5")] == 2
    assert got["autoops_watch_last_success_timestamp_seconds", labels(env="prod")] == \
        1_700_000_600.0, "firing is still a watch that worked"
    assert ("autoops_watch_last_success_timestamp_seconds", labels(env="lab")) not in got


def test_nothing_recorded_is_still_a_valid_file() -> None:
    text = render([])
    assert list(text_string_to_metric_families(text))
    assert all(line.startswith("# ") for line in text.splitlines())


@pytest.mark.parametrize("seconds", [0.0, 0.5, 0.51, 3599.0, 3600.0, 86400.0])
def test_each_duration_falls_in_the_smallest_bucket_that_holds_it(seconds: float) -> None:
    key = bucket_of(seconds)
    bound = float(key)
    assert seconds <= bound
    assert all(b < seconds for b in DURATION_BUCKETS if b < bound)


# -- hostile label values --------------------------------------------------------------

def test_hostile_label_values_are_escaped_not_obeyed() -> None:
    key = FindingKey("prod", "web-1", "service", HOSTILE)
    text = render([(key, Finding(State.FIRING, value=1.0))])
    lines = [line for line in text.splitlines() if line.startswith("autoops_check_status")]
    assert len(lines) == 1, "a newline in a value cannot start a line"
    assert 'subject="a \\"quoted\\"\\nsecond line\\\\ and \\\\n not a newline} x{y=\\"z\\""' \
        in lines[0]
    got = samples(text)
    assert got["autoops_check_status", labels(env="prod", host="web-1", check="service",
                                              subject=HOSTILE)] == 2, "and it reads back as is"
    assert not any(line.startswith(("x{", "y=", "second")) for line in text.splitlines())


def test_a_value_that_is_not_unicode_text_still_renders() -> None:
    key = FindingKey("prod", "web-1", "service", "bad\udcffname")
    text = render([(key, Finding())])
    (series,) = [s for f in text_string_to_metric_families(text) for s in f.samples
                 if s.name == "autoops_check_status"]
    assert series.labels["subject"] == "bad\\udcffname"


# -- counters in state.db --------------------------------------------------------------

def test_the_migration_adds_the_tables(tmp_path: Path) -> None:
    StateDB(tmp_path / "state.db")
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) >= 7
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"run_stats", "watch_stats"} <= tables


def test_counters_survive_a_reopen_of_state_db(tmp_path: Path) -> None:
    first = StateDB(tmp_path / "state.db")
    first.run_stats.add_run("health", "local", 0, 1.2)
    first.run_stats.add_run("health", "local", 0, 40.0)
    first.run_stats.add_watch("local", 0, 1000.0)
    again = StateDB(tmp_path / "state.db")
    again.run_stats.add_run("health", "local", 0, 0.1)
    again.run_stats.add_run("health", "local", 3, 0.2)
    again.run_stats.add_watch("local", 0, 2000.0)
    again.run_stats.add_watch("local", 0, 1500.0)  # an older watch ending late
    (ok, denied) = StateDB(tmp_path / "state.db").run_stats.runs()
    assert (ok.action, ok.env, ok.exit_status, ok.count) == ("health", "local", 0, 3)
    assert ok.seconds == pytest.approx(41.3)
    assert ok.buckets["0.5"] == 1
    assert ok.buckets["2.5"] == 1
    assert ok.buckets["60.0"] == 1
    assert ok.buckets["+Inf"] == 0
    assert (denied.exit_status, denied.count) == (3, 1)
    (watched,) = again.run_stats.watches()
    assert (watched.count, watched.last_ended) == (3, 2000.0)


# -- the service: where the file goes --------------------------------------------------

@pytest.fixture
def app(settings: Settings, textfile_dir: Path) -> Autoops:
    return Autoops(dataclasses.replace(settings, metrics_dir=textfile_dir), clock=lambda: NOW)


@pytest.fixture
def strict_umask() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("strict_umask")
def test_write_replaces_one_file_0644_in_the_directory(app: Autoops, textfile_dir: Path) -> None:
    app.context.db.run_stats.add_run("health", "local", 0, 2.0)
    path = app.metrics.write()
    assert path == textfile_dir / FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o644, "node_exporter reads it as another user"
    assert [p.name for p in textfile_dir.iterdir()] == [FILE_NAME], "no temporary file left"
    assert path.read_text() == app.metrics.render()
    assert 'autoops_runs_total{action="health",env="local",exit_status="0"} 1.0' in path.read_text()


def test_without_a_directory_nothing_is_written(settings: Settings) -> None:
    app = Autoops(settings, clock=lambda: NOW)
    assert settings.metrics_dir is None
    assert app.metrics.write() is None
    assert app.metrics.refresh() is None
    assert "# TYPE autoops_runs_total counter" in app.metrics.render()


def test_a_directory_others_could_write_is_refused(app: Autoops, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    with pytest.raises(MetricsDirError, match="writable by everyone"):
        app.metrics.write(shared)
    with pytest.raises(MetricsDirError, match="cannot use"):
        app.metrics.write(tmp_path / "missing")
    assert not (tmp_path / "missing").exists(), "a directory is never created"
    assert list(shared.iterdir()) == []


def test_service_mode_takes_no_directory_from_the_caller(settings: Settings, textfile_dir: Path,
                                                         tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    service = ServiceConfig(path=tmp_path / "service.yml", user="autoops", operators="ops",
                            project_dir=settings.project_dir, state_dir=settings.state_dir,
                            config_dir=settings.config_dir, metrics_dir=textfile_dir)
    app = Autoops(dataclasses.replace(settings, service=service, metrics_dir=textfile_dir))
    with pytest.raises(ServiceRefusedError):
        app.metrics.write(other)
    assert list(other.iterdir()) == []
    assert app.metrics.write(textfile_dir) == textfile_dir / FILE_NAME


def test_the_cli_without_a_directory_says_so(settings: Settings) -> None:
    result = run_cli(settings, "metrics", "write")
    assert result.status == ExitStatus.BAD_INPUT
    assert "AUTOOPS-METRICS-DIR" in result.err
    shown = run_cli(settings, "metrics", "show")
    assert shown.status == ExitStatus.OK
    assert "# TYPE autoops_check_status gauge" in shown.out


# -- the run path counts every ending --------------------------------------------------

def _attempt(app: Autoops) -> Attempt:
    the_plan, _ = app.plan(RunRequest(action="health", env="local"))
    app.context.db.runs.register(RunRow("r-1", 1, "", "local", "health", "tester",
                                        NOW.isoformat(), RunState.RUNNING, None))
    return Attempt(app.context, "r-1", RunRequest(action="health", env="local"), the_plan, "tester")


def test_a_refused_run_is_counted_and_the_file_rewritten(app: Autoops, textfile_dir: Path) -> None:
    attempt = _attempt(app)
    with pytest.raises(BadInputError), attempt.refusing():
        raise BadInputError("no")
    (row,) = app.context.db.run_stats.runs()
    assert (row.action, row.env, row.exit_status, row.count) == ("health", "local", 2, 1)
    text = (textfile_dir / FILE_NAME).read_text()
    assert 'autoops_runs_total{action="health",env="local",exit_status="2"} 1.0' in text


def test_an_interrupted_run_is_counted_as_130(app: Autoops) -> None:
    attempt = _attempt(app)
    with pytest.raises(KeyboardInterrupt), attempt.interruptible("waiting for a host lock"):
        raise KeyboardInterrupt
    (row,) = app.context.db.run_stats.runs()
    assert row.exit_status == ExitStatus.INTERRUPTED


def test_a_metrics_directory_gone_bad_does_not_change_the_run(app: Autoops,
                                                              textfile_dir: Path) -> None:
    textfile_dir.rmdir()
    attempt = _attempt(app)
    with pytest.raises(BadInputError, match=r"^no$"), attempt.refusing():
        raise BadInputError("no")
    assert app.context.db.run_stats.runs()[0].count == 1, "still counted"
    with pytest.raises(MetricsDirError):
        app.metrics.write()


def test_a_completed_watch_run_is_counted_at_the_clock(app: Autoops, textfile_dir: Path) -> None:
    Metrics(app.context).watch_ended("local", ExitStatus.PLAYBOOK_FAILED)
    got = samples((textfile_dir / FILE_NAME).read_text())
    assert got["autoops_watch_runs_total", labels(env="local", exit_status="5")] == 1
    assert got["autoops_watch_last_success_timestamp_seconds", labels(env="local")] == \
        NOW.timestamp()


# -- the setting -----------------------------------------------------------------------

def test_the_metrics_directory_comes_from_autoops_metrics_dir(tmp_path: Path) -> None:
    assert Settings.from_environ({"HOME": "/h"}).metrics_dir is None
    settings = Settings.from_environ({"HOME": "/h", "AUTOOPS_METRICS_DIR": str(tmp_path)})
    assert settings.metrics_dir == tmp_path.resolve()
    assert "AUTOOPS_METRICS_DIR" not in settings.ignored_environ, "read, so not reported"
    assert "AUTOOPS_METRICS_DIR" not in settings.child_environ()


def test_the_service_config_carries_an_optional_metrics_dir(tmp_path: Path) -> None:
    base = ServiceConfig(path=tmp_path / "s.yml", user="autoops", operators="ops",
                         project_dir=tmp_path, state_dir=tmp_path, config_dir=tmp_path)
    assert base.metrics_dir is None
    assert base.to_dict()["metrics_dir"] is None
    assert dataclasses.replace(base, metrics_dir=Path("/var/lib/node_exporter")).to_dict()[
        "metrics_dir"] == "/var/lib/node_exporter"


@needs(os.geteuid() == 0, "service configs are root-owned")
@pytest.mark.parametrize("given", ["/var/lib/node_exporter/textfile", None, "relative"])
def test_service_mode_takes_metrics_dir_from_the_config_only(tmp_path: Path,
                                                            given: str | None) -> None:
    for parent in [tmp_path, *tmp_path.parents]:
        mode = parent.stat().st_mode
        if parent.stat().st_uid == 0 and mode & 0o022 and not mode & stat.S_ISVTX:
            pytest.skip(f"{parent} is writable by others")
    config = service_config(tmp_path, **({"metrics_dir": given} if given else {}))
    environ = {SERVICE_CONFIG_VAR: str(config), "HOME": "/h",
               "AUTOOPS_METRICS_DIR": str(tmp_path / "callers")}
    if given == "relative":
        with pytest.raises(ServiceInvalidError, match="metrics_dir must be an absolute path"):
            Settings.from_environ(environ)
        return
    settings = Settings.from_environ(environ)
    assert settings.mode == "service"
    assert settings.metrics_dir == (Path(given) if given else None), "never the caller's"
    assert "AUTOOPS_METRICS_DIR" in settings.ignored_environ
