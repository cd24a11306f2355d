"""The host-side readers of ``watch_facts``: services, access logs, heartbeats, TLS, backups."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import REPO
from tests.tls import TlsServer, certificate
from tests.unit.test_filters import _load

readers = _load(REPO / "collections/ansible_collections/autoops/ops/plugins/module_utils/"
                       "watch_readers.py", "watch_readers")

NOW = 1_800_000_000.0


class FakeRun:
    """Answers per program, and records each argv (so the tests see no shell string)."""

    def __init__(self, answers: dict[str, tuple[int, str, str] | None]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(argv)
        answer = self.answers.get(argv[0])
        if answer is None:
            raise OSError(f"{argv[0]} is not installed")
        return answer


SYSTEMD_ACTIVE = (0, "\n".join(["LoadState=loaded", "ActiveState=active", "SubState=running",
                                 "NRestarts=4", "MainPID=321"]), "")
SYSTEMD_MISSING = (0, "\n".join(["LoadState=not-found", "ActiveState=inactive", "SubState=dead",
                                  "NRestarts=0", "MainPID=0"]), "")


def test_a_systemd_unit_reports_its_state_and_restart_counter() -> None:
    run = FakeRun({"systemctl": SYSTEMD_ACTIVE})
    got = readers.read_service({"name": "caddy"}, run, True)
    assert got | {"detail": ""} == got
    assert (got["known"], got["manager"], got["running"], got["restarts"], got["marker"]) == \
        (True, "systemd", True, 4, "321")
    properties = "--property=LoadState,ActiveState,SubState,NRestarts,MainPID"
    assert run.calls == [["systemctl", "show", properties, "--", "caddy"]]


@pytest.fixture
def conf(tmp_path: Path) -> str:
    """A supervisord config file that exists (its content is supervisorctl's business)."""
    path = tmp_path / "supervisord.conf"
    path.write_text("[supervisorctl]\n")
    return str(path)


def test_auto_falls_through_to_supervisord_then_docker(conf: str) -> None:
    supervisor = (0, "app                              RUNNING   pid 77, uptime 0:01:02\n", "")
    run = FakeRun({"systemctl": SYSTEMD_MISSING, "supervisorctl": supervisor})
    got = readers.read_service({"name": "app", "supervisor_config": conf}, run, True)
    assert (got["manager"], got["running"], got["marker"], got["restarts"]) == \
        ("supervisord", True, "77", None)
    state = json.dumps({"Status": "running", "Restarting": False, "StartedAt": "t1",
                        "Health": {"Status": "unhealthy"}})
    docker = (0, f"{state}|7\n", "")
    run = FakeRun({"systemctl": SYSTEMD_MISSING, "supervisorctl": (4, "", "refused"),
                   "docker": docker})
    got = readers.read_service({"name": "app", "supervisor_config": conf}, run, True)
    assert (got["manager"], got["restarts"], got["health"]) == ("docker", 7, "unhealthy")


def test_supervisord_backoff_is_not_running(conf: str) -> None:
    line = "app                              BACKOFF   Exited too quickly (log may say why)"
    status = (3, line + "\n", "")
    got = readers.read_service({"name": "app", "manager": "supervisord",
                                "supervisor_config": conf}, FakeRun({"supervisorctl": status}),
                               False)
    assert (got["known"], got["running"], got["state"]) == (True, False, "BACKOFF")


def test_nobody_knowing_a_service_says_why_in_plain_words(conf: str, tmp_path: Path) -> None:
    missing = str(tmp_path / "none.conf")
    got = readers.read_service({"name": "autoops-demo", "supervisor_config": missing},
                               FakeRun({}), False)
    assert not got["known"]
    assert got["detail"] == ("no service manager on this host knows autoops-demo: systemd is "
                             f"not running; supervisord is not set up (no {missing}); Docker "
                             "is not installed")
    got = readers.read_service({"name": "autoops-demo", "supervisor_config": conf},
                               FakeRun({}), False)
    assert "supervisord is not installed; Docker is not installed" in got["detail"]
    other = "web                              STOPPED   Not started\n"
    got = readers.read_service({"name": "app", "supervisor_config": conf}, FakeRun(
        {"supervisorctl": (3, other, ""),
         "docker": (1, "", "Error: No such container: app")}), False)
    assert "supervisord has no program app; Docker has no container app" in got["detail"]
    refused = "unix:///var/run/supervisor.sock no such file"
    got = readers.read_service({"name": "app", "manager": "supervisord",
                                "supervisor_config": conf},
                               FakeRun({"supervisorctl": (4, refused, "")}), False)
    assert got["detail"].endswith(f"supervisord is not running ({refused})")


def test_supervisord_is_asked_once_for_every_program_of_a_reading(conf: str) -> None:
    listing = ("app                              RUNNING   pid 77, uptime 0:01:02\n"
               "worker                           FATAL     Exited too quickly\n")
    run = FakeRun({"supervisorctl": (3, listing, "")})
    asked: dict[str, Any] = {}
    got = [readers.read_service({"name": name, "manager": "supervisord",
                                 "supervisor_config": conf}, run, False, asked)
           for name in ("app", "worker", "gone")]
    assert [(g["known"], g["state"]) for g in got] == [(True, "RUNNING"), (True, "FATAL"),
                                                        (False, None)]
    assert run.calls == [["supervisorctl", "-c", conf, "status"]]


@pytest.mark.parametrize(("text", "expected"), [
    ("[supervisorctl]\nserverurl=unix:///var/run/supervisor.sock ; use a unix:// URL\n",
     "/var/run/supervisor.sock"),  # Debian's default, comment included
    ("[unix_http_server]\nfile=%(here)s/s.sock\n", "HERE/s.sock"),
    ("[unix_http_server]\nfile=/run/a.sock\n[supervisorctl]\nserverurl=unix:///run/b.sock\n",
     "/run/b.sock"),  # what supervisorctl uses wins
    ("[supervisorctl]\nserverurl=http://127.0.0.1:9001\n", None),  # not ours to ask
    ("[supervisorctl]\n", None),
    ("not an ini file", None),
])
def test_the_socket_is_the_one_supervisorctl_would_use(tmp_path: Path, text: str,
                                                       expected: str | None) -> None:
    conf = tmp_path / "supervisord.conf"
    conf.write_text(text)
    want = expected.replace("HERE", str(tmp_path)) if expected else None
    assert readers.supervisor_socket(str(conf)) == want


@pytest.mark.parametrize("name", ["a b", "$(reboot)", "-x", "", "a" * 65, "x;y"])
def test_a_hostile_service_name_runs_nothing(name: str) -> None:
    run = FakeRun({"systemctl": SYSTEMD_ACTIVE})
    got = readers.read_service({"name": name}, run, True)
    assert not got["known"]
    assert run.calls == []


def log_line(ts: Any, status: Any) -> str:
    return json.dumps({"level": "info", "ts": ts, "logger": "http.log.access.log0",
                       "msg": "handled request", "status": status, "duration": 0.01})


def test_the_access_log_counts_only_the_window(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    lines = [log_line(NOW - 900, 502)] * 50  # older than the window: not counted
    lines += [log_line(NOW - 200 + i, 502 if i % 4 == 0 else 200) for i in range(40)]
    lines += ["not json", log_line(NOW - 10, "oops"), "", log_line("2027-01-15T08:00:00Z", 503)]
    log.write_text("\n".join(lines) + "\n")
    got = readers.read_access_log({"path": str(log), "window_minutes": 5}, NOW)
    assert (got["requests"], got["server_errors"], got["bad_gateway"], got["complete"]) == \
        (41, 11, 10, True)


def test_iso_timestamps_and_zones() -> None:
    assert readers._timestamp("2027-01-15T08:00:00Z") == 1_800_000_000.0
    assert readers._timestamp("2027-01-15T09:00:00.5+01:00") == 1_800_000_000.5
    assert readers._timestamp("1800000000.25") == 1_800_000_000.25
    assert readers._timestamp(True) is None
    assert readers._timestamp("yesterday") is None


def test_a_huge_log_costs_at_most_its_budget(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("\n".join(log_line(NOW - 1, 200) for _ in range(20000)) + "\n")
    got = readers.read_access_log({"path": str(log), "max_bytes": 65536}, NOW)
    assert not got["complete"]
    assert 0 < got["requests"] < 20000


def test_an_unreadable_log_is_reported(tmp_path: Path) -> None:
    got = readers.read_access_log({"path": str(tmp_path / "none.log")}, NOW)
    assert "cannot read" in got["error"]
    assert readers.read_access_log({"path": "relative.log"}, NOW)["error"]


@given(st.lists(st.text(alphabet="ab\n{}\"", max_size=30), max_size=40),
       st.integers(min_value=1, max_value=5000))
def test_tail_lines_sees_lines_once_newest_first(chunks: list[str], budget: int) -> None:
    """Every line once, newest first; a budget stops early but never garbles a line."""
    text = "".join(chunks)
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"tail-{os.getpid()}-{threading.get_ident()}"
    path.write_bytes(text.encode())
    try:
        seen: list[bytes] = []

        def visit(line: bytes) -> bool:
            seen.append(line)
            return False

        complete = readers.tail_lines(str(path), visit, budget)
    finally:
        path.unlink()
    every = [line for line in reversed(text.encode().split(b"\n")) if line.strip()]
    assert seen == (every if complete else every[:len(seen)])


def test_heartbeat_records_and_touched_files(tmp_path: Path) -> None:
    (tmp_path / "nightly.json").write_text(json.dumps(
        {"started": NOW, "finished": NOW + 3, "exit_status": 0, "starts": [NOW],
         "last_success": NOW + 3, "comment": "not passed on"}))
    got = readers.read_heartbeat({"name": "nightly"}, str(tmp_path))
    assert got["exists"]
    assert got["exit_status"] == 0
    assert "comment" not in got
    assert not readers.read_heartbeat({"name": "other"}, str(tmp_path))["exists"]
    touched = tmp_path / "done"
    touched.write_text("")
    os.utime(touched, (NOW, NOW))
    got = readers.read_heartbeat({"name": "sync", "file": str(touched)}, str(tmp_path))
    assert (got["mode"], got["last_success"]) == ("file", NOW)
    assert readers.read_heartbeat({"name": "../etc/passwd"}, str(tmp_path))["error"]


@pytest.mark.parametrize("year", [2027, 2049, 2050, 2099])  # UTCTime, then GeneralizedTime
def test_der_not_after(year: int) -> None:
    ends = dt.datetime(year, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    pem, _key = certificate(ends)
    der = ssl.PEM_cert_to_DER_cert(pem.decode())
    assert readers.der_not_after(der) == ends.timestamp()
    with pytest.raises((ValueError, IndexError)):
        readers.der_not_after(der[:40])


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, dt.datetime]]:
    """A real TLS endpoint on loopback whose certificate has already expired."""
    ends = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
    with TlsServer(tmp_path, ends) as port:
        yield port, ends


def test_a_certificate_is_read_even_when_expired(tls_server: tuple[int, dt.datetime]) -> None:
    port, ends = tls_server
    got = readers.read_certificate({"host": "127.0.0.1", "port": port,
                                    "server_name": "watch.test"})
    assert got["error"] is None
    assert got["not_after"] == ends.timestamp()
    assert got["endpoint"] == f"127.0.0.1:{port}"


def test_a_closed_port_is_an_error_not_a_crash() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    got = readers.read_certificate({"host": "127.0.0.1", "port": port}, timeout=2)
    assert got["not_after"] is None
    assert "cannot read the certificate" in got["error"]


def backup(directory: Path, stem: str, mtime: float, *, corrupt: bool = False) -> None:
    archive = directory / f"{stem}.tar.gz"
    archive.write_bytes(b"archive " + stem.encode())
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    (directory / f"{stem}.tar.gz.sha256").write_text(f"{digest}  {archive.name}\n")
    manifest = directory / f"{stem}.manifest.json"
    size = archive.stat().st_size + (1 if corrupt else 0)
    manifest.write_text(json.dumps({"archive": archive.name, "sha256": digest, "bytes": size}))
    os.utime(manifest, (mtime, mtime))


def test_the_newest_verified_backup_wins(tmp_path: Path) -> None:
    backup(tmp_path, "backup-a", NOW - 7200)
    backup(tmp_path, "backup-b", NOW - 60, corrupt=True)
    got = readers.read_backups({"dir": str(tmp_path)})
    assert (got["count"], got["newest_verified"], got["newest_verified_at"]) == \
        (2, "backup-a.manifest.json", NOW - 7200)
    why = "the archive's size differs from its manifest"
    assert got["unverified_newer"] == [f"backup-b.manifest.json: {why}"]
    assert readers.read_backups({"dir": str(tmp_path / "none")})["error"]
