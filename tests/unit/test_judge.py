"""Judging watch readings on the controller, against the thresholds each host sent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from autoops.watch.findings import Severity
from autoops.watch.judge import judge

AT = datetime(2026, 12, 2, tzinfo=UTC)


def report(disk: float = 40.0, inodes: float | None = 10.0, memory: float = 50.0,
           load: float = 1.0, cpus: int = 2) -> dict[str, Any]:
    return {"kind": "watch", "thresholds": {"disk": [85, 95], "inode": [85, 95],
                                            "memory": [90, 97], "load": [2.0, 4.0]},
            "reading": {"mounts": [{"mount": "/", "used_percent": 20.0,
                                    "inodes_used_percent": 5.0},
                                   {"mount": "/var", "used_percent": disk,
                                    "inodes_used_percent": inodes}],
                        "memory": {"used_percent": memory}, "load": [0.5, load, 0.5],
                        "cpus": cpus}}


def verdicts(doc: dict[str, Any] | None) -> dict[str, tuple[bool, Severity]]:
    return {f"{j.key.check}:{j.key.subject}": (j.reading.ok, j.reading.severity)
            for j in judge("staging", "web1", doc, AT)}


def test_a_healthy_host_gives_one_good_reading_per_check_and_subject() -> None:
    found = verdicts(report())
    assert set(found) == {"reachable:", "disk:/", "disk:/var", "inodes:/", "inodes:/var",
                          "memory:", "load:"}
    assert all(ok for ok, _ in found.values())


@pytest.mark.parametrize(("kwargs", "check", "severity"), [
    ({"disk": 85.0}, "disk:/var", Severity.WARNING),
    ({"disk": 96.5}, "disk:/var", Severity.CRITICAL),
    ({"inodes": 99.0}, "inodes:/var", Severity.CRITICAL),
    ({"memory": 91.0}, "memory:", Severity.WARNING),
    ({"load": 9.0, "cpus": 2}, "load:", Severity.CRITICAL),  # 4.5 per CPU
])
def test_thresholds_make_warnings_and_criticals(kwargs: dict[str, Any], check: str,
                                                severity: Severity) -> None:
    found = verdicts(report(**kwargs))
    assert found[check] == (False, severity)
    assert sum(not ok for ok, _ in found.values()) == 1


def test_a_host_that_sent_nothing_is_critical_news() -> None:
    assert verdicts(None) == {"reachable:": (False, Severity.CRITICAL)}
    assert verdicts({"kind": "health"}) == {"reachable:": (False, Severity.CRITICAL)}


def test_a_mount_without_inode_counts_is_not_judged_on_inodes() -> None:
    assert "inodes:/var" not in verdicts(report(inodes=None))


def test_the_summary_says_the_value_and_the_thresholds() -> None:
    (var,) = [j for j in judge("staging", "web1", report(disk=96.54), AT)
              if j.key.subject == "/var" and j.key.check == "disk"]
    assert var.reading.summary == "/var is 96.5% full (warning at 85, critical at 95)"
