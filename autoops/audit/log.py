"""Append-only, hash-chained JSON Lines audit log, in segments, with an index.

Each record carries a schema version, a sequence number, a UTC timestamp, the previous
record's hash and its own (see :mod:`autoops.audit.records`). Appends hold an exclusive
``flock`` so concurrent writers interleave whole records, a batch of a run's records in one
write; run.* records are fsynced before the caller goes on, and the newest fsynced record
is anchored in state.db so that a cut-off tail is detected too. The log rotates into
segments by size or by day (:mod:`autoops.audit.segments`) without breaking the chain;
``verify`` streams across all of them in bounded memory; ``prune`` drops whole old
segments behind a record that vouches for where the chain now starts. The index
(:mod:`autoops.audit.index`) makes queries cost what they return.

With a witness (autoops/audit/witness.py) each durable record's chain facts also go to a
syslog receiver the writer cannot rewrite, which catches what the anchor cannot: a cut or
re-hashed history with the anchor moved to match.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from autoops.audit import segments
from autoops.audit.index import Filters, Index, Row
from autoops.audit.records import (
    GENESIS,
    RECORD_TYPES,
    SCHEMA_VERSION,
    canonical,
    check_line,
    parse_ts,
    record_hash,
    seal,
    seq_and_hash,
    utc_now,
)
from autoops.audit.segments import Base, Layout
from autoops.audit.witness import Witness, WitnessEntry
from autoops.common.durations import parse_duration
from autoops.common.files import ensure_dir
from autoops.errors import AuditBrokenError
from autoops.state.db import StateDB

__all__ = ["GENESIS", "RECORD_TYPES", "SCHEMA_VERSION", "AuditLog", "Entry", "Query",
           "VerifyReport", "canonical", "parse_since", "parse_ts", "record_hash", "utc_now"]

SEGMENT_BYTES = 64 << 20  # a segment rotates past this size, or when its day ends
Redactor = Callable[[Any], Any]


@dataclass(frozen=True)
class Entry:
    """A record to append (the log adds seq, time and the chain)."""

    run_id: str
    type_: str
    actor: str
    env: str
    action: str
    data: dict[str, Any]


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    records: int
    first_bad_seq: int | None = None
    problem: str | None = None
    witness: dict[str, Any] | None = None  # with --witness: what the witness vouched for
    from_seq: int = 1  # where the chain could be walked from (after a prune: the base)
    pruned: dict[str, Any] | None = None  # what vouches for the pruned prefix

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"ok": self.ok, "records": self.records,
                               "first_bad_seq": self.first_bad_seq, "problem": self.problem}
        if self.pruned is not None or self.from_seq != 1:  # the chain starts after a prune
            doc.update(from_seq=self.from_seq, pruned=self.pruned)
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

    def filters(self) -> Filters:
        since = self.since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") \
            if self.since is not None else None
        return Filters(self.action, self.env, self.actor, self.run_id, tuple(self.types), since)


@dataclass
class _Tail:
    """What the writer knows of the active segment (valid while its inode and size match)."""

    inode: int
    size: int
    seq: int
    hash: str
    first_seq: int  # the active segment's first record (0: none yet)
    day: str  # … and its UTC day


class AuditLog:
    """The audit log's segments, their index and anchor (and, optionally, a witness)."""

    def __init__(self, path: Path, db: StateDB, redact: Redactor | None = None, *,
                 witness: Witness | None = None, segment_bytes: int = SEGMENT_BYTES,
                 clock: Callable[[], str] = utc_now) -> None:
        self.path = path  # the active segment
        self.layout = Layout(path)
        self.index = Index(path.parent / "index.sqlite")
        self.db = db
        self.redact = redact or (lambda data: data)
        self.witness = witness
        self.segment_bytes = segment_bytes
        self.clock = clock
        self._mutex = threading.Lock()
        self._tail: _Tail | None = None

    # -- writing ----------------------------------------------------------------------

    def append(self, *, run_id: str, type_: str, actor: str, env: str, action: str,
               data: dict[str, Any], durable: bool = True) -> dict[str, Any]:
        """Append one record; with ``durable`` it is on disk (fsync) when this returns.

        A durable record is then sent to the witness, still under the lock (so the
        witness sees the chain in order); a witness that cannot be reached raises
        AuditBrokenError, and the caller stops before anything runs.
        """
        return self.append_many([Entry(run_id, type_, actor, env, action, data)],
                                durable=durable)[0]

    def append_many(self, entries: Sequence[Entry], *, durable: bool = False) -> list[
            dict[str, Any]]:
        """Append records in order, in one write under one lock (a run's batch of events)."""
        for entry in entries:
            if entry.type_ not in RECORD_TYPES:
                raise ValueError(f"unknown audit record type {entry.type_!r}")
        if not entries:
            return []
        with self._locked() as active:
            tail = self._current(active)
            now = self.clock()
            if tail.first_seq and (tail.size >= self.segment_bytes or tail.day != now[:10]):
                self._rotate(active, tail)
                tail = self._current(active)
            seq, prev, chunks, records, rows = tail.seq, tail.hash, [], [], []
            offset = tail.size
            first = tail.first_seq or seq + 1
            for entry in entries:
                seq += 1
                record: dict[str, Any] = {
                    "v": SCHEMA_VERSION, "seq": seq, "ts": now, "run_id": entry.run_id,
                    "type": entry.type_, "actor": entry.actor, "env": entry.env,
                    "action": entry.action, "data": self.redact(entry.data), "prev": prev}
                line = seal(record)
                rows.append((seq, now, entry.run_id, entry.type_, entry.env, entry.action,
                             entry.actor, first, offset, len(line)))
                offset += len(line)
                prev = record["hash"]
                chunks.append(line)
                records.append(record)
            try:
                _write_all(active.fd, b"".join(chunks))
                if durable:
                    os.fsync(active.fd)
            except OSError as exc:
                self._tail = None
                raise AuditBrokenError(f"cannot write {self.path}: {exc.strerror}") from exc
            self._tail = _Tail(tail.inode, offset, seq, prev, first,
                               tail.day if tail.first_seq else now[:10])
            if durable:
                self.db.anchor.advance(seq, prev)
                if self.witness is not None:
                    for record in records:
                        self.witness.send(record)
            self._index(rows)
        return records

    @contextlib.contextmanager
    def _locked(self) -> Iterator[_Active]:
        """The writers' lock held, and the active segment open for append."""
        ensure_dir(self.path.parent)
        with self._mutex:
            try:
                lock = os.open(self.layout.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise AuditBrokenError(f"cannot open {self.layout.lock_file}: "
                                       f"{exc.strerror}") from exc
            try:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                except OSError as exc:
                    raise AuditBrokenError(f"cannot open {self.path} for append: "
                                           f"{exc.strerror}") from exc
                active = _Active(fd)
                try:
                    yield active
                finally:
                    os.close(active.fd)
            finally:
                os.close(lock)  # closing releases the flock

    def _current(self, active: _Active) -> _Tail:
        """The active segment's tail: cached while nobody else wrote, else read."""
        st = os.fstat(active.fd)
        cached = self._tail
        if cached is not None and (cached.inode, cached.size) == (st.st_ino, st.st_size):
            return cached
        if st.st_size:
            last = segments.last_line(self.path)
            first_line = _first_line(self.path)
        else:
            last, first_line = self.layout.last_line(), None
        try:
            seq, digest = seq_and_hash(last) if last is not None else (0, GENESIS)
            first = json.loads(first_line) if first_line else None
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditBrokenError(f"the last record of {self.path} is not valid") from exc
        if seq == 0:
            base = self.layout.base()
            if base is not None:
                seq, digest = base.first_seq - 1, base.prev
        self._tail = _Tail(st.st_ino, st.st_size, seq, digest,
                           int(first["seq"]) if first else 0,
                           str(first["ts"])[:10] if first else "")
        return self._tail

    def _rotate(self, active: _Active, tail: _Tail) -> None:
        """Close the active segment (fsynced) under its first seq; open the next one."""
        self._tail = None
        try:
            os.fsync(active.fd)
            self.layout.rotate(tail.first_seq)
            new = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise AuditBrokenError(f"cannot rotate {self.path}: {exc.strerror}") from exc
        os.close(active.fd)
        active.fd = new
        segments.sync_dir(self.path.parent)

    def _index(self, rows: list[Row]) -> None:
        """Index what was written; the index is a cache: what fails here is caught up later."""
        with contextlib.suppress(sqlite3.Error):
            self.index.add(rows)

    def checkpoint(self) -> tuple[int, str] | None:
        """Make the newest record durable and witness its seq and hash; None if the log is empty.

        Records that are not durable one by one (task.result) reach the witness only
        through the next durable record's chain; a checkpoint (from cron, say) vouches
        for them at once.
        """
        if self.witness is None:
            raise AuditBrokenError("no audit witness is configured",
                                   remedy="Set AUTOOPS_AUDIT_WITNESS (README: Audit witness).")
        with self._locked() as active:
            tail = self._current(active)
            if tail.seq == 0:
                return None
            try:
                os.fsync(active.fd)
            except OSError as exc:
                raise AuditBrokenError(f"cannot sync {self.path}: {exc.strerror}") from exc
            self.db.anchor.advance(tail.seq, tail.hash)
            self.witness.checkpoint(tail.seq, tail.hash)
            return tail.seq, tail.hash

    # -- reading ----------------------------------------------------------------------

    def records(self) -> Iterator[dict[str, Any]]:
        """Every parseable record in order, from where the chain starts (``verify`` checks)."""
        for segment in self._walked():
            for _offset, raw in segments.lines(segment.path):
                with contextlib.suppress(ValueError):
                    rec = json.loads(raw)
                    if isinstance(rec, dict):
                        yield rec

    def query(self, query: Query, limit: int | None = None) -> list[dict[str, Any]]:
        """Matching records, oldest first (the newest ``limit``), read through the index.

        The index is a cache: one that does not match the log is rebuilt, one SQLite cannot
        read is replaced, and if neither helps the segments are read whole.
        """
        for attempt in range(2):
            try:
                self.sync_index(rebuild=attempt > 0)
                found = self._read(self.index.find(query.filters(), limit))
            except sqlite3.DatabaseError:
                self.index.discard()
                continue
            if found is not None:
                return [rec for rec in found if query.matches(rec)]
        scanned = [rec for rec in self.records() if query.matches(rec)]
        return scanned[-limit:] if limit else scanned

    def _read(self, places: Sequence[Any]) -> list[dict[str, Any]] | None:
        """The records at ``places``; None when one is not where the index says."""
        found: list[dict[str, Any]] = []
        handles: dict[int, Any] = {}
        try:
            for where in places:
                fh = handles.get(where.segment)
                if fh is None:
                    try:
                        fh = handles[where.segment] = self.layout.named(where.segment).open("rb")
                    except FileNotFoundError:
                        return None
                fh.seek(where.offset)
                raw = fh.read(where.length)
                try:
                    rec = json.loads(raw)
                except ValueError:
                    return None
                if not isinstance(rec, dict) or rec.get("seq") != where.seq:
                    return None
                found.append(rec)
        finally:
            for fh in handles.values():
                fh.close()
        return found

    def sync_index(self, *, rebuild: bool = False) -> int:
        """Bring the index up to the log (from where it stopped, or from scratch).

        Returns how many records were indexed. Under the writers' lock, so that what
        is indexed is what is there.
        """
        with self._locked():
            if rebuild or not self.index.complete():
                self.index.reset()
            last = self.index.last()
            tail = self.layout.last_line()
            newest = seq_and_hash(tail)[0] if tail is not None else 0
            if last is not None and last.seq == newest and self._at(last):
                return 0
            if last is not None and (last.seq > newest or not self._at(last)):
                self.index.reset()
                last = None
            return self._index_from(last)

    def _at(self, where: Any) -> bool:
        found = self._read([where])
        return found is not None

    def _index_from(self, last: Any) -> int:
        count, rows = 0, []
        for segment in self._walked():
            if last is not None and segment.first_seq < last.segment:
                continue
            start = last.offset + last.length if last is not None and \
                segment.first_seq == last.segment else 0
            for offset, raw in segments.lines(segment.path, start):
                if not raw.endswith(b"\n"):
                    break
                try:
                    rec = json.loads(raw)
                    rows.append((int(rec["seq"]), str(rec["ts"]), str(rec["run_id"]),
                                 str(rec["type"]), str(rec["env"]), str(rec["action"]),
                                 str(rec["actor"]), segment.first_seq, offset, len(raw)))
                except (ValueError, KeyError, TypeError):
                    continue  # not a record: verify names it; the index skips it
                if len(rows) >= 10_000:
                    self.index.add(rows, complete_through=rows[-1][0])
                    count, rows = count + len(rows), []
        newest = seq_and_hash(tail)[0] if (tail := self.layout.last_line()) else 0
        self.index.add(rows, complete_through=rows[-1][0] if rows else newest)
        return count + len(rows)

    def reindex(self) -> int:
        """``audit reindex``: drop the index and rebuild it from the segments."""
        return self.sync_index(rebuild=True)

    def _walked(self) -> list[segments.Segment]:
        """The segments a walk of the chain reads: from the base on, in order."""
        base = self.layout.base()
        return [s for s in self.layout.segments()
                if s.active or base is None or s.first_seq >= base.first_seq]

    # -- verifying --------------------------------------------------------------------

    def verify(self) -> VerifyReport:
        """Walk the chain across every segment, streaming; name the first record not as written."""
        base = self.layout.base()
        walk = _Walk(*((base.first_seq, base.prev) if base else (1, GENESIS)),
                     anchor=self.db.anchor.get(), vouched_by=base.vouched_by if base else None)
        for segment in self._walked():
            problem = walk.segment(segment, self._name(segment))
            if problem is not None:
                return walk.bad(walk.expected, problem)
        last = walk.expected - 1
        if walk.anchor is not None and walk.anchor[0] >= walk.start:
            seq, digest = walk.anchor
            if seq > last:
                return walk.bad(last + 1, f"records {last + 1}..{seq} are missing: state.db "
                                          f"anchors seq {seq} but the log ends at seq {last}")
            if walk.anchored != digest:
                return walk.bad(seq, f"seq {seq} differs from the hash anchored in state.db")
        pruned = None
        if base is not None:
            problem = _vouched(base, walk.vouch)
            if problem is not None:
                return walk.bad(base.first_seq, problem)
            pruned = {"through_seq": base.first_seq - 1, "vouched_by": base.vouched_by}
        return VerifyReport(True, walk.count, from_seq=walk.start, pruned=pruned)

    def _name(self, segment: segments.Segment) -> str:
        return str(segment.path.relative_to(self.layout.root))

    def verify_witness(self, entries: Sequence[WitnessEntry]) -> VerifyReport:
        """The local chain, then every witnessed seq against it.

        What a witness saw must still be here, unchanged: a witnessed seq beyond the
        log's end is a cut tail (even with the anchor moved back), a witnessed hash that
        differs is rewritten history (or a record deleted or inserted before it and the
        chain re-hashed). Local records after the newest witnessed one are not an error:
        task results are not sent one by one, and UDP may lose messages. Witnessed
        records before a prune's base are past vouching for here.
        """
        local = self.verify()
        if not local.ok:
            return local
        count, start = local.records, local.from_seq
        entries = [e for e in entries if e.seq >= start]
        if not entries:
            if count == 0:
                return VerifyReport(True, 0, witness={"entries": 0, "through": 0},
                                    from_seq=start, pruned=local.pruned)
            return VerifyReport(False, count, None,
                                "the witness holds no autoops records to check against (wrong "
                                "file, or a syslog template that drops structured data)",
                                from_seq=start)
        wanted = {e.seq for e in entries}
        recs = {int(rec["seq"]): rec for rec in self.records() if rec.get("seq") in wanted}
        ordered = sorted(entries, key=lambda e: (e.seq, e.line))
        newest = ordered[-1]
        seen: dict[int, WitnessEntry] = {}
        for entry in ordered:
            problem, bad = _witness_problem(entry, recs.get(entry.seq), seen, start + count - 1,
                                            newest)
            if problem is not None:
                return VerifyReport(False, count, bad, problem, from_seq=start)
        return VerifyReport(True, count, witness={"entries": len(entries), "through": newest.seq},
                            from_seq=start, pruned=local.pruned)

    # -- retention --------------------------------------------------------------------

    def prune(self, before: datetime, *, actor: str, archive: Path | None = None
              ) -> dict[str, Any]:
        """Drop the rotated segments wholly older than ``before`` (oldest first).

        The chain is verified first (nothing tampered is ever pruned away); the pruned
        segments may be archived (gzip, fsynced) first; then an ``audit.pruned`` record
        (durable, anchored, witnessed) names the last pruned seq and hash, ``base.json``
        says where the chain now starts, and only then are the files removed. A crash
        anywhere leaves a log that verifies: before the record, the segments are still
        there; after it, ``base.json`` or the segments say where to start.
        """
        report = self.verify()
        if not report.ok:
            raise AuditBrokenError(f"the audit log does not verify ({report.problem}); "
                                   "nothing was pruned",
                                   remedy="Find out what happened first: `autoops audit verify`.")
        cutoff = before.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        doomed: list[segments.Segment] = []
        for segment in self._walked():
            last = None if segment.active else segments.last_line(segment.path)
            if last is None or json.loads(last)["ts"] >= cutoff:
                break  # the active segment, or one with a record too young: keep the rest
            doomed.append(segment)
        if not doomed:
            return {"pruned": 0, "segments": [], "archive": None}
        last_raw = segments.last_line(doomed[-1].path)
        assert last_raw is not None  # noqa: S101 - checked above
        through_seq, through_hash = seq_and_hash(last_raw)
        first = doomed[0].first_seq
        archived = _archive(archive, [s.path for s in doomed]) if archive else None
        names = [self._name(s) for s in doomed]
        record = self.append(run_id="audit-prune", type_="audit.pruned", actor=actor, env="*",
                             action="audit", data={
                                 "first_seq": first, "through_seq": through_seq,
                                 "through_hash": through_hash, "records": through_seq - first + 1,
                                 "segments": names, "before": cutoff, "archive": archived})
        self.layout.write_base(Base(through_seq + 1, through_hash, int(record["seq"])))
        for segment in doomed:
            segment.path.unlink()
        segments.sync_dir(self.layout.rotated_dir)
        with contextlib.suppress(Exception):
            self.index.drop_through(through_seq)
        return {"pruned": through_seq - first + 1, "first_seq": first,
                "through_seq": through_seq, "segments": names, "archive": archived,
                "vouched_by": record["seq"]}


@dataclass
class _Walk:
    """``verify``'s walk: where the chain is, and what it picked up on the way."""

    expected: int
    prev: str
    anchor: tuple[int, str] | None = None
    vouched_by: int | None = None
    count: int = 0
    anchored: str | None = None
    vouch: dict[str, Any] | None = None
    start: int = 0

    def __post_init__(self) -> None:
        self.start = self.expected

    def bad(self, seq: int, problem: str) -> VerifyReport:
        return VerifyReport(False, self.count, seq, problem, from_seq=self.start)

    def segment(self, segment: segments.Segment, name: str) -> str | None:
        """Walk one segment's records; the first problem, named by file and line."""
        misplaced = _misplaced(segment, self.expected, name)
        if misplaced:
            return misplaced
        for number, (_offset, raw) in enumerate(segments.lines(segment.path), start=1):
            if not raw.endswith(b"\n"):
                return f"{name} line {number}: cut off (no final newline)"
            if number == 1 and not segment.active:
                holds = _seq_of(raw)
                if holds is not None and holds != segment.first_seq:
                    return (f"{name} holds records from seq {holds}, not from "
                            f"{segment.first_seq} (segments renamed or reordered)")
            problem, digest = check_line(raw[:-1], self.expected, self.prev)
            if problem:
                return f"{name} line {number}: {problem}"
            if self.expected == self.vouched_by:
                self.vouch = json.loads(raw)
            if self.anchor is not None and self.expected == self.anchor[0]:
                self.anchored = digest
            self.prev, self.expected, self.count = digest, self.expected + 1, self.count + 1
        return None


@dataclass
class _Active:
    """The active segment's fd while the lock is held (rotation replaces it)."""

    fd: int


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _first_line(path: Path) -> bytes | None:
    with contextlib.suppress(FileNotFoundError), path.open("rb") as fh:
        line = fh.readline()
        return line if line.endswith(b"\n") else None
    return None


def _seq_of(raw: bytes) -> int | None:
    try:
        return seq_and_hash(raw.rstrip(b"\n"))[0]
    except (ValueError, KeyError, TypeError):
        return None


def _misplaced(segment: segments.Segment, expected: int, name: str) -> str | None:
    """Why a rotated segment is not the next part of the chain, if it is not."""
    if segment.active or segment.first_seq == expected:
        return None
    if segment.first_seq > expected:
        return (f"records {expected}..{segment.first_seq - 1} are missing before {name} (a "
                "segment deleted, cut short or renamed)")
    return (f"{name} is named for seq {segment.first_seq}, but the chain is at seq {expected} "
            "(segments renamed or reordered)")


def _vouched(base: Base, rec: dict[str, Any] | None) -> str | None:
    """Why ``base.json`` is not what an audit.pruned record in the chain says, if it is not."""
    if rec is None:
        return (f"base.json starts the chain at seq {base.first_seq}, but the record that "
                f"should vouch for it (seq {base.vouched_by}) is not in the log")
    data = rec.get("data") or {}
    if rec.get("type") != "audit.pruned" or data.get("through_seq") != base.first_seq - 1 \
            or data.get("through_hash") != base.prev:
        return (f"base.json starts the chain at seq {base.first_seq} after {base.prev[:12]}…, "
                f"but seq {base.vouched_by} does not say so (base.json edited?)")
    return None


def _archive(path: Path, files: Sequence[Path]) -> dict[str, Any]:
    """The pruned segments, concatenated into one gzip file (fsynced before anything goes)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    digest = hashlib.sha256()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        for name in files:
            gz.write(name.read_bytes())
        gz.close()
        raw.flush()
        os.fsync(raw.fileno())
    with tmp.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    tmp.replace(path)
    segments.sync_dir(path.parent)
    return {"path": str(path), "sha256": digest.hexdigest(), "bytes": path.stat().st_size}


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
