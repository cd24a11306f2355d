"""Runs whose autoops died: find what is left of them, kill it, record it, free their hosts.

Every command that reads or changes run state calls :meth:`Recovery.recover` first, so
a ``kill -9`` of one autoops is noticed (and cleaned up) by the next.
"""

from __future__ import annotations

import os
import shutil
from functools import cached_property

from autoops.common.procs import is_alive, kill_recorded, marked, process_start_time, still_alive
from autoops.guard.locks import Locks
from autoops.services.context import Context
from autoops.state.locks import LockHolder
from autoops.state.runs import RunRow, RunState


class Recovery:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @cached_property
    def locks(self) -> Locks:
        """Host locks that know a holder lives while any process of its run does."""
        return Locks(self.ctx.db, alive=self.holder_alive)

    def recover(self) -> list[str]:
        """Record runs whose autoops died without finishing (kill -9, power loss).

        Whatever is left of such a run — its worker, ansible-playbook, ansible's setsid()
        workers — is killed first, by recorded pid and start time and by the run's mark
        in their environment; only then are its host locks released. A run with a
        process that cannot be killed keeps its locks and stays "running".
        """
        db, recovered = self.ctx.db, []
        for row in db.runs.running():
            if row.pid_start and is_alive(row.pid, row.pid_start):
                continue
            left = self.processes(row)
            killed = kill_recorded(left)
            if still_alive(left):
                continue  # not ours to kill (another user's): never release its locks
            self.ctx.audit.append(run_id=row.run_id, type_="run.interrupted", actor=row.actor,
                                  env=row.env, action=row.action, data={
                                      "reason": f"autoops process {row.pid} ended without "
                                                "recording run.finished (killed or crashed)",
                                      "killed": killed, "recovered_by_pid": os.getpid()})
            db.runs.set_state(row.run_id, RunState.INTERRUPTED)
            db.locks.unlock(row.run_id)
            for leftover in self.ctx.settings.runs_dir.glob(f"{row.run_id}.*"):
                shutil.rmtree(leftover, ignore_errors=True)
            recovered.append(row.run_id)
        return recovered

    def processes(self, row: RunRow) -> list[tuple[int, str]]:
        """The live processes of a run: its worker and everything carrying its mark."""
        found = set(marked(row.run_id))
        if row.worker_pid and row.worker_start and is_alive(row.worker_pid, row.worker_start):
            found.add((row.worker_pid, row.worker_start))
        own = (os.getpid(), process_start_time(os.getpid()) or "")
        return sorted(found - {own})

    def live_runs(self, run_ids: set[str]) -> set[str]:
        """Those of ``run_ids`` still recorded as running or with a live process."""
        live = set()
        for run_id in run_ids:
            row = self.ctx.db.runs.get(run_id)
            if row is not None and (row.status == RunState.RUNNING or
                                    still_alive(self.processes(row))):
                live.add(run_id)
        return live

    def holder_alive(self, holder: LockHolder) -> bool:
        """A lock holder lives while its autoops does, or any process of its run does."""
        if is_alive(holder.pid, holder.pid_start):
            return True
        row = self.ctx.db.runs.get(holder.run_id)
        return bool(still_alive(self.processes(row))) if row else bool(marked(holder.run_id))
