"""An audit witness outside the writer's reach: RFC 5424 syslog messages to another party.

The local audit log and its anchor in state.db live in the same state directory, so
whoever can write one can rewrite both (cut a run, re-hash history, move the anchor)
and ``audit verify`` passes. Each durable record's chain facts (seq, hash, prev, type,
run, env, action, actor) therefore also go to a syslog receiver whose file the caller
cannot edit; ``audit verify --witness FILE`` then checks that every witnessed record is
still in the local log, unchanged.

Only chain facts are sent, never a record's ``data`` (it may be sensitive): they are
enough to prove which records existed. Messages use facility ``authpriv``: it is meant
for security and authorisation messages, and stock syslog configurations (Debian's
``auth,authpriv.* /var/log/auth.log``) already route it to a file only root writes,
whereas the ``local*`` facilities mean whatever a site made of them, often nothing.

Delivery: a unix socket (datagram, or stream when the path is one) and TCP fail loudly
when the witness is not there, and the error is :class:`AuditBrokenError` so that the
caller stops before anything runs. UDP cannot tell: a message to a witness that is down
or overloaded is lost without an error (only failures the kernel reports at once, such
as no route, are raised). TCP uses RFC 6587 octet-counting framing; it proves that the
receiver accepted the bytes, not that it wrote them to disk.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from autoops.errors import AuditBrokenError, BadInputError

SD_ID = "autoops@32473"  # 32473: the example Private Enterprise Number of RFC 5612
APP_NAME = "autoops"
MSGID = "AUDIT"
CHECKPOINT = "checkpoint"
FACILITY_AUTHPRIV = 10
SEVERITY_NOTICE = 5
PRI = FACILITY_AUTHPRIV * 8 + SEVERITY_NOTICE
_REQUIRED = frozenset({"seq", "hash", "type"})
_SEQ = re.compile(r"[1-9][0-9]{0,18}")  # records count from 1
_HEX2 = re.compile(r"[0-9A-Fa-f]{2}")
_URL_FORMS = "unix:///dev/log (or another socket path), udp://HOST:PORT or tcp://HOST:PORT"


@dataclass(frozen=True)
class WitnessEntry:
    """The chain facts of one witnessed record (or of a checkpoint: no prev, empty names)."""

    seq: int
    hash: str
    type: str
    prev: str | None = None
    run_id: str = ""
    env: str = ""
    action: str = ""
    actor: str = ""
    line: int = field(default=0, compare=False)  # where it was found in the witness file

    @classmethod
    def of_record(cls, record: Mapping[str, Any]) -> WitnessEntry:
        """The facts of an audit record that a witness keeps (never its data)."""
        return cls(seq=int(record["seq"]), hash=str(record["hash"]), type=str(record["type"]),
                   prev=str(record["prev"]), run_id=str(record["run_id"]),
                   env=str(record["env"]), action=str(record["action"]),
                   actor=str(record["actor"]))

    @property
    def is_checkpoint(self) -> bool:
        return self.type == CHECKPOINT

    def params(self) -> dict[str, str]:
        """SD-PARAMs by name; a checkpoint carries seq, hash and type only."""
        values = {"seq": str(self.seq), "hash": self.hash, "prev": self.prev, "type": self.type,
                  "run_id": self.run_id, "env": self.env, "action": self.action,
                  "actor": self.actor}
        if self.is_checkpoint:
            return {k: v for k, v in values.items() if k in _REQUIRED and v is not None}
        return {k: v for k, v in values.items() if v is not None}


def escape_param(value: str) -> str:
    r"""An SD-PARAM value: RFC 5424's three escapes, plus control characters as ``\xHH``.

    Syslog daemons rewrite control characters on receipt (rsyslog turns a newline into
    ``#012``) and files are read line by line, so they never travel raw. Since every
    backslash is escaped, a reader that knows only RFC 5424 sees ``\x0a`` as text.
    """
    out = []
    for char in value:
        if char in '"\\]':
            out.append("\\" + char)
        elif unicodedata.category(char) == "Cc":  # C0, DEL and C1 (all below U+0100)
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


def structured_data(entry: WitnessEntry) -> str:
    params = " ".join(f'{name}="{escape_param(value)}"' for name, value in entry.params().items())
    return f"[{SD_ID} {params}]"


def format_message(entry: WitnessEntry, *, timestamp: str | None = None,
                   hostname: str | None = None, procid: int | None = None) -> str:
    """One RFC 5424 message (without framing); MSG is a short fixed text, no record data."""
    what = "checkpoint" if entry.is_checkpoint else "record"
    return (f"<{PRI}>1 {timestamp or _now()} {_header_field(hostname or socket.gethostname(), 255)} "
            f"{APP_NAME} {procid if procid is not None else os.getpid()} {MSGID} "
            f"{structured_data(entry)} audit {what} {entry.seq}")


def parse_line(line: str, number: int = 0) -> WitnessEntry | None:
    """The autoops entry in one line of a syslog file, whatever the template around it.

    Takes the first ``[autoops@32473 …]`` element that parses; None when there is none
    (another program's line, a truncated one).
    """
    start = line.find(f"[{SD_ID} ")
    while start >= 0:
        params = _parse_params(line, start + len(SD_ID) + 2)
        if params is not None and set(params) >= _REQUIRED and _SEQ.fullmatch(params["seq"]):
            return _entry(params, number)
        start = line.find(f"[{SD_ID} ", start + 1)
    return None


def _entry(params: dict[str, str], number: int) -> WitnessEntry:
    return WitnessEntry(seq=int(params["seq"]), hash=params["hash"], type=params["type"],
                        prev=params.get("prev"), run_id=params.get("run_id", ""),
                        env=params.get("env", ""), action=params.get("action", ""),
                        actor=params.get("actor", ""), line=number)


def read_witness(path: Path) -> list[WitnessEntry]:
    """Every autoops entry of a file a syslog daemon wrote, in file order; other lines ignored."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BadInputError(f"cannot read witness file {path}: {exc.strerror}",
                            remedy="Pass the file your syslog daemon writes the autoops "
                                   "messages to (README: Audit witness).") from None
    entries = []
    for number, line in enumerate(raw.decode("utf-8", errors="replace").split("\n"), start=1):
        entry = parse_line(line, number)
        if entry is not None:
            entries.append(entry)
    return entries


@dataclass(frozen=True)
class Target:
    """Where witness messages go, parsed from the configured URL."""

    scheme: str  # unix | udp | tcp
    path: str = ""
    host: str = ""
    port: int = 0

    @classmethod
    def parse(cls, url: str) -> Target:
        """``unix:///PATH``, ``udp://HOST:PORT`` or ``tcp://HOST:PORT``; anything else refused."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise _config_error(url, str(exc)) from None
        if parts.query or parts.fragment or parts.username or parts.password:
            raise _config_error(url, "no user, query or fragment allowed")
        if parts.scheme == "unix":
            path = unquote(parts.path)
            if parts.netloc or not path.startswith("/"):
                raise _config_error(url, "a unix socket needs an absolute path (unix:///dev/log)")
            return cls("unix", path=path)
        if parts.scheme in ("udp", "tcp"):
            if not parts.hostname or port is None or not 0 < port < 65536 or \
                    parts.path not in ("", "/"):
                raise _config_error(url, f"{parts.scheme} needs a host and a port")
            return cls(parts.scheme, host=parts.hostname, port=port)
        raise _config_error(url, f"unknown scheme {parts.scheme!r}")

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


class Witness:
    """Sends one syslog message per durable audit record, and checkpoints on demand.

    A fresh socket per message: nothing to reconnect, nothing shared across forks. Each
    send waits at most ``timeout`` seconds, under the audit log's lock.
    """

    def __init__(self, url: str, *, timeout: float = 5.0, hostname: str | None = None) -> None:
        self.target = Target.parse(url)
        self.timeout = timeout
        self.hostname = hostname or socket.gethostname()

    def send(self, record: Mapping[str, Any]) -> None:
        """Witness one record; raises AuditBrokenError when a unix or TCP witness is not there."""
        self._deliver(WitnessEntry.of_record(record), str(record["ts"]) if record.get("ts") else None)

    def checkpoint(self, seq: int, digest: str) -> None:
        """Witness the newest record's seq and hash, whatever its type."""
        self._deliver(WitnessEntry(seq=seq, hash=digest, type=CHECKPOINT), None)

    def _deliver(self, entry: WitnessEntry, timestamp: str | None) -> None:
        message = format_message(entry, timestamp=timestamp, hostname=self.hostname).encode()
        try:
            if self.target.scheme == "unix":
                self._unix(message)
            elif self.target.scheme == "tcp":
                self._tcp(message)
            else:
                self._udp(message)
        except OSError as exc:
            raise AuditBrokenError(
                f"audit witness {self.target} did not take seq {entry.seq}: "
                f"{exc.strerror or exc}",
                remedy=f"Start the syslog receiver at {self.target}, or fix "
                       "AUTOOPS_AUDIT_WITNESS; nothing runs while the audit trail cannot "
                       "be witnessed.") from None

    def _unix(self, message: bytes) -> None:
        """A datagram (as syslog(3) sends to /dev/log), or a LF-terminated line on a stream."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.target.path)
            except OSError as exc:
                if exc.errno != errno.EPROTOTYPE:
                    raise
            else:
                sock.send(message)
                return
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            sock.connect(self.target.path)
            sock.sendall(message + b"\n")

    def _tcp(self, message: bytes) -> None:
        """RFC 6587 octet counting: ``LENGTH SP MESSAGE``, one connection per message."""
        with socket.create_connection((self.target.host, self.target.port),
                                      timeout=self.timeout) as sock:
            sock.sendall(f"{len(message)} ".encode() + message)

    def _udp(self, message: bytes) -> None:
        """RFC 5426: one datagram; loss is not detectable (fire and forget)."""
        family, kind, proto, _, address = socket.getaddrinfo(
            self.target.host, self.target.port, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(self.timeout)
            sock.sendto(message, address)


def _parse_params(line: str, pos: int) -> dict[str, str] | None:
    """SD-PARAMs from ``pos`` up to the element's closing ``]``; None if malformed."""
    params: dict[str, str] = {}
    while True:
        eq = line.find('="', pos)
        if eq < 0:
            return None
        name = line[pos:eq]
        if not name or any(c in name for c in ' ="]') or name in params:
            return None
        value, pos = _parse_value(line, eq + 2)
        if value is None:
            return None
        params[name] = value
        if line[pos:pos + 1] == "]":
            return params
        if line[pos:pos + 1] != " ":
            return None
        pos += 1


def _parse_value(line: str, pos: int) -> tuple[str | None, int]:
    """A quoted PARAM-VALUE from ``pos`` (after the opening quote) to past its closing quote."""
    out: list[str] = []
    while pos < len(line):
        char = line[pos]
        if char == '"':
            return "".join(out), pos + 1
        if char == "\\" and line[pos + 1:pos + 2] in ('"', "\\", "]"):
            out.append(line[pos + 1])
            pos += 2
        elif char == "\\" and line[pos + 1:pos + 2] == "x" and _HEX2.fullmatch(line[pos + 2:pos + 4]):
            out.append(chr(int(line[pos + 2:pos + 4], 16)))
            pos += 4
        else:  # RFC 5424: any other backslash is a plain backslash
            out.append(char)
            pos += 1
    return None, pos


def _header_field(text: str, limit: int) -> str:
    """A header field is 1*PRINTUSASCII (no spaces), or ``-``."""
    cleaned = "".join(c for c in text if 33 <= ord(c) <= 126)[:limit]
    return cleaned or "-"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _config_error(url: str, why: str) -> AuditBrokenError:
    return AuditBrokenError(f"audit witness {url!r} is not usable: {why}",
                            remedy=f"Set AUTOOPS_AUDIT_WITNESS to {_URL_FORMS}.")
