"""The audit index: where each record is, by what people look it up with.

A SQLite file beside the segments (``audit/index.sqlite``) maps seq → run id, type,
environment, action, actor and time, and → segment and byte offset, so ``audit query``,
``show`` and ``tail`` read only the records they return. It is a cache: the segments stay
the truth. It is written with the records (without fsync: a crash may leave it behind,
never wrong), caught up from the segments when it is behind, and rebuilt from them by
``audit reindex`` or whenever it does not match them.

It knows whether it covers the log without a gap (``coverage``): only a rebuild makes it
complete, and a batch of rows that does not follow the last one (an append whose rows
were lost) makes it incomplete again, so the next query rebuilds it rather than answer
from a part.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
  seq INTEGER PRIMARY KEY, ts TEXT NOT NULL, run_id TEXT NOT NULL, type TEXT NOT NULL,
  env TEXT NOT NULL, action TEXT NOT NULL, actor TEXT NOT NULL,
  segment INTEGER NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS records_run ON records(run_id);
CREATE INDEX IF NOT EXISTS records_actor ON records(actor);
CREATE INDEX IF NOT EXISTS records_env_action ON records(env, action);
CREATE INDEX IF NOT EXISTS records_type ON records(type);
CREATE INDEX IF NOT EXISTS records_ts ON records(ts);
CREATE TABLE IF NOT EXISTS coverage (id INTEGER PRIMARY KEY CHECK (id = 1),
  complete INTEGER NOT NULL, next INTEGER NOT NULL);
"""

Row = tuple[int, str, str, str, str, str, str, int, int, int]
"""seq, ts, run_id, type, env, action, actor, segment (its first seq), offset, length."""


@dataclass(frozen=True)
class Where:
    seq: int
    segment: int
    offset: int
    length: int


@dataclass(frozen=True)
class Filters:
    """What ``audit query`` asks for; None (or empty) is any."""

    action: str | None = None
    env: str | None = None
    actor: str | None = None
    run_id: str | None = None
    types: Sequence[str] = ()
    since: str | None = None  # a ts, in the records' own format


class Index:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # private from the start
            os.close(fd)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")  # a cache: rebuilt from the segments
            db.execute("PRAGMA busy_timeout=10000")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def add(self, rows: Sequence[Row], *, complete_through: int | None = None) -> None:
        """Add rows (in seq order); ``complete_through``: a rebuild covered the log to there."""
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT OR REPLACE INTO records VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            if complete_through is not None:
                db.execute("INSERT OR REPLACE INTO coverage VALUES (1, 1, ?)",
                           (complete_through + 1,))
            elif rows:
                row = db.execute("SELECT complete, next FROM coverage").fetchone()
                follows = (row is None and rows[0][0] == 1) or (  # a log's first record
                    row is not None and row[0] and rows[0][0] == row[1])
                db.execute("INSERT OR REPLACE INTO coverage VALUES (1, ?, ?)",
                           (1 if follows else 0, rows[-1][0] + 1))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def complete(self) -> bool:
        """Whether the rows cover the log without a gap (as far as the index knows)."""
        row = self._connect().execute("SELECT complete FROM coverage").fetchone()
        return bool(row and row[0])

    def last(self) -> Where | None:
        row = self._connect().execute(
            "SELECT seq, segment, offset, length FROM records ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return Where(*row) if row else None

    def first_seq(self) -> int | None:
        row = self._connect().execute("SELECT MIN(seq) FROM records").fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def find(self, filters: Filters, limit: int | None = None) -> list[Where]:
        """Where the matching records are, oldest first (the newest ``limit`` of them)."""
        clauses, args = [], []
        for column, value in (("action", filters.action), ("env", filters.env),
                              ("actor", filters.actor), ("run_id", filters.run_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if filters.types:
            clauses.append(f"type IN ({','.join('?' * len(filters.types))})")
            args.extend(filters.types)
        if filters.since is not None:
            clauses.append("ts >= ?")
            args.append(filters.since)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT seq, segment, offset, length FROM records {where} ORDER BY seq"  # noqa: S608
        if limit:
            sql = f"SELECT * FROM ({sql} DESC LIMIT {int(limit)}) ORDER BY seq"  # noqa: S608
        return [Where(*row) for row in self._connect().execute(sql, args)]

    def drop_through(self, seq: int) -> None:
        self._connect().execute("DELETE FROM records WHERE seq <= ?", (seq,))

    def reset(self) -> None:
        """Forget every row (the caller rebuilds from the segments).

        In place, in a transaction: other processes may have the index open, and a
        database deleted under their feet is one they corrupt. Only a file SQLite no
        longer reads is removed (:meth:`discard`).
        """
        try:
            db = self._connect()
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM records")
            db.execute("DELETE FROM coverage")
            db.execute("COMMIT")
        except sqlite3.DatabaseError:
            self.discard()

    def discard(self) -> None:
        """Remove an index SQLite cannot read (corrupt, or not a database)."""
        self.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
