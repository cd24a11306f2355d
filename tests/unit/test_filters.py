from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import REPO


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


filters = _load(REPO / "filter_plugins" / "autoops_filters.py", "autoops_filters")


def backups(stamps: list[int]) -> list[dict[str, Any]]:
    return [{"path": f"/b/backup-h-2026{s:010d}Z-x.tar.gz", "mtime": float(s)} for s in stamps]


def test_prune_keeps_the_newest() -> None:
    files = backups([3, 1, 2, 5, 4])
    assert filters.autoops_prune_candidates(files, 2) == [
        "/b/backup-h-20260000000003Z-x.tar.gz", "/b/backup-h-20260000000002Z-x.tar.gz",
        "/b/backup-h-20260000000001Z-x.tar.gz"]


@pytest.mark.parametrize("keep", [0, -1, True, "2", 1.5])
def test_prune_refuses_to_keep_nothing(keep: Any) -> None:
    with pytest.raises(filters.PruneError):
        filters.autoops_prune_candidates(backups([1, 2]), keep)


@given(st.lists(st.integers(min_value=0, max_value=10**9), unique=True, max_size=40),
       st.integers(min_value=1, max_value=50))
def test_prune_never_deletes_the_newest_and_keeps_exactly_n(stamps: list[int], keep: int) -> None:
    files = backups(stamps)
    doomed = filters.autoops_prune_candidates(files, keep)
    assert len(doomed) == max(len(files) - keep, 0)
    if stamps:
        newest = max(files, key=lambda f: f["path"])["path"]
        assert newest not in doomed
        survivors = sorted({f["path"] for f in files} - set(doomed))
        assert all(d < min(survivors) for d in doomed)


@pytest.mark.parametrize(("line", "state", "pid", "running"), [
    ("autoops-demo                     RUNNING   pid 4242, uptime 0:00:05", "RUNNING", 4242, True),
    ("autoops-demo                     RUNNING   pid 7, uptime 2 days, 3:04:05", "RUNNING", 7, True),
    ("autoops-demo                     STOPPED   Nov 22 08:00 AM", "STOPPED", None, False),
    ("autoops-demo                     FATAL     Exited too quickly", "FATAL", None, False),
    ("autoops-demo: ERROR (no such process)", "UNKNOWN", None, False),
    ("", "UNKNOWN", None, False),
])
def test_supervisor_status(line: str, state: str, pid: int | None, running: bool) -> None:
    parsed = filters.autoops_supervisor_status(line)
    assert (parsed["state"], parsed["pid"], parsed["running"]) == (state, pid, running)


@pytest.mark.parametrize(("result", "said"), [
    ({"rc": 0, "stdout": "app RUNNING pid 1, uptime 0:01:00"}, ""),
    ({"rc": 3, "stdout": "app STOPPED Nov 22 08:00 AM"}, ""),
    ({"rc": 2, "msg": "[Errno 2] No such file or directory: b'supervisorctl'"},
     "supervisord is not installed on this host (no supervisorctl)"),
    ({"rc": 2, "stdout": "Error: could not find config file /etc/s.conf\nFor help, use …"},
     "supervisord is not set up on this host: no config file /etc/s.conf"),
    ({"rc": 4, "stdout": "app: ERROR (no such process)"},
     "supervisord has no program app (config /etc/s.conf)"),
    ({"rc": 4, "stdout": "unix:///run/supervisor.sock no such file"},
     "supervisord is not running on this host (unix:///run/supervisor.sock no such file)"),
    ({"rc": 7, "stderr": ""}, "supervisorctl failed with exit status 7: no output"),
])
def test_supervisor_problem_in_plain_words(result: dict[str, Any], said: str) -> None:
    assert filters.autoops_supervisor_problem(result, "app", "/etc/s.conf") == said


def test_systemd_show() -> None:
    out = "LoadState=loaded\nActiveState=active\nSubState=running\nMainPID=812\n" \
          "ActiveEnterTimestamp=Sun 2026-11-22 08:00:00 UTC\n"
    parsed = filters.autoops_systemd_show(out)
    assert parsed == {"state": "active/running", "pid": 812, "running": True,
                      "detail": "Sun 2026-11-22 08:00:00 UTC"}
    stopped = filters.autoops_systemd_show("ActiveState=inactive\nSubState=dead\nMainPID=0\n")
    assert stopped["running"] is False
    assert stopped["pid"] is None


def test_du_top() -> None:
    out = "12\t/var/log\n400\t/var/lib\n3\t/var/tmp\n415\t/var\n"
    assert filters.autoops_du_top(out, 2, "/var") == [
        {"path": "/var/lib", "kib": 400}, {"path": "/var/log", "kib": 12}]
    assert filters.autoops_du_top("du: cannot read\n", 5, "/") == []


def test_du_top_keeps_names_with_line_breaks_whole() -> None:
    forged = "4\t/var/a\n999999\t/etc\08\t/var/b\00012\t/var\0"
    assert filters.autoops_du_top(forged, 5, "/var") == [
        {"path": "/var/b", "kib": 8}, {"path": "/var/a\n999999\t/etc", "kib": 4}]


def test_filter_module_registers_every_filter() -> None:
    registered = filters.FilterModule().filters()
    assert set(registered) == {n for n in dir(filters) if n.startswith("autoops_")}


def _watch(disk: float = 40.0, running: bool = True, proxy_5xx: bool = False) -> dict[str, Any]:
    return {"kind": "watch", "thresholds": {"disk": [85, 95], "inode": [85, 95],
                                            "memory": [90, 97], "load": [2.0, 4.0]},
            "reading": {"mounts": [{"mount": "/var", "used_percent": disk}],
                        "memory": {"used_percent": 10.0}, "load": [0.1, 0.1, 0.1], "cpus": 2,
                        "services": [{"known": True, "running": running, "state": "EXITED"
                                      if not running else "RUNNING", "manager": "supervisord"}],
                        "proxy_logs": [{"requests": 100, "errors": 90 if proxy_5xx else 0}]},
            "declared": {"services": [{"name": "cache"}], "proxy_logs": [{"path": "/log"}]}}


def test_new_criticals_are_those_the_switch_brought() -> None:
    new = filters.autoops_new_criticals
    assert new(_watch(), _watch(), "staging", "web1") == []
    assert new(_watch(running=False), _watch(), "staging", "web1") == [
        "service cache: cache is not running (supervisord says EXITED)"]
    assert new(_watch(disk=99.0), _watch(disk=99.0), "staging", "web1") == [], \
        "a disk that was full before the deploy is not the deploy's doing"
    assert new(_watch(disk=99.0), _watch(), "staging", "web1")[0].startswith("disk /var")
    assert new(_watch(proxy_5xx=True), _watch(), "staging", "web1") == [], \
        "the proxy's error share is the probe's business"
    assert new({}, _watch(), "staging", "web1") == []
