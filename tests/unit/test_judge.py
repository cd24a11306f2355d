"""Judging watch readings on the controller, against the thresholds each host sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from autoops.watch.findings import Severity
from autoops.watch.judge import judge, judge_host

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


# -- declared checks -------------------------------------------------------------------------

HOST_NOW = AT.timestamp()


def declared(**parts: Any) -> dict[str, Any]:
    """A watch report with declarations and what the host read for them."""
    doc = report()
    doc["declared"] = {k: v[0] for k, v in parts.items()}
    doc["reading"].update({"time": HOST_NOW, **{k: v[1] for k, v in parts.items()}})
    return doc


def host_verdicts(doc: dict[str, Any], history: dict[str, Any] | None = None
                  ) -> dict[str, tuple[bool, Severity, str]]:
    judged = judge_host("staging", "web1", doc, AT, history).found
    return {f"{j.key.check}:{j.key.subject}": (j.reading.ok, j.reading.severity,
                                               j.reading.summary) for j in judged
            if j.key.check not in {"reachable", "disk", "inodes", "memory", "load"}}


def service(running: bool = True, restarts: int | None = 0, **extra: Any) -> dict[str, Any]:
    return {"name": "app", "known": True, "manager": "systemd", "running": running,
            "state": "active/running" if running else "failed/failed", "restarts": restarts,
            "marker": "1", "health": None, **extra}


def test_a_service_down_and_a_service_nobody_knows() -> None:
    found = host_verdicts(declared(services=([{"name": "app"}, {"name": "ghost"}],
                                             [service(running=False),
                                              {"name": "ghost", "known": False,
                                               "detail": "no service manager on this host "
                                                         "knows ghost: systemd is not running"}])))
    assert found["service:app"][:2] == (False, Severity.CRITICAL)
    assert "not running (systemd says failed/failed)" in found["service:app"][2]
    assert found["service:ghost"] == (False, Severity.CRITICAL, ("no service manager on this "
                                      "host knows ghost: systemd is not running"))
    assert "restarts:ghost" not in found


def test_a_restart_loop_is_seen_across_runs() -> None:
    history: dict[str, Any] = {}
    results = []
    for minute, count in enumerate([5, 6, 8, 9]):
        at = AT + timedelta(minutes=5 * minute)
        doc = declared(services=([{"name": "app", "severity": "warning"}],
                                 [service(restarts=count)]))
        judged = judge_host("staging", "web1", doc, at, history)
        history = judged.samples
        (loop,) = [j.reading for j in judged.found if j.key.check == "restarts"]
        results.append((loop.ok, loop.value))
        assert loop.severity == Severity.WARNING
    assert results == [(True, 0.0), (True, 1.0), (False, 3.0), (False, 4.0)]


def test_proxy_errors_need_enough_requests_to_be_a_spike() -> None:
    decl = [{"path": "/var/log/caddy/access.log", "min_requests": 20}]

    def read(total: int, errors: int) -> list[dict[str, Any]]:
        return [{"path": decl[0]["path"], "requests": total, "server_errors": errors,
                 "bad_gateway": errors, "window_seconds": 300, "complete": True}]

    subject = "proxy:/var/log/caddy/access.log"
    assert host_verdicts(declared(proxy_logs=(decl, read(2, 2))))[subject][0]
    assert host_verdicts(declared(proxy_logs=(decl, read(100, 3))))[subject][0]
    assert host_verdicts(declared(proxy_logs=(decl, read(100, 6))))[subject][:2] == \
        (False, Severity.WARNING)
    ok, severity, text = host_verdicts(declared(proxy_logs=(decl, read(100, 30))))[subject]
    assert (ok, severity) == (False, Severity.CRITICAL)
    assert text == ("/var/log/caddy/access.log: 30 of 100 requests in the last 5m were 5xx "
                    "(30.0%, 30 of them 502)")


def test_certificates_by_days_left() -> None:
    decl = [{"host": "127.0.0.1", "port": 443, "server_name": "shop.example"}]

    def read(days: float) -> list[dict[str, Any]]:
        return [{"endpoint": "127.0.0.1:443", "server_name": "shop.example",
                 "not_after": HOST_NOW + days * 86400}]

    assert host_verdicts(declared(tls=(decl, read(60))))["tls:127.0.0.1:443"][0]
    assert host_verdicts(declared(tls=(decl, read(10))))["tls:127.0.0.1:443"][:2] == \
        (False, Severity.WARNING)
    assert host_verdicts(declared(tls=(decl, read(3))))["tls:127.0.0.1:443"][:2] == \
        (False, Severity.CRITICAL)
    assert "expired" in host_verdicts(declared(tls=(decl, read(-1))))["tls:127.0.0.1:443"][2]
    unread = [{"endpoint": "127.0.0.1:443", "error": "cannot read the certificate: refused"}]
    assert host_verdicts(declared(tls=(decl, unread)))["tls:127.0.0.1:443"] == \
        (False, Severity.CRITICAL, "127.0.0.1:443: cannot read the certificate: refused")


def test_backups_older_than_allowed_or_none_verified() -> None:
    decl = {"dir": "/var/backups/autoops", "max_age": "26h"}
    fresh = {"count": 3, "newest_verified_at": HOST_NOW - 3600, "unverified_newer": []}
    stale = dict(fresh, newest_verified_at=HOST_NOW - 30 * 3600)
    none = {"count": 1, "newest_verified_at": None, "unverified_newer": ["b: unreadable"]}
    key = "backup:/var/backups/autoops"
    assert host_verdicts(declared(backups=(decl, fresh)))[key][0]
    assert host_verdicts(declared(backups=(decl, stale)))[key][:2] == (False, Severity.CRITICAL)
    assert "1d6h old (allowed 1d2h)" in host_verdicts(declared(backups=(decl, stale)))[key][2]
    assert "no verified backup" in host_verdicts(declared(backups=(decl, none)))[key][2]
    assert key not in host_verdicts(declared(backups=({}, None)))


def test_heartbeats_are_judged_on_the_hosts_clock() -> None:
    decl = [{"name": "nightly", "schedule": "0 3 * * *", "grace": "30m"}]
    ran = [{"name": "nightly", "exists": True, "mode": "wrapper", "exit_status": 0,
            "started": HOST_NOW - 3 * 3600, "finished": HOST_NOW - 3 * 3600 + 60}]
    assert host_verdicts(declared(heartbeats=(decl, ran)))["heartbeat:nightly"][0]
    late = [dict(ran[0], started=HOST_NOW - 30 * 3600, finished=HOST_NOW - 30 * 3600)]
    assert not host_verdicts(declared(heartbeats=(decl, late)))["heartbeat:nightly"][0]


@pytest.mark.parametrize(("parts", "where"), [
    ({"services": ([{"name": "app", "restarts": "many"}], [service()])}, "watch_services[0]"),
    ({"proxy_logs": ([{"path": "/l", "critical_percent": 400}], [{}])}, "watch_proxy_logs[0]"),
    ({"heartbeats": ([{"name": "j", "schedule": "every day"}], [{}])}, "watch_heartbeats[0]"),
    ({"tls": ([{"host": "h", "warning_days": [1]}], [{}])}, "watch_tls_endpoints[0]"),
    ({"backups": ({"dir": "/b", "max_age": "-1h"}, {})}, "watch_backups"),
])
def test_a_bad_declaration_is_a_config_finding_not_a_crash(parts: dict[str, Any],
                                                          where: str) -> None:
    found = host_verdicts(declared(**parts))
    ok, severity, text = found[f"config:{where}"]
    assert (ok, severity) == (False, Severity.WARNING)
    assert text.startswith(f"watch declaration {where}: ")


def test_alerting_patience_travels_with_the_host_and_bad_tuning_is_a_finding() -> None:
    doc = declared()
    doc["alerting"] = {"fail_after": 5, "recover_after": 2, "repeat_every": "1h",
                       "checks": {"disk": {"fail_after": 1}}}
    judgement = judge_host("staging", "web1", doc, AT)
    assert (judgement.limits.of("disk").fail_after, judgement.limits.of("load").fail_after) \
        == (1, 5)
    assert not any(j.key.check == "config" for j in judgement.found)
    doc["alerting"]["checks"] = {"disk": {"fail_after": "soon"}}
    judgement = judge_host("staging", "web1", doc, AT)
    (config,) = [j for j in judgement.found if j.key.check == "config"]
    assert config.key.subject == "alerting"
    assert "watch_check_limits.disk fail_after must be a whole number" in config.reading.summary
    assert judgement.limits.of("disk").fail_after == 5, "the environment's value, not 'soon'"
