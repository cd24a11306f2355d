"""The state directory and ``state.db``: runs in flight, host locks and the audit anchor.

SQLite from the standard library. A run registers itself (pid and the pid's start
time, so a recycled pid is not mistaken for it) before its first audit record; the
next autoops start finds runs whose process is gone and records them as interrupted.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from autoops.common.files import ensure_dir
from autoops.errors import StateError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    pid_start TEXT NOT NULL,
    env TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    started TEXT NOT NULL,
    status TEXT NOT NULL,
    data_dir TEXT
);
CREATE TABLE IF NOT EXISTS host_cache (
    key TEXT PRIMARY KEY,
    hosts TEXT NOT NULL,
    used REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS host_locks (
    env TEXT NOT NULL,
    host TEXT NOT NULL,
    run_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    pid INTEGER NOT NULL,
    pid_start TEXT NOT NULL,
    acquired TEXT NOT NULL,
    PRIMARY KEY (env, host)
);
CREATE TABLE IF NOT EXISTS grants (
    grant_id TEXT PRIMARY KEY,
    env TEXT NOT NULL,
    token TEXT NOT NULL,
    expires TEXT NOT NULL,
    max_uses INTEGER,
    recorded TEXT NOT NULL,
    revoked TEXT,
    revoked_by TEXT,
    revoke_reason TEXT
);
CREATE TABLE IF NOT EXISTS grant_uses (
    grant_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    used TEXT NOT NULL,
    PRIMARY KEY (grant_id, run_id)
);
CREATE TABLE IF NOT EXISTS approval_requests (
    request_id TEXT PRIMARY KEY,
    env TEXT NOT NULL,
    action TEXT NOT NULL,
    requester TEXT NOT NULL,
    plan_digest TEXT NOT NULL,
    plan TEXT NOT NULL,
    created TEXT NOT NULL,
    expires TEXT NOT NULL,
    state TEXT NOT NULL,
    decided_by TEXT,
    decided TEXT,
    reason TEXT,
    used_by TEXT
);
CREATE TABLE IF NOT EXISTS halts (
    scope TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    since TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_anchor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
"""

# Schema changes after the first wave, applied in order (PRAGMA user_version counts them).
_MIGRATIONS = (
    # 1: the first wave's tables (a database made before versioning already has them)
    _SCHEMA,
    # 2: a run's worker process, so that a later autoops can kill it if this one is
    #    killed; halts may be engaged against one actor (the agent they are meant to stop)
    """
    ALTER TABLE runs ADD COLUMN worker_pid INTEGER;
    ALTER TABLE runs ADD COLUMN worker_start TEXT;
    CREATE TABLE halts_v2 (
        scope TEXT NOT NULL,
        reason TEXT NOT NULL,
        actor TEXT NOT NULL,
        since TEXT NOT NULL,
        against TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (scope, against)
    );
    INSERT INTO halts_v2 (scope, reason, actor, since) SELECT scope, reason, actor, since FROM halts;
    DROP TABLE halts;
    ALTER TABLE halts_v2 RENAME TO halts;
    """,
    # 3: host locks keyed by the machine a host reaches (address:port, or "local"), so
    #    that one machine cannot be changed from two environments at once
    """
    DROP TABLE host_locks;
    CREATE TABLE host_locks (
        address TEXT PRIMARY KEY,
        env TEXT NOT NULL,
        host TEXT NOT NULL,
        run_id TEXT NOT NULL,
        actor TEXT NOT NULL,
        pid INTEGER NOT NULL,
        pid_start TEXT NOT NULL,
        acquired TEXT NOT NULL
    );
    """,
)


@dataclass(frozen=True)
class LockHolder:
    """The run holding a lock, and how to tell whether its process still lives."""

    run_id: str
    actor: str
    pid: int
    pid_start: str
    acquired: str

    def to_dict(self) -> dict[str, str | int]:
        return {"run_id": self.run_id, "actor": self.actor, "pid": self.pid,
                "acquired": self.acquired}


@dataclass(frozen=True)
class GrantRow:
    """A grant this machine has seen, with its revocation and how often it was used."""

    grant_id: str
    env: str
    token: str
    expires: str
    max_uses: int | None
    recorded: str
    revoked: str | None
    revoked_by: str | None
    revoke_reason: str | None
    uses: int = 0


@dataclass(frozen=True)
class ApprovalRow:
    """A two-person approval request and what became of it."""

    request_id: str
    env: str
    action: str
    requester: str
    plan_digest: str
    plan: str  # JSON of the plan that was requested
    created: str
    expires: str
    state: str  # pending | approved | rejected
    decided_by: str | None
    decided: str | None
    reason: str | None
    used_by: str | None  # the run that used an approval (each runs once)


@dataclass(frozen=True)
class HaltRow:
    scope: str  # an environment, or "*" for all
    reason: str
    actor: str
    since: str
    against: str = ""  # the actor whose runs it stops (normalised); "" for everyone


@dataclass(frozen=True)
class RunRow:
    run_id: str
    pid: int
    pid_start: str
    env: str
    action: str
    actor: str
    started: str
    status: str
    data_dir: str | None
    worker_pid: int | None = None  # the run's worker process (see runner.py) …
    worker_start: str | None = None  # … and its start time, to tell it from a reused pid


class StateDB:
    """Small transactional store; each call opens and closes its own connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        ensure_dir(path.parent)
        with self._connect() as db:
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
            self._migrate(db)

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        """Bring the schema up to date, one migration per transaction, under a write lock."""
        while True:
            db.execute("BEGIN IMMEDIATE")
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version >= len(_MIGRATIONS):
                db.execute("COMMIT")
                return
            try:
                for statement in _MIGRATIONS[version].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {version + 1}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
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

    def register_run(self, row: RunRow) -> None:
        with self._connect() as db:
            db.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                       (row.run_id, row.pid, row.pid_start, row.env, row.action, row.actor,
                        row.started, row.status, row.data_dir, row.worker_pid,
                        row.worker_start))

    def set_run_worker(self, run_id: str, pid: int, start: str) -> None:
        """Record the run's worker process before it runs anything."""
        with self._connect() as db:
            db.execute("UPDATE runs SET worker_pid=?, worker_start=? WHERE run_id=?",
                       (pid, start, run_id))

    def set_run_status(self, run_id: str, status: str) -> None:
        with self._connect() as db:
            db.execute("UPDATE runs SET status=? WHERE run_id=?", (status, run_id))

    def run(self, run_id: str) -> RunRow | None:
        with self._connect() as db:
            row = db.execute("SELECT run_id, pid, pid_start, env, action, actor, started, "
                             "status, data_dir, worker_pid, worker_start FROM runs "
                             "WHERE run_id=?", (run_id,)).fetchone()
        return RunRow(*row) if row else None

    def running(self) -> list[RunRow]:
        with self._connect() as db:
            rows = db.execute("SELECT run_id, pid, pid_start, env, action, actor, started, "
                              "status, data_dir, worker_pid, worker_start FROM runs "
                              "WHERE status='running'").fetchall()
        return [RunRow(*row) for row in rows]

    def cached_hosts(self, key: str) -> tuple[str, ...] | None:
        with self._connect() as db:
            row = db.execute("SELECT hosts FROM host_cache WHERE key=?", (key,)).fetchone()
        return tuple(json.loads(row[0])) if row else None

    def cache_hosts(self, key: str, hosts: tuple[str, ...]) -> None:
        """Remember a resolved host list; only the 100 newest entries are kept."""
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO host_cache VALUES (?,?,?)",
                       (key, json.dumps(list(hosts)), time.time()))
            db.execute("DELETE FROM host_cache WHERE key NOT IN "
                       "(SELECT key FROM host_cache ORDER BY used DESC LIMIT 100)")

    def anchor(self) -> tuple[int, str] | None:
        with self._connect() as db:
            row = db.execute("SELECT seq, hash FROM audit_anchor WHERE id=1").fetchone()
        return (int(row[0]), str(row[1])) if row else None

    def set_anchor(self, seq: int, digest: str) -> None:
        """Remember the newest durable audit record, so a cut-off tail is detectable."""
        with self._connect() as db:
            db.execute("INSERT INTO audit_anchor VALUES (1,?,?) ON CONFLICT(id) DO UPDATE SET "
                       "seq=excluded.seq, hash=excluded.hash WHERE excluded.seq > seq",
                       (seq, digest))

    def try_lock(self, env: str, hosts: Sequence[str], holder: LockHolder,
                 alive: Callable[[LockHolder], bool],
                 addresses: Sequence[str] | None = None,
                 ) -> tuple[list[LockHolder], list[LockHolder]]:
        """Lock ``hosts`` (by the machines they reach) for ``holder`` unless a live run holds any.

        One IMMEDIATE transaction: two runs racing for the same machines cannot both
        win, whichever environment they come from. Locks of runs that are gone are
        released first. Returns (live holders in the way, stale holders released); the
        lock is taken only when the first is empty.
        """
        targets = dict(zip(addresses or hosts, hosts, strict=True))
        marks = ",".join("?" * len(targets))
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                query = ("SELECT DISTINCT run_id, actor, pid, pid_start, acquired "  # noqa: S608
                         f"FROM host_locks WHERE address IN ({marks})")  # only '?'s
                rows = db.execute(query, tuple(targets)).fetchall()
                holders = [LockHolder(*row) for row in rows]
                stale = [h for h in holders if not alive(h)]
                for gone in stale:
                    db.execute("DELETE FROM host_locks WHERE run_id=?", (gone.run_id,))
                live = [h for h in holders if h not in stale]
                if not live:
                    db.executemany("INSERT INTO host_locks VALUES (?,?,?,?,?,?,?,?)", [
                        (address, env, host, holder.run_id, holder.actor, holder.pid,
                         holder.pid_start, holder.acquired) for address, host in targets.items()])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return live, stale

    def unlock(self, run_id: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM host_locks WHERE run_id=?", (run_id,))

    def locks(self) -> list[tuple[str, str, str, LockHolder]]:
        """(env, host, address, holder) for every lock held."""
        with self._connect() as db:
            rows = db.execute("SELECT env, host, address, run_id, actor, pid, pid_start, "
                              "acquired FROM host_locks ORDER BY env, host").fetchall()
        return [(row[0], row[1], row[2], LockHolder(*row[3:])) for row in rows]

    # -- grants -----------------------------------------------------------------------

    def remember_grant(self, row: GrantRow) -> None:
        """Record a grant once (first sight, or creation); later calls change nothing."""
        with self._connect() as db:
            db.execute("INSERT OR IGNORE INTO grants VALUES (?,?,?,?,?,?,?,?,?)",
                       (row.grant_id, row.env, row.token, row.expires, row.max_uses,
                        row.recorded, None, None, None))

    def grant(self, grant_id: str) -> GrantRow | None:
        with self._connect() as db:
            row = db.execute(_GRANT_SELECT + " WHERE g.grant_id=?", (grant_id,)).fetchone()
        return GrantRow(*row) if row else None

    def grants(self) -> list[GrantRow]:
        with self._connect() as db:
            rows = db.execute(_GRANT_SELECT + " ORDER BY g.recorded").fetchall()
        return [GrantRow(*row) for row in rows]

    def revoke_grant(self, grant_id: str, when: str, actor: str, reason: str) -> bool:
        """Revoke; False when it was already revoked (the first revocation stands)."""
        with self._connect() as db:
            cur = db.execute("UPDATE grants SET revoked=?, revoked_by=?, revoke_reason=? "
                             "WHERE grant_id=? AND revoked IS NULL", (when, actor, reason, grant_id))
        return cur.rowcount == 1

    def use_grant(self, grant_id: str, run_id: str, when: str) -> tuple[GrantRow | None, bool]:
        """Count one use unless revoked or exhausted, in one IMMEDIATE transaction.

        Returns the grant as it was before this use and whether the use was counted.
        """
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                found = db.execute(_GRANT_SELECT + " WHERE g.grant_id=?", (grant_id,)).fetchone()
                row = GrantRow(*found) if found else None
                ok = (row is not None and row.revoked is None
                      and (row.max_uses is None or row.uses < row.max_uses))
                if ok:
                    db.execute("INSERT INTO grant_uses VALUES (?,?,?)", (grant_id, run_id, when))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return row, ok

    # -- two-person approvals ---------------------------------------------------------

    def add_approval_request(self, row: ApprovalRow) -> None:
        with self._connect() as db:
            db.execute("INSERT INTO approval_requests VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       (row.request_id, row.env, row.action, row.requester, row.plan_digest,
                        row.plan, row.created, row.expires, row.state, row.decided_by,
                        row.decided, row.reason, row.used_by))

    def approval_request(self, request_id: str) -> ApprovalRow | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM approval_requests WHERE request_id=?",
                             (request_id,)).fetchone()
        return ApprovalRow(*row) if row else None

    def approval_requests(self) -> list[ApprovalRow]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM approval_requests ORDER BY created").fetchall()
        return [ApprovalRow(*row) for row in rows]

    def decide_approval(self, request_id: str, state: str, actor: str, when: str,
                        reason: str | None) -> bool:
        """Approve or reject a pending request; False if it was no longer pending."""
        with self._connect() as db:
            cur = db.execute("UPDATE approval_requests SET state=?, decided_by=?, decided=?, "
                             "reason=? WHERE request_id=? AND state='pending'",
                             (state, actor, when, reason, request_id))
        return cur.rowcount == 1

    def use_approval(self, request_id: str, run_id: str) -> bool:
        """Mark an approved request used by ``run_id``; False if another run used it."""
        with self._connect() as db:
            cur = db.execute("UPDATE approval_requests SET used_by=? WHERE request_id=? "
                             "AND state='approved' AND used_by IS NULL", (run_id, request_id))
        return cur.rowcount == 1

    # -- emergency stop ---------------------------------------------------------------

    def set_halt(self, row: HaltRow) -> bool:
        """Engage a halt for a scope (and target); False when one is already in force (kept)."""
        with self._connect() as db:
            cur = db.execute("INSERT OR IGNORE INTO halts VALUES (?,?,?,?,?)",
                             (row.scope, row.reason, row.actor, row.since, row.against))
        return cur.rowcount == 1

    def clear_halt(self, scope: str, against: str = "") -> HaltRow | None:
        with self._connect() as db:
            row = db.execute("DELETE FROM halts WHERE scope=? AND against=? RETURNING *",
                             (scope, against)).fetchone()
        return HaltRow(*row) if row else None

    def halts(self) -> list[HaltRow]:
        with self._connect() as db:
            rows = db.execute("SELECT scope, reason, actor, since, against FROM halts "
                              "ORDER BY since").fetchall()
        return [HaltRow(*row) for row in rows]


_GRANT_SELECT = ("SELECT g.grant_id, g.env, g.token, g.expires, g.max_uses, g.recorded, g.revoked, "
                 "g.revoked_by, g.revoke_reason, (SELECT COUNT(*) FROM grant_uses u "
                 "WHERE u.grant_id = g.grant_id) FROM grants g")
