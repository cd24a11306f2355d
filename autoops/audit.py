"""Append-only, hash-chained JSON Lines audit log.

Each record carries a schema version, a sequence number, a UTC timestamp, the
previous record's hash and its own (sha256 over the canonical JSON of the record
without ``hash``). Appends hold an exclusive ``flock`` so concurrent runs interleave
whole records; run.* records are fsynced before the caller goes on, and the newest
fsynced record is anchored in state.db so that a cut-off tail is detected too.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from autoops.errors import AuditBrokenError
from autoops.state import StateDB, ensure_dir

SCHEMA_VERSION = 1
GENESIS = "0" * 64
RECORD_TYPES = (
    "run.requested", "run.decision", "run.started", "task.result", "run.finished",
    "run.interrupted", "secrets.initialised", "secrets.edited", "secrets.rotated",
    "lock.stale_released", "grant.keys_created", "grant.created", "grant.revoked",
    "grant.used", "approval.requested", "approval.approved", "approval.rejected",
    "halt.engaged", "halt.lifted",
)
_FIELDS = ("v", "seq", "ts", "run_id", "type", "actor", "env", "action", "data", "prev", "hash")

Redactor = Callable[[Any], Any]


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes a record's hash covers: sorted keys, no spaces, UTF-8."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    records: int
    first_bad_seq: int | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "first_bad_seq": self.first_bad_seq,
                "problem": self.problem}


@dataclass(frozen=True)
class Query:
    """Filters for ``audit query``; None means any."""

    action: str | None = None
    env: str | None = None
    actor: str | None = None
    run_id: str | None = None
    types: Sequence[str] = field(default_factory=tuple)
    since: datetime | None = None

    def matches(self, rec: dict[str, Any]) -> bool:
        return all((
            self.action is None or rec.get("action") == self.action,
            self.env is None or rec.get("env") == self.env,
            self.actor is None or rec.get("actor") == self.actor,
            self.run_id is None or rec.get("run_id") == self.run_id,
            not self.types or rec.get("type") in self.types,
            self.since is None or parse_ts(rec["ts"]) >= self.since,
        ))


class AuditLog:
    """The audit log file plus its anchor in state.db."""

    def __init__(self, path: Path, db: StateDB, redact: Redactor | None = None) -> None:
        self.path = path
        self.db = db
        self.redact = redact or (lambda data: data)

    def append(self, *, run_id: str, type_: str, actor: str, env: str, action: str,
               data: dict[str, Any], durable: bool = True) -> dict[str, Any]:
        """Append one record; with ``durable`` it is on disk (fsync) when this returns."""
        if type_ not in RECORD_TYPES:
            raise ValueError(f"unknown audit record type {type_!r}")
        ensure_dir(self.path.parent)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise AuditBrokenError(f"cannot open {self.path} for append: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            seq, prev = self._tail()
            record: dict[str, Any] = {
                "v": SCHEMA_VERSION, "seq": seq + 1, "ts": utc_now(), "run_id": run_id,
                "type": type_, "actor": actor, "env": env, "action": action,
                "data": self.redact(data), "prev": prev,
            }
            record["hash"] = record_hash(record)
            line = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            os.write(fd, (line + "\n").encode())  # one write: a record is never split
            if durable:
                os.fsync(fd)
                self.db.set_anchor(record["seq"], record["hash"])
        except OSError as exc:
            raise AuditBrokenError(f"cannot write {self.path}: {exc.strerror}") from exc
        finally:
            os.close(fd)  # closing releases the flock
        return record

    def _tail(self) -> tuple[int, str]:
        """Sequence number and hash of the last record (the caller holds the lock)."""
        last = _last_line(self.path)
        if last is None:
            return 0, GENESIS
        try:
            rec = json.loads(last)
            return int(rec["seq"]), str(rec["hash"])
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditBrokenError(f"the last line of {self.path} is not a valid record") from exc

    def records(self) -> Iterator[dict[str, Any]]:
        """Every parseable record in order (``verify`` is the integrity check)."""
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                with contextlib.suppress(ValueError):
                    rec = json.loads(line)
                    if isinstance(rec, dict):
                        yield rec

    def query(self, query: Query, limit: int | None = None) -> list[dict[str, Any]]:
        found = [rec for rec in self.records() if query.matches(rec)]
        return found[-limit:] if limit else found

    def verify(self) -> VerifyReport:
        """Walk the chain; name the first sequence number that is not as written."""
        prev, expected, count = GENESIS, 1, 0
        hashes: dict[int, str] = {}
        if self.path.exists():
            lines = self.path.read_bytes().split(b"\n")
            partial = lines.pop()  # b"" when the file ends with a newline, as it must
            for number, raw in enumerate(lines, start=1):
                problem = _check_line(raw, expected, prev)
                if problem:
                    return VerifyReport(False, count, expected, f"line {number}: {problem}")
                rec = json.loads(raw)
                prev, expected, count = rec["hash"], expected + 1, count + 1
                hashes[rec["seq"]] = rec["hash"]
            if partial:
                return VerifyReport(False, count, expected,
                                    f"line {len(lines) + 1}: cut off (no final newline)")
        anchor = self.db.anchor()
        if anchor is not None:
            seq, digest = anchor
            if seq > count:
                return VerifyReport(False, count, count + 1,
                                    f"records {count + 1}..{seq} are missing: state.db anchors "
                                    f"seq {seq} but the log ends at seq {count}")
            if hashes.get(seq) != digest:
                return VerifyReport(False, count, seq,
                                    f"seq {seq} differs from the hash anchored in state.db")
        return VerifyReport(True, count)


def _check_line(raw: bytes, expected: int, prev: str) -> str | None:
    try:
        rec = json.loads(raw)
    except ValueError:
        return "not valid JSON (edited or cut off)"
    if not isinstance(rec, dict) or set(rec) != set(_FIELDS):
        return "not an audit record (fields added or removed)"
    if rec["seq"] != expected:
        return f"sequence {rec['seq']} where {expected} was expected (deleted, inserted or moved)"
    if rec["prev"] != prev:
        return "does not chain to the record before it (deleted, inserted or moved)"
    if record_hash(rec) != rec["hash"]:
        return "its content does not match its hash (edited)"
    return None


def _last_line(path: Path) -> bytes | None:
    """The last complete line of ``path``, read backwards from the end; None if empty."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return None
    with fh:
        end = fh.seek(0, os.SEEK_END)
        if end == 0:
            return None
        fh.seek(end - 1)
        if fh.read(1) != b"\n":
            raise AuditBrokenError(f"{path} ends in a partial record")
        pos, buf = end - 1, b""
        while pos > 0:
            step = min(4096, pos)
            pos -= step
            fh.seek(pos)
            buf = fh.read(step) + buf
            idx = buf.rfind(b"\n")
            if idx != -1:
                return buf[idx + 1:]
        return buf


def parse_since(text: str, now: datetime) -> datetime:
    """``24h``, ``30m``, ``7d``, ``90s`` ago, or an ISO 8601 timestamp (UTC if naive)."""
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    text = text.strip()
    if text[:-1].isdigit() and text[-1:] in units:
        return now - timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--since {text!r}: use a duration like 24h, 30m, 7d or an ISO time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
