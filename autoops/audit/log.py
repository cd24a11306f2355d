"""Append-only, hash-chained JSON Lines audit log.

Each record carries a schema version, a sequence number, a UTC timestamp, the
previous record's hash and its own (sha256 over the canonical JSON of the record
without ``hash``). Appends hold an exclusive ``flock`` so concurrent runs interleave
whole records; run.* records are fsynced before the caller goes on, and the newest
fsynced record is anchored in state.db so that a cut-off tail is detected too.
With a witness (autoops/audit/witness.py) each durable record's chain facts also go to a
syslog receiver the writer cannot rewrite, which catches what the anchor cannot: a
cut or re-hashed history with the anchor moved to match.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from autoops.audit.witness import Witness, WitnessEntry
from autoops.common.canonical import canonical_json
from autoops.common.durations import parse_duration
from autoops.common.files import ensure_dir
from autoops.errors import AuditBrokenError
from autoops.state.db import StateDB

SCHEMA_VERSION = 1
GENESIS = "0" * 64
RECORD_TYPES = (
    "run.requested", "run.decision", "run.started", "task.result", "run.finished",
    "run.interrupted", "secrets.initialised", "secrets.edited", "secrets.rotated",
    "secrets.set", "secrets.unset",
    "lock.stale_released", "grant.keys_created", "grant.created", "grant.revoked",
    "grant.used", "approval.requested", "approval.approved", "approval.rejected",
    "halt.engaged", "halt.lifted",
    "alert.notified", "alert.acked", "alert.silenced", "alert.unsilenced", "alert.tested",
    "heal.started", "heal.finished", "heal.escalated",
    "run.promotion", "deploy.rolled_back", "guard.refused",
)
_FIELDS = ("v", "seq", "ts", "run_id", "type", "actor", "env", "action", "data", "prev", "hash")

Redactor = Callable[[Any], Any]


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes a record's hash covers: sorted keys, no spaces, UTF-8."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return canonical_json(body)


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
    witness: dict[str, Any] | None = None  # with --witness: what the witness vouched for

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"ok": self.ok, "records": self.records,
                               "first_bad_seq": self.first_bad_seq, "problem": self.problem}
        if self.witness is not None:
            doc["witness"] = self.witness
        return doc


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
    """The audit log file plus its anchor in state.db (and, optionally, a witness)."""

    def __init__(self, path: Path, db: StateDB, redact: Redactor | None = None, *,
                 witness: Witness | None = None) -> None:
        self.path = path
        self.db = db
        self.redact = redact or (lambda data: data)
        self.witness = witness

    def append(self, *, run_id: str, type_: str, actor: str, env: str, action: str,
               data: dict[str, Any], durable: bool = True) -> dict[str, Any]:
        """Append one record; with ``durable`` it is on disk (fsync) when this returns.

        A durable record is then sent to the witness, still under the lock (so the
        witness sees the chain in order); a witness that cannot be reached raises
        AuditBrokenError, and the caller stops before anything runs.
        """
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
                self.db.anchor.advance(record["seq"], record["hash"])
                if self.witness is not None:
                    self.witness.send(record)
        except OSError as exc:
            raise AuditBrokenError(f"cannot write {self.path}: {exc.strerror}") from exc
        finally:
            os.close(fd)  # closing releases the flock
        return record

    def checkpoint(self) -> tuple[int, str] | None:
        """Make the newest record durable and witness its seq and hash; None if the log is empty.

        Records that are not durable one by one (task.result) reach the witness only
        through the next durable record's chain; a checkpoint (from cron, say) vouches
        for them at once.
        """
        if self.witness is None:
            raise AuditBrokenError("no audit witness is configured",
                                   remedy="Set AUTOOPS_AUDIT_WITNESS (README: Audit witness).")
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise AuditBrokenError(f"cannot open {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            seq, digest = self._tail()
            if seq == 0:
                return None
            os.fsync(fd)
            self.db.anchor.advance(seq, digest)
            self.witness.checkpoint(seq, digest)
        except OSError as exc:
            raise AuditBrokenError(f"cannot sync {self.path}: {exc.strerror}") from exc
        finally:
            os.close(fd)
        return seq, digest

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
        anchor = self.db.anchor.get()
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

    def verify_witness(self, entries: Sequence[WitnessEntry]) -> VerifyReport:
        """The local chain, then every witnessed seq against it.

        What a witness saw must still be here, unchanged: a witnessed seq beyond the
        log's end is a cut tail (even with the anchor moved back), a witnessed hash that
        differs is rewritten history (or a record deleted or inserted before it and the
        chain re-hashed). Local records after the newest witnessed one are not an error:
        task results are not sent one by one, and UDP may lose messages.
        """
        local = self.verify()
        if not local.ok:
            return local
        count = local.records
        if not entries:
            if count == 0:
                return VerifyReport(True, 0, witness={"entries": 0, "through": 0})
            return VerifyReport(False, count, None,
                                "the witness holds no autoops records to check against (wrong "
                                "file, or a syslog template that drops structured data)")
        recs = {int(rec["seq"]): rec for rec in self.records()}
        ordered = sorted(entries, key=lambda e: (e.seq, e.line))
        newest = ordered[-1]
        seen: dict[int, WitnessEntry] = {}
        for entry in ordered:
            problem, bad = _witness_problem(entry, recs.get(entry.seq), seen, count, newest)
            if problem is not None:
                return VerifyReport(False, count, bad, problem)
        return VerifyReport(True, count, witness={"entries": len(entries), "through": newest.seq})


def _witness_problem(entry: WitnessEntry, rec: dict[str, Any] | None,
                     seen: dict[int, WitnessEntry], count: int,
                     newest: WitnessEntry) -> tuple[str | None, int]:
    """What is wrong with one witness entry against the local record of its seq, if anything."""
    where = f"witness line {entry.line}"
    first = seen.setdefault(entry.seq, entry)
    if first.hash != entry.hash:
        return (f"the witness holds two hashes for seq {entry.seq} (lines {first.line} and "
                f"{entry.line}): forged messages, or the log was started anew"), entry.seq
    if rec is None:
        return (f"records {count + 1}..{newest.seq} are missing: the witness has seq "
                f"{newest.seq} ({newest.type} of run {newest.run_id or '-'}, witness line "
                f"{newest.line}) but the log ends at seq {count}"), count + 1
    if rec["hash"] != entry.hash:
        return (f"seq {entry.seq} differs from the witness ({where}: {entry.type} of run "
                f"{entry.run_id or '-'}): history rewritten, or a record deleted or inserted "
                f"before it and the chain re-hashed"), entry.seq
    if entry.is_checkpoint:
        return None, entry.seq
    facts = {"prev": entry.prev, "type": entry.type, "run_id": entry.run_id, "env": entry.env,
             "action": entry.action, "actor": entry.actor}
    differ = sorted(k for k, v in facts.items() if str(rec.get(k)) != v)
    if differ:
        return (f"seq {entry.seq} has the witnessed hash but not its {', '.join(differ)} "
                f"({where}): a forged witness message"), entry.seq
    return None, entry.seq


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
    text = text.strip()
    with contextlib.suppress(ValueError):
        return now - parse_duration(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--since {text!r}: use a duration like 24h, 30m, 7d or an ISO time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
