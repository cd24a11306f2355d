"""Runs in flight: who started what, which processes carry it, and how it ended.

A run registers itself (pid and the pid's start time, so a recycled pid is not
mistaken for it) before its first audit record; the next autoops start finds runs
whose process is gone and records them as interrupted.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from autoops.state.base import Connections

_COLUMNS = ("run_id, pid, pid_start, env, action, actor, started, status, data_dir, "
            "worker_pid, worker_start")


class RunState(enum.StrEnum):
    """Where a run is; stored (and shown) as its value."""

    RUNNING = "running"
    FINISHED = "finished"
    REFUSED = "refused"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class RunRow:
    run_id: str
    pid: int
    pid_start: str
    env: str
    action: str
    actor: str
    started: str
    status: str  # a RunState value
    data_dir: str | None
    worker_pid: int | None = None  # the run's worker process (see autoops.run.runner) …
    worker_start: str | None = None  # … and its start time, to tell it from a reused pid


class RunTable:
    def __init__(self, database: Connections) -> None:
        self.database = database

    def register(self, row: RunRow) -> None:
        with self.database.connect() as db:
            db.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                       (row.run_id, row.pid, row.pid_start, row.env, row.action, row.actor,
                        row.started, row.status, row.data_dir, row.worker_pid,
                        row.worker_start))

    def set_worker(self, run_id: str, pid: int, start: str) -> None:
        """Record the run's worker process before it runs anything."""
        with self.database.connect() as db:
            db.execute("UPDATE runs SET worker_pid=?, worker_start=? WHERE run_id=?",
                       (pid, start, run_id))

    def set_state(self, run_id: str, state: RunState) -> None:
        with self.database.connect() as db:
            db.execute("UPDATE runs SET status=? WHERE run_id=?", (state.value, run_id))

    def get(self, run_id: str) -> RunRow | None:
        with self.database.connect() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM runs WHERE run_id=?",  # noqa: S608
                             (run_id,)).fetchone()
        return RunRow(*row) if row else None

    def running(self) -> list[RunRow]:
        with self.database.connect() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM runs WHERE status=?",  # noqa: S608
                              (RunState.RUNNING.value,)).fetchall()
        return [RunRow(*row) for row in rows]
