"""Judging a host's watch reading against its thresholds, on the controller.

The ``watch`` role brings back one reading per host and the thresholds its inventory
vars set; this turns them into one :class:`Reading` per check and subject (each
mount's space and inodes, memory, load), and a host that sent nothing into a critical
``reachable`` finding: silence from a host is news.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from autoops.watch.findings import FindingKey, Reading, Severity


@dataclass(frozen=True)
class Judged:
    key: FindingKey
    reading: Reading


def judge(env: str, host: str, report: Mapping[str, Any] | None, at: datetime) -> list[Judged]:
    """Every check this host's report allows, good or bad; a missing report is one finding."""
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
        return Judged(key, Reading(False, at, Severity.CRITICAL, summary))
    if value >= warning:
        return Judged(key, Reading(False, at, Severity.WARNING, summary))
    return Judged(key, Reading(True, at, Severity.WARNING, summary))
