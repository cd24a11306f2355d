"""Prometheus metrics from what autoops remembers: findings, runs and watch runs.

Pure: the caller hands in the rows (findings from ``state.db``, the counters of
:mod:`autoops.state.runstats`) and gets a private registry holding one snapshot of
them, in the node_exporter textfile collector's convention (every name ``autoops_``,
with HELP and TYPE). A private registry, so nothing of the process (its own CPU or
memory, the client library's defaults) leaks into a file that describes the fleet.

Series:

- ``autoops_check_status{env,host,check,subject}``: 0 ok, 1 pending (failing, not yet
  long enough to fire), 2 firing;
- ``autoops_check_severity{…}``: 0 info, 1 warning, 2 critical, while it is pending or
  firing (an ok finding has no severity to speak of: no series);
- ``autoops_check_value{…}``: the newest reading's number where the check has one, in
  the check's own unit (percent for disk, inodes, memory and proxy 5xx, load per CPU,
  restarts in the window, days left on a certificate, seconds since the newest backup);
- ``autoops_watch_last_success_timestamp_seconds{env}``: when a watch run last completed
  (read, judged and remembered every host, firing or not);
- ``autoops_watch_runs_total{env,exit_status}``: completed watch runs (0 ok, 5 firing);
- ``autoops_runs_total{action,env,exit_status}``: every guarded run that ended, refusals
  included (their exit status says why: 3 denied, 4 approval needed, 7 halted, …);
- ``autoops_run_duration_seconds{action,env,exit_status}``: a histogram of their
  durations, from the request to the end (waits for a confirmation or a lock included).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from autoops.watch.findings import Finding, FindingKey, Severity, State

STATUS_CODES = {State.OK: 0, State.PENDING: 1, State.FIRING: 2}
SEVERITY_CODES = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
WATCH_COMPLETED = frozenset({0, 5})
"""Exit statuses of a watch run that did its job: nothing fires (0), something does (5)."""

CHECK_LABELS = ("env", "host", "check", "subject")


class RunCounts(Protocol):
    """One row of run counters (:class:`autoops.state.runstats.RunStatRow` is one)."""

    @property
    def action(self) -> str: ...
    @property
    def env(self) -> str: ...
    @property
    def exit_status(self) -> int: ...
    @property
    def count(self) -> int: ...
    @property
    def seconds(self) -> float: ...
    @property
    def buckets(self) -> Mapping[str, int]: ...


class WatchCounts(Protocol):
    """One row of watch counters (:class:`autoops.state.runstats.WatchStatRow` is one)."""

    @property
    def env(self) -> str: ...
    @property
    def exit_status(self) -> int: ...
    @property
    def count(self) -> int: ...
    @property
    def last_ended(self) -> float: ...


class Snapshot(Collector):
    """The rows, turned into metric families each time the registry is read."""

    def __init__(self, checks: Iterable[tuple[FindingKey, Finding]],
                 runs: Iterable[RunCounts], watches: Iterable[WatchCounts]) -> None:
        self.checks = list(checks)
        self.runs = list(runs)
        self.watches = list(watches)

    def collect(self) -> Iterator[Metric]:
        yield from self._checks()
        yield from self._watches()
        yield from self._runs()

    def _checks(self) -> Iterator[Metric]:
        status = GaugeMetricFamily(
            "autoops_check_status",
            "State of each watch finding: 0 ok, 1 pending (failing, not yet firing), 2 firing.",
            labels=CHECK_LABELS)
        severity = GaugeMetricFamily(
            "autoops_check_severity",
            "Severity of each pending or firing finding: 0 info, 1 warning, 2 critical.",
            labels=CHECK_LABELS)
        value = GaugeMetricFamily(
            "autoops_check_value",
            "The newest reading's number, in the check's unit (percent, load per CPU, "
            "restarts, days, seconds).", labels=CHECK_LABELS)
        for key, found in self.checks:
            labels = [label(part) for part in (key.env, key.host, key.check, key.subject)]
            status.add_metric(labels, STATUS_CODES[found.state])
            if found.state is not State.OK:
                severity.add_metric(labels, SEVERITY_CODES[found.severity])
            if found.value is not None and math.isfinite(found.value):
                value.add_metric(labels, found.value)
        yield from (status, severity, value)

    def _watches(self) -> Iterator[Metric]:
        last = GaugeMetricFamily(
            "autoops_watch_last_success_timestamp_seconds",
            "Unix time a watch run of the environment last completed, firing or not.",
            labels=("env",))
        runs = CounterMetricFamily(
            "autoops_watch_runs", "Completed watch runs, by exit status (0 ok, 5 firing).",
            labels=("env", "exit_status"))
        newest: dict[str, float] = {}
        for row in self.watches:
            runs.add_metric([label(row.env), str(row.exit_status)], row.count)
            if row.exit_status in WATCH_COMPLETED:
                newest[row.env] = max(newest.get(row.env, 0.0), row.last_ended)
        for env, at in sorted(newest.items()):
            last.add_metric([label(env)], at)
        yield from (last, runs)

    def _runs(self) -> Iterator[Metric]:
        labels = ("action", "env", "exit_status")
        total = CounterMetricFamily(
            "autoops_runs", "Guarded runs that ended (refusals too), by exit status.",
            labels=labels)
        duration = HistogramMetricFamily(
            "autoops_run_duration_seconds",
            "Seconds from a run's request to its end, waits for approval or a lock included.",
            labels=labels)
        for row in self.runs:
            values = [label(row.action), label(row.env), str(row.exit_status)]
            total.add_metric(values, row.count)
            duration.add_metric(values, cumulative(row.buckets, row.count), row.seconds)
        yield from (total, duration)


def cumulative(buckets: Mapping[str, int], count: int) -> list[tuple[str, float]]:
    """Per-bucket counts as Prometheus wants them: cumulative, ascending, ending at +Inf.

    ``+Inf`` is the row's count, so ``_count`` always equals ``autoops_runs_total``.
    """
    bounds = sorted((float(key), key) for key in buckets if float(key) != math.inf)
    out: list[tuple[str, float]] = []
    running = 0
    for _bound, key in bounds:
        running += buckets[key]
        out.append((key, float(running)))
    out.append(("+Inf", float(max(count, running))))
    return out


def label(text: str) -> str:
    """A label value the exposition can always encode (a lone surrogate would not be).

    Quotes, backslashes and line breaks need nothing here: the client escapes them.
    """
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def registry(checks: Iterable[tuple[FindingKey, Finding]], runs: Iterable[RunCounts],
             watches: Iterable[WatchCounts]) -> CollectorRegistry:
    """A private registry holding exactly these series."""
    found = CollectorRegistry(auto_describe=False)
    found.register(Snapshot(checks, runs, watches))
    return found


def exposition(found: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format (what the textfile collector reads)."""
    return generate_latest(found)
