"""The audit witness against a real rsyslogd: every durable record arrives, and tampering shows.

rsyslogd runs in the foreground with its own config, pid file and work directory under
tmp_path, listening on loopback UDP and TCP and on a private unix socket; the system's
syslog (and /dev/log) is never touched.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from autoops.audit.log import record_hash
from autoops.audit.witness import WitnessEntry, read_witness
from autoops.exits import ExitStatus
from autoops.settings import Settings
from tests.conftest import needs, run_cli
from tests.integration.conftest import records, wait_for

RSYSLOGD = Path("/usr/sbin/rsyslogd")

pytestmark = needs(RSYSLOGD.exists(), "needs rsyslogd (Debian: rsyslog)")


def free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Rsyslog:
    """A private rsyslogd and where it listens and writes."""

    proc: subprocess.Popen[bytes]
    base: Path
    socket: Path
    udp_port: int
    tcp_port: int
    output: Path

    def url(self, scheme: str) -> str:
        if scheme == "unix":
            return f"unix://{self.socket}"
        return f"{scheme}://127.0.0.1:{self.udp_port if scheme == 'udp' else self.tcp_port}"

    def entries(self) -> list[WitnessEntry]:
        return read_witness(self.output) if self.output.exists() else []

    def log(self) -> str:
        path = self.base / "rsyslogd.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)


def _probe(target: Rsyslog, scheme: str, text: str) -> None:
    """A non-autoops message (the witness parser must ignore it)."""
    message = f"<13>1 - probe - - - - {text}".encode()
    if scheme == "udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(message, ("127.0.0.1", target.udp_port))
    elif scheme == "tcp":
        with socket.create_connection(("127.0.0.1", target.tcp_port), timeout=5) as sock:
            sock.sendall(f"{len(message)} ".encode() + message)
    else:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message, str(target.socket))


def _delivered(target: Rsyslog, scheme: str, text: str) -> bool:
    """Probe once more and say whether an earlier probe has been written out."""
    if target.proc.poll() is not None:
        raise AssertionError(f"rsyslogd exited with {target.proc.returncode}: {target.log()}")
    if target.output.exists() and text in target.output.read_text(errors="replace"):
        return True
    try:
        _probe(target, scheme, text)
    except OSError:  # not listening yet
        return False
    return False


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    base = tmp_path / "rsyslog"
    work = base / "work"
    work.mkdir(parents=True)
    # sun_path holds 108 bytes and tmp_path can be longer: the socket gets a short directory.
    sockdir = Path(tempfile.mkdtemp(prefix="aow-"))
    udp_port, tcp_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    conf = base / "rsyslog.conf"
    output = base / "witness.log"
    conf.write_text(textwrap.dedent(f"""\
        global(workDirectory="{work}")
        module(load="imuxsock" SysSock.Use="off")
        module(load="imudp")
        module(load="imtcp")
        input(type="imuxsock" Socket="{sockdir}/log.sock" UseSpecialParser="off"
              ParseHostname="on" RateLimit.Interval="0")
        input(type="imudp" address="127.0.0.1" port="{udp_port}")
        input(type="imtcp" address="127.0.0.1" port="{tcp_port}")
        *.* action(type="omfile" file="{output}" template="RSYSLOG_SyslogProtocol23Format")
        """))
    with (base / "rsyslogd.out").open("wb") as out:
        proc = subprocess.Popen([str(RSYSLOGD), "-n", "-f", str(conf), "-i",
                                 str(base / "rsyslogd.pid")],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    target = Rsyslog(proc, base, sockdir / "log.sock", udp_port, tcp_port, output)
    try:
        for scheme in ("unix", "udp", "tcp"):
            wait_for(functools.partial(_delivered, target, scheme, f"ready-{scheme}"),
                     timeout=60, what=f"rsyslogd to take {scheme} messages")
        yield target
    finally:
        target.stop()
        shutil.rmtree(sockdir, ignore_errors=True)


def witnessed(settings: Settings, scheme: str, target: Rsyslog) -> Settings:
    return dataclasses.replace(settings, witness=target.url(scheme))


def durable(settings: Settings) -> list[WitnessEntry]:
    """What the witness must hold: every durable record (all but task results)."""
    return [WitnessEntry.of_record(r) for r in records(settings) if r["type"] != "task.result"]


def wait_witnessed(target: Rsyslog, expected: list[WitnessEntry]) -> list[WitnessEntry]:
    wait_for(lambda: {e.seq for e in expected} <= {e.seq for e in target.entries()}, timeout=60,
             what="rsyslogd to write every witnessed record")
    return target.entries()


def verify(settings: Settings, *extra: str) -> tuple[int, dict[str, Any], str]:
    result = run_cli(settings, "audit", "verify", "--json", *extra)
    return result.status, json.loads(result.out), result.err  # exactly one JSON document


def rewrite(settings: Settings, kept: list[dict[str, Any]]) -> None:
    """Renumber, re-chain and re-hash ``kept`` and move state.db's anchor to match.

    All of it is within reach of whoever can write the state directory.
    """
    prev = "0" * 64
    for seq, rec in enumerate(kept, start=1):
        rec.update(seq=seq, prev=prev)
        rec["hash"] = prev = record_hash(rec)
    settings.audit_path.write_text("".join(
        json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
        for r in kept))
    with sqlite3.connect(settings.db_path) as db:
        db.execute("UPDATE audit_anchor SET seq=?, hash=? WHERE id=1",
                   (kept[-1]["seq"], kept[-1]["hash"]))
    db.close()


@pytest.mark.parametrize("scheme", ["unix", "udp", "tcp"])
def test_every_durable_record_reaches_the_witness(settings: Settings, rsyslog: Rsyslog,
                                                  scheme: str) -> None:
    settings = witnessed(settings, scheme, rsyslog)
    result = run_cli(settings, "run", "health", "--env", "local")
    assert result.status == ExitStatus.OK, result.err
    expected = durable(settings)
    assert [e.type for e in expected] == ["run.requested", "run.decision", "run.started",
                                          "run.finished"]
    found = wait_witnessed(rsyslog, expected)
    assert [e for e in found if e.seq in {x.seq for x in expected}] == expected
    assert "ready-" in rsyslog.output.read_text()  # other lines are there, and ignored
    status, doc, _ = verify(settings, "--witness", str(rsyslog.output))
    assert status == ExitStatus.OK, doc
    assert doc["witness"] == {"entries": len(expected), "through": expected[-1].seq}
    text = run_cli(settings, "audit", "verify", "--witness", str(rsyslog.output))
    assert "witness agrees: 4 entries" in text.out


def test_a_cut_run_passes_plain_verify_but_not_the_witness(settings: Settings,
                                                           rsyslog: Rsyslog) -> None:
    settings = witnessed(settings, "tcp", rsyslog)
    for _ in range(2):
        assert run_cli(settings, "run", "health", "--env", "local").status == ExitStatus.OK
    wait_witnessed(rsyslog, durable(settings))
    recs = records(settings)
    last_run = recs[-1]["run_id"]
    kept = [r for r in recs if r["run_id"] != last_run]
    first_cut = len(kept) + 1
    lines = settings.audit_path.read_text().splitlines(keepends=True)
    settings.audit_path.write_text("".join(lines[:len(kept)]))  # the records stay as written
    with sqlite3.connect(settings.db_path) as db:
        db.execute("UPDATE audit_anchor SET seq=?, hash=? WHERE id=1",
                   (kept[-1]["seq"], kept[-1]["hash"]))
    db.close()

    status, doc, _ = verify(settings)
    assert status == ExitStatus.OK, doc  # the anchor was moved to match: plain verify is fooled
    status, doc, err = verify(settings, "--witness", str(rsyslog.output))
    assert status == ExitStatus.INTERNAL_ERROR
    assert doc["ok"] is False
    assert doc["first_bad_seq"] == first_cut
    assert doc["problem"].startswith(f"records {first_cut}..{len(recs)} are missing")
    assert f"run {last_run}" in doc["problem"]
    assert f"audit log BROKEN at seq {first_cut}" in err


def test_rewritten_history_is_caught(settings: Settings, rsyslog: Rsyslog) -> None:
    settings = witnessed(settings, "unix", rsyslog)
    for _ in range(2):
        assert run_cli(settings, "run", "health", "--env", "local").status == ExitStatus.OK
    wait_witnessed(rsyslog, durable(settings))
    recs = records(settings)
    for rec in recs:
        if rec["run_id"] == recs[0]["run_id"]:
            rec["actor"] = "mallory"  # someone else did it
    rewrite(settings, recs)
    assert verify(settings)[0] == ExitStatus.OK  # a consistent chain, anchor moved to match
    status, doc, _ = verify(settings, "--witness", str(rsyslog.output))
    assert status == ExitStatus.INTERNAL_ERROR
    assert doc["first_bad_seq"] == 1
    assert "differs from the witness" in doc["problem"]


def test_a_record_deleted_in_the_middle_is_caught(settings: Settings, rsyslog: Rsyslog) -> None:
    settings = witnessed(settings, "udp", rsyslog)
    for _ in range(2):
        assert run_cli(settings, "run", "health", "--env", "local").status == ExitStatus.OK
    entries = wait_witnessed(rsyslog, durable(settings))
    recs = records(settings)
    gone = next(r for r in recs if r["type"] == "task.result")  # never witnessed by itself
    rewrite(settings, [r for r in recs if r is not gone])
    assert verify(settings)[0] == ExitStatus.OK
    status, doc, _ = verify(settings, "--witness", str(rsyslog.output))
    assert status == ExitStatus.INTERNAL_ERROR
    assert doc["first_bad_seq"] == min(e.seq for e in entries if e.seq >= gone["seq"])
    assert "differs from the witness" in doc["problem"]


@pytest.mark.parametrize("scheme", ["unix", "tcp"])
def test_a_witness_that_is_down_stops_the_run(settings: Settings, rsyslog: Rsyslog,
                                              tmp_path: Path, scheme: str) -> None:
    settings = witnessed(settings, scheme, rsyslog)
    assert run_cli(settings, "run", "health", "--env", "local").status == ExitStatus.OK
    rsyslog.stop()
    dest = tmp_path / "echoed"
    result = run_cli(settings, "run", "test-echo", "--env", "local", "-p", "text=hello",
                     "-p", f"dest={dest}")
    assert result.status == ExitStatus.INTERNAL_ERROR, result.out + result.err
    assert "AUTOOPS-AUDIT-BROKEN" in result.err
    assert "audit witness" in result.err
    assert not dest.exists()
    assert not list(tmp_path.glob("echoed*"))
    refused = [r for r in records(settings) if r["action"] == "test-echo"]
    assert [r["type"] for r in refused] == ["run.requested"]  # recorded locally, then stopped
    assert verify(dataclasses.replace(settings, witness=None))[0] == ExitStatus.OK
