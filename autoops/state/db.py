"""The state database: ``state.db`` in the state directory, and the stores over it.

SQLite from the standard library, in WAL mode. Every store opens a connection per
transaction through the one :class:`Database`, which owns the path, the mode bits
and the migration path: processes (the CLI, a worker, cron, a second operator) share
the file, never a connection, and a long-lived connection would pin an old snapshot.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from autoops.common.files import ensure_dir
from autoops.errors import StateError
from autoops.state.anchor import AnchorTable
from autoops.state.approvals import ApprovalTable
from autoops.state.deploys import DeployTable
from autoops.state.findings import FindingTable
from autoops.state.grants import GrantTable
from autoops.state.halts import HaltTable
from autoops.state.heals import HealTable
from autoops.state.hosts import HostCache
from autoops.state.locks import LockTable
from autoops.state.outbox import OutboxTable
from autoops.state.runs import RunTable
from autoops.state.runstats import RunStatTable
from autoops.state.samples import SampleTable
from autoops.state.schema import MIGRATIONS


class Database:
    """Opens ``state.db`` (creating and migrating it once) and hands out connections."""

    def __init__(self, path: Path) -> None:
        self.path = path
        ensure_dir(path.parent)
        with self.connect() as db:
            # Switching to WAL needs an exclusive lock and fails at once (no busy wait)
            # when another process holds the database: set it once here, and retry.
            for attempt in range(100):
                try:
                    db.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError:
                    if attempt == 99:
                        raise
                    time.sleep(0.05)
            _migrate(db)

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """One connection in autocommit mode; SQLite errors become StateError."""
        try:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise StateError(f"cannot open {self.path}: {exc}") from exc
        try:
            conn.execute("PRAGMA synchronous=FULL")
            yield conn
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: {exc}") from exc
        finally:
            conn.close()
        with contextlib.suppress(OSError):
            self.path.chmod(0o600)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken at once (IMMEDIATE): racing writers wait, then see it."""
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise


def _migrate(db: sqlite3.Connection) -> None:
    """Bring the schema up to date, one migration per transaction, under a write lock."""
    while True:
        db.execute("BEGIN IMMEDIATE")
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version >= len(MIGRATIONS):
            db.execute("COMMIT")
            return
        try:
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {version + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


class StateDB:
    """Every store over one database: what the engine builds its guards from."""

    def __init__(self, path: Path) -> None:
        self.database = Database(path)
        self.path = path
        self.runs = RunTable(self.database)
        self.locks = LockTable(self.database)
        self.grants = GrantTable(self.database)
        self.approvals = ApprovalTable(self.database)
        self.halts = HaltTable(self.database)
        self.anchor = AnchorTable(self.database)
        self.hosts = HostCache(self.database)
        self.findings = FindingTable(self.database)
        self.outbox = OutboxTable(self.database)
        self.samples = SampleTable(self.database)
        self.run_stats = RunStatTable(self.database)
        self.heals = HealTable(self.database)
        self.deploys = DeployTable(self.database)
