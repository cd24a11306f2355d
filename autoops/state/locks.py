"""Host locks, keyed by the machine a host reaches (address:port, or ``local``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from autoops.state.base import Connections


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


class LockTable:
    def __init__(self, database: Connections) -> None:
        self.database = database

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
        with self.database.transaction() as db:
            query = ("SELECT DISTINCT run_id, actor, pid, pid_start, acquired "  # noqa: S608
                     f"FROM host_locks WHERE address IN ({marks})")  # only '?'s
            holders = [LockHolder(*row) for row in db.execute(query, tuple(targets)).fetchall()]
            stale = [h for h in holders if not alive(h)]
            for gone in stale:
                db.execute("DELETE FROM host_locks WHERE run_id=?", (gone.run_id,))
            live = [h for h in holders if h not in stale]
            if not live:
                db.executemany("INSERT INTO host_locks VALUES (?,?,?,?,?,?,?,?)", [
                    (address, env, host, holder.run_id, holder.actor, holder.pid,
                     holder.pid_start, holder.acquired) for address, host in targets.items()])
        return live, stale

    def unlock(self, run_id: str) -> None:
        with self.database.connect() as db:
            db.execute("DELETE FROM host_locks WHERE run_id=?", (run_id,))

    def held(self) -> list[tuple[str, str, str, LockHolder]]:
        """(env, host, address, holder) for every lock held."""
        with self.database.connect() as db:
            rows = db.execute("SELECT env, host, address, run_id, actor, pid, pid_start, "
                              "acquired FROM host_locks ORDER BY env, host").fetchall()
        return [(row[0], row[1], row[2], LockHolder(*row[3:])) for row in rows]
