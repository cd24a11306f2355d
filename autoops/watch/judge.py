"""Judging a host's watch reading against its thresholds, on the controller.

The ``watch`` role brings back one reading per host, the thresholds its inventory
vars set and what else it declares (services, proxy logs, heartbeats, TLS endpoints,
backups); this turns them into one :class:`Reading` per check and subject (each
mount's space and inodes, memory, load, each declaration), and a host that sent
nothing into a critical ``reachable`` finding: silence from a host is news.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from autoops.watch import checks, limits
from autoops.watch.findings import FindingKey, Reading, Severity
from autoops.watch.restarts import Sample


@dataclass(frozen=True)
class Judged:
    key: FindingKey
    reading: Reading


@dataclass
class Judgement:
    found: list[Judged]
    samples: dict[str, list[Sample]] = field(default_factory=dict)  # to remember, by service
    limits: limits.Limits = field(default_factory=limits.Limits)  # how patient alerting is


def judge_host(env: str, host: str, report: Mapping[str, Any] | None, at: datetime,
               history: checks.History | None = None) -> Judgement:
    """:func:`judge`, then every declared check; ``history`` holds the restart samples."""
    found = judge(env, host, report, at)
    if not report or report.get("kind") != "watch":
        return Judgement(found)
    reading, declared = report["reading"], report.get("declared") or {}
    stamp = reading.get("time")
    host_now = datetime.fromtimestamp(float(stamp), UTC) if isinstance(stamp, (int, float)) \
        else at  # the host's own clock: its file times and certificates are on it
    out = checks.Verdicts(env, host, at)
    patience = limits.parse(report.get("alerting"))
    for problem in patience.problems:
        out.misconfigured("alerting", problem)
    checks.services(out, declared.get("services"), reading.get("services"), history or {})
    checks.proxy_logs(out, declared.get("proxy_logs"), reading.get("proxy_logs"))
    checks.heartbeat_jobs(out, declared.get("heartbeats"), reading.get("heartbeats"), host_now)
    checks.certificates(out, declared.get("tls"), reading.get("tls"), host_now)
    checks.backups(out, declared.get("backups"), reading.get("backups"), host_now)
    return Judgement(found + [Judged(key, value) for key, value in out.found], out.samples,
                     patience)


def judge(env: str, host: str, report: Mapping[str, Any] | None, at: datetime) -> list[Judged]:
    """Every built-in check this host's report allows, good or bad; no report is one finding."""
    if not report or report.get("kind") != "watch":
        return [Judged(FindingKey(env, host, "reachable"),
                       Reading(False, at, Severity.CRITICAL,
                               "no reading: the host was unreachable or the check failed"))]
    reading, limits = report["reading"], report["thresholds"]
    found = [Judged(FindingKey(env, host, "reachable"), Reading(True, at))]
    for mount in reading.get("mounts", []):
        name = str(mount["mount"])
        found.append(_level(FindingKey(env, host, "disk", name), at, mount["used_percent"],
                            limits["disk"], f"{name} is {{value:.1f}}% full"))
        if mount.get("inodes_used_percent") is not None:
            found.append(_level(FindingKey(env, host, "inodes", name), at,
                                mount["inodes_used_percent"], limits["inode"],
                                f"inodes on {name} are {{value:.1f}}% used"))
    found.append(_level(FindingKey(env, host, "memory"), at, reading["memory"]["used_percent"],
                        limits["memory"], "memory is {value:.1f}% used"))
    per_cpu = float(reading["load"][1]) / max(int(reading["cpus"]), 1)
    found.append(_level(FindingKey(env, host, "load"), at, per_cpu, limits["load"],
                        "5-minute load is {value:.2f} per CPU"))
    return found


def _level(key: FindingKey, at: datetime, value: float, limits: list[Any],
           text: str) -> Judged:
    warning, critical = float(limits[0]), float(limits[1])
    summary = text.format(value=float(value)) + f" (warning at {warning:g}, critical at " \
                                                f"{critical:g})"
    if value >= critical:
        return Judged(key, Reading(False, at, Severity.CRITICAL, summary, float(value)))
    if value >= warning:
        return Judged(key, Reading(False, at, Severity.WARNING, summary, float(value)))
    return Judged(key, Reading(True, at, Severity.WARNING, summary, float(value)))
