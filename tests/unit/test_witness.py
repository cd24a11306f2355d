"""The audit witness: RFC 5424 messages, their parser, delivery over real sockets, tampering."""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoops.audit.log import AuditLog, record_hash
from autoops.audit.witness import (
    SD_ID,
    Target,
    Witness,
    WitnessEntry,
    escape_param,
    format_message,
    parse_line,
    read_witness,
)
from autoops.errors import AuditBrokenError, BadInputError
from autoops.state.db import StateDB

HASH = "ab" * 32
TYPES = ["run.requested", "run.decision", "run.started", "task.result", "run.finished"]


@pytest.fixture
def sockdir() -> Iterator[Path]:
    """A short directory for unix sockets (sun_path holds 108 bytes; tmp_path may be longer)."""
    path = Path(tempfile.mkdtemp(prefix="aow-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Collector:
    """A real unix datagram receiver: what a witness sent is queued in it when send returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.lines: list[str] = []

    def entries(self) -> list[WitnessEntry]:
        while True:
            try:
                self.lines.append(self.sock.recv(65536).decode())
            except BlockingIOError:
                break
        found = [parse_line(line, n) for n, line in enumerate(self.lines, start=1)]
        return [e for e in found if e is not None]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def collector(sockdir: Path) -> Iterator[Collector]:
    receiver = Collector(sockdir / "witness.sock")
    try:
        yield receiver
    finally:
        receiver.close()


def make_log(tmp_path: Path, witness: Witness | None = None) -> AuditLog:
    return AuditLog(tmp_path / "audit" / "audit.jsonl", StateDB(tmp_path / "state.db"),
                    witness=witness)


def fill(log: AuditLog, count: int, run_id: str = "r1", actor: str = "alice") -> None:
    """Runs as the engine writes them: task results are the only records that are not durable."""
    for i in range(count):
        type_ = TYPES[i % len(TYPES)]
        log.append(run_id=run_id, type_=type_, actor=actor, env="local", action="health",
                   data={"i": i}, durable=type_ != "task.result")


def witnessed(log: AuditLog) -> list[WitnessEntry]:
    """What a witness holds for ``log``: the chain facts of every durable record."""
    return [WitnessEntry.of_record(r) for r in log.records() if r["type"] != "task.result"]


def rewrite(log: AuditLog, records: list[dict[str, Any]]) -> None:
    """Renumber, re-chain and re-hash ``records``, write them and move the anchor to match.

    This is everything someone who can write the state directory can do.
    """
    prev = "0" * 64
    for seq, rec in enumerate(records, start=1):
        rec.update(seq=seq, prev=prev)
        rec["hash"] = prev = record_hash(rec)
    log.path.write_text("".join(json.dumps(r, sort_keys=True, separators=(",", ":"),
                                           ensure_ascii=False) + "\n" for r in records))
    with log.db.database.connect() as db:
        db.execute("UPDATE audit_anchor SET seq=?, hash=? WHERE id=1",
                   (records[-1]["seq"], records[-1]["hash"]))


# -- the message ----------------------------------------------------------------------


def test_message_is_rfc5424_with_the_chain_facts_and_no_data() -> None:
    entry = WitnessEntry(seq=7, hash=HASH, type="run.started", prev="cd" * 32, run_id="r-1",
                         env="local", action="health", actor="alice")
    msg = format_message(entry, timestamp="2026-01-02T03:04:05.000006Z", hostname="box",
                         procid=42)
    assert msg == (
        f'<85>1 2026-01-02T03:04:05.000006Z box autoops 42 AUDIT [autoops@32473 seq="7" '
        f'hash="{HASH}" prev="{"cd" * 32}" type="run.started" run_id="r-1" env="local" '
        f'action="health" actor="alice"] audit record 7')


def test_message_is_sent_with_the_record_facts_only(collector: Collector, tmp_path: Path) -> None:
    log = make_log(tmp_path, Witness(f"unix://{collector.path}"))
    log.append(run_id="r1", type_="run.requested", actor="alice", env="local", action="health",
               data={"password_hint": "never-in-the-witness"})  # pragma: allowlist secret
    assert len(collector.entries()) == 1
    (line,) = collector.lines
    assert "never-in-the-witness" not in line
    assert line.startswith("<85>1 ")  # authpriv.notice, RFC 5424 version 1
    assert " autoops " in line
    assert " AUDIT " in line


def test_checkpoint_message_carries_seq_and_hash() -> None:
    msg = format_message(WitnessEntry(seq=3, hash=HASH, type="checkpoint"), hostname="h",
                         procid=1, timestamp="2026-01-01T00:00:00.000000Z")
    assert f'[{SD_ID} seq="3" hash="{HASH}" type="checkpoint"] audit checkpoint 3' in msg
    entry = parse_line(msg)
    assert entry is not None
    assert entry.is_checkpoint
    assert entry.prev is None


def test_hostname_is_printable_ascii_without_spaces() -> None:
    msg = format_message(WitnessEntry(seq=1, hash=HASH, type="checkpoint"), hostname="a b\nä",
                         procid=1, timestamp="2026-01-01T00:00:00.000000Z")
    assert msg.split(" ")[2] == "ab"


@pytest.mark.parametrize(("value", "wire"), [
    ('say "hi"', 'say \\"hi\\"'),
    ("a\\b", "a\\\\b"),
    ("x]y", "x\\]y"),
    ("line\nbreak", "line\\x0abreak"),
    ("nul\0", "nul\\x00"),
    ("nel\x85", "nel\\x85"),
    ("grüße €", "grüße €"),
    ("\\x0a", "\\\\x0a"),
])
def test_escape_param(value: str, wire: str) -> None:
    assert escape_param(value) == wire


hostile = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from([
    '"', "\\", "]", "\\]", '\\"', "\n", "\r\n", "\\x0a", f'"] [{SD_ID} seq="99" hash="x"]',
    "\u2028", "\x85", "\ufeff", "ä€😀",
])


@st.composite
def entries(draw: st.DrawFn) -> WitnessEntry:
    if draw(st.booleans()):
        return WitnessEntry(seq=draw(st.integers(1, 10**18)), hash=draw(hostile), type="checkpoint")
    return WitnessEntry(seq=draw(st.integers(1, 10**18)), hash=draw(hostile),
                        type=draw(hostile.filter(lambda t: t != "checkpoint")),
                        prev=draw(hostile), run_id=draw(hostile), env=draw(hostile),
                        action=draw(hostile), actor=draw(hostile))


@given(entry=entries(), hostname=hostile, prefix=st.sampled_from([
    "", "Dec  2 14:39:18 box ", "2026-12-02T14:39:18+00:00 box autoops[4]: ", "#012 junk [x] ",
]))
def test_format_parse_round_trip_with_hostile_values(entry: WitnessEntry, hostname: str,
                                                      prefix: str) -> None:
    msg = format_message(entry, hostname=hostname, procid=7)
    assert "\n" not in msg
    assert "\r" not in msg
    assert parse_line(prefix + msg) == entry


@given(values=st.lists(entries(), min_size=1, max_size=5))
def test_read_witness_finds_every_entry_between_other_lines(values: list[WitnessEntry]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "witness.log"
        lines = ["Dec  2 rsyslogd: [origin software=rsyslogd] start"]
        for value in values:
            lines += [f"2026-12-02 box {format_message(value)}", "other [program@1 a=\"b\"] x"]
        path.write_bytes(("\n".join(lines) + "\n").encode())
        found = read_witness(path)
    assert found == values
    assert [e.line for e in found] == list(range(2, 2 * len(values) + 1, 2))


@pytest.mark.parametrize("line", [
    "", "no structured data", f"[{SD_ID}]", f'[{SD_ID} seq="1" hash="x"]',
    f'[{SD_ID} seq="x" hash="{HASH}" type="checkpoint"]',
    f'[{SD_ID} seq="0" hash="{HASH}" type="checkpoint"]',
    f'[{SD_ID} seq="1" hash="{HASH}" type="checkpoint"',  # cut off
    f'[{SD_ID} seq="1" seq="2" hash="{HASH}" type="checkpoint"]',
    f'[{SD_ID} seq="1"hash="{HASH}" type="checkpoint"]',
])
def test_malformed_lines_are_ignored(line: str) -> None:
    assert parse_line(line) is None


def test_unreadable_witness_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="cannot read witness file"):
        read_witness(tmp_path / "missing.log")


# -- targets and delivery -------------------------------------------------------------


@pytest.mark.parametrize(("url", "target"), [
    ("unix:///dev/log", Target("unix", path="/dev/log")),
    ("unix:///run/my%20log", Target("unix", path="/run/my log")),
    ("udp://127.0.0.1:514", Target("udp", host="127.0.0.1", port=514)),
    ("tcp://[::1]:6514", Target("tcp", host="::1", port=6514)),
    ("tcp://logs.example.net:601/", Target("tcp", host="logs.example.net", port=601)),
])
def test_target_urls(url: str, target: Target) -> None:
    assert Target.parse(url) == target


@pytest.mark.parametrize("url", [
    "", "/dev/log", "unix://dev/log", "unix:relative", "udp://127.0.0.1", "tcp://:514",
    "tcp://h:0", "tcp://h:99999", "tcp://h:x", "http://h:80", "tcp://u@h:514", "udp://h:514?x=1",
    "tcp://h:514/path",
])
def test_unusable_target_urls_fail_closed(url: str) -> None:
    with pytest.raises(AuditBrokenError, match="not usable"):
        Witness(url)


def _received(server: socket.socket, send: Callable[[], None]) -> bytes:
    """What one connection to a listening ``server`` carried while ``send`` ran."""
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            while chunk := conn.recv(65536):
                received.append(chunk)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        send()
        thread.join(30)
    finally:
        server.close()
    return b"".join(received)


def test_unix_stream_socket_is_used_when_the_path_is_one(sockdir: Path) -> None:
    path = sockdir / "stream.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    data = _received(server, lambda: Witness(f"unix://{path}").checkpoint(5, HASH))
    assert data.endswith(b"\n")
    assert data.count(b"\n") == 1
    assert parse_line(data.decode()) == WitnessEntry(seq=5, hash=HASH, type="checkpoint")


def test_tcp_uses_octet_counting() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    data = _received(server, lambda: Witness(f"tcp://127.0.0.1:{port}").checkpoint(9, HASH))
    length, _, message = data.partition(b" ")
    assert int(length) == len(message)
    assert parse_line(message.decode()) == WitnessEntry(seq=9, hash=HASH, type="checkpoint")


def test_udp_sends_one_datagram() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(30)
        Witness(f"udp://127.0.0.1:{server.getsockname()[1]}").checkpoint(4, HASH)
        message = server.recv(65536)
    assert parse_line(message.decode()) == WitnessEntry(seq=4, hash=HASH, type="checkpoint")


def test_udp_to_nobody_is_fire_and_forget() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    Witness(f"udp://127.0.0.1:{port}").checkpoint(1, HASH)  # lost, and nobody can tell


def _stale_socket(path: Path) -> None:
    """A socket file whose receiver is gone (a syslog daemon that died)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))


@pytest.mark.parametrize("case", ["missing", "stale", "tcp"])
def test_unreachable_witness_raises_audit_broken(sockdir: Path, case: str) -> None:
    if case == "tcp":
        with socket.create_server(("127.0.0.1", 0)) as probe:
            url = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    else:
        path = sockdir / "log.sock"
        if case == "stale":
            _stale_socket(path)
        url = f"unix://{path}"
    with pytest.raises(AuditBrokenError, match="did not take seq 3") as raised:
        Witness(url).checkpoint(3, HASH)
    assert "nothing runs" in raised.value.remedy


# -- the audit log and its witness ----------------------------------------------------


def test_every_durable_record_is_witnessed_in_order(collector: Collector, tmp_path: Path) -> None:
    log = make_log(tmp_path, Witness(f"unix://{collector.path}"))
    fill(log, 10)
    assert collector.entries() == witnessed(log)
    assert [e.seq for e in collector.entries()] == [1, 2, 3, 5, 6, 7, 8, 10]
    assert log.verify_witness(collector.entries()).ok


def test_a_witness_that_is_down_stops_the_append(sockdir: Path, tmp_path: Path) -> None:
    log = make_log(tmp_path, Witness(f"unix://{sockdir / 'gone.sock'}"))
    with pytest.raises(AuditBrokenError, match="did not take seq 1"):
        fill(log, 1)
    assert log.verify().ok  # the record is in the local log, anchored; only unwitnessed
    log.append(run_id="r1", type_="task.result", actor="a", env="local", action="health",
               data={}, durable=False)  # what is not witnessed one by one is not held up


def test_checkpoint_witnesses_the_newest_record(collector: Collector, tmp_path: Path) -> None:
    log = make_log(tmp_path, Witness(f"unix://{collector.path}"))
    assert log.checkpoint() is None  # nothing to vouch for yet
    fill(log, 4)  # seq 4 is a task result: not witnessed by itself
    newest = list(log.records())[-1]
    assert log.checkpoint() == (4, newest["hash"])
    assert collector.entries()[-1] == WitnessEntry(seq=4, hash=newest["hash"], type="checkpoint")
    assert log.db.anchor.get() == (4, newest["hash"])


def test_checkpoint_needs_a_witness(tmp_path: Path) -> None:
    with pytest.raises(AuditBrokenError, match="no audit witness"):
        make_log(tmp_path).checkpoint()


def _cut_tail(log: AuditLog, entries: list[WitnessEntry]) -> tuple[int, list[WitnessEntry]]:
    recs = list(log.records())
    rewrite(log, recs[:6])
    return 7, entries


def _cut_tail_and_cover(log: AuditLog, entries: list[WitnessEntry]) -> tuple[int, list[WitnessEntry]]:
    recs = list(log.records())
    rewrite(log, recs[:6])
    fill(log, 6, run_id="cover")  # fresh runs make the log as long as it was
    return 7, entries


def _rewritten_history(log: AuditLog, entries: list[WitnessEntry]) -> tuple[int, list[WitnessEntry]]:
    recs = list(log.records())
    for rec in recs[2:]:
        rec["actor"] = "mallory"
    rewrite(log, recs)
    return 3, entries


def _deleted_in_the_middle(log: AuditLog, entries: list[WitnessEntry]) -> tuple[int, list[WitnessEntry]]:
    recs = list(log.records())
    del recs[3]  # seq 4, a task result: never witnessed by itself
    rewrite(log, recs)
    return 5, entries  # the old seq 5 (run.finished) is now seq 4; seq 5 is the old 6


def _data_edited_and_rehashed(log: AuditLog, entries: list[WitnessEntry]) -> tuple[int, list[WitnessEntry]]:
    recs = list(log.records())
    recs[8]["data"] = {"i": "nothing happened"}
    rewrite(log, recs)
    return 10, entries  # seq 9 is a task result; seq 10 chains to it


def _forged_duplicate(log: AuditLog, entries: list[WitnessEntry]) -> tuple[int, list[WitnessEntry]]:
    forged = WitnessEntry(seq=5, hash="0" * 64, type="run.finished", prev="1" * 64, line=99)
    return 5, [*entries, forged]


def _forged_facts(log: AuditLog, entries: list[WitnessEntry]) -> tuple[int, list[WitnessEntry]]:
    real = entries[1]
    return real.seq, [entries[0], WitnessEntry(seq=real.seq, hash=real.hash, type=real.type,
                                               prev=real.prev, run_id=real.run_id, env=real.env,
                                               action=real.action, actor="mallory")]


TAMPER = {
    "tail cut, anchor moved": (_cut_tail, "missing"),
    "tail cut, covered by new runs": (_cut_tail_and_cover, "differs from the witness"),
    "history rewritten": (_rewritten_history, "differs from the witness"),
    "record deleted in the middle": (_deleted_in_the_middle, "differs from the witness"),
    "unwitnessed record edited": (_data_edited_and_rehashed, "differs from the witness"),
    "two hashes for one seq": (_forged_duplicate, "two hashes for seq 5"),
    "forged facts": (_forged_facts, "not its actor"),
}


@pytest.mark.parametrize("case", TAMPER, ids=list(TAMPER))
def test_tampering_passes_plain_verify_but_not_the_witness(tmp_path: Path, case: str) -> None:
    log = make_log(tmp_path)
    fill(log, 12)
    tamper, problem = TAMPER[case]
    first_bad, entries = tamper(log, witnessed(log))
    assert log.verify().ok  # the local chain and its anchor agree: only the witness can tell
    report = log.verify_witness(entries)
    assert not report.ok
    assert report.first_bad_seq == first_bad, report
    assert problem in str(report.problem)
    assert report.to_dict()["first_bad_seq"] == first_bad


def test_cut_tail_names_the_missing_records(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    fill(log, 12)
    entries = witnessed(log)
    rewrite(log, list(log.records())[:6])
    assert log.verify_witness(entries).problem == (
        "records 7..12 are missing: the witness has seq 12 (run.decision of run r1, witness "
        "line 0) but the log ends at seq 6")


def test_a_witness_behind_the_log_is_not_an_error(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    fill(log, 6)
    entries = witnessed(log)
    fill(log, 4, run_id="r2")  # e.g. lost over UDP, or written before the witness was set up
    report = log.verify_witness(entries)
    assert report.ok, report
    assert report.to_dict()["witness"] == {"entries": 5, "through": 6}


def test_duplicate_witness_messages_agree(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    fill(log, 3)
    entries = witnessed(log)
    assert log.verify_witness([*entries, *entries]).ok


def test_an_empty_witness_proves_nothing(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    assert log.verify_witness([]).ok
    fill(log, 2)
    report = log.verify_witness([])
    assert not report.ok
    assert report.first_bad_seq is None
    assert "no autoops records" in str(report.problem)


def test_a_broken_local_chain_is_reported_first(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    fill(log, 6)
    entries = witnessed(log)
    lines = log.path.read_text().splitlines(keepends=True)
    log.path.write_text("".join(lines[:2] + lines[3:]))
    report = log.verify_witness(entries)
    assert not report.ok
    assert report.first_bad_seq == 3
    assert "witness" not in str(report.problem)


def test_plain_verify_json_is_unchanged(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    fill(log, 2)
    assert set(log.verify().to_dict()) == {"ok", "records", "first_bad_seq", "problem"}
