"""What a front-end's run reports back: its task results and its end, into the same audit.

A run that AWX, Semaphore or a plain ansible-playbook executes was let through by the
guard play (:meth:`autoops.services.running.Runs.admit`); the ``autoops.ops.audit``
callback then reports each task result and the play recap here. The records are the
ones ``autoops run`` writes (``task.result``, ``run.finished``), redacted the same way, so
``autoops audit query`` shows runs from every front door alike. An emergency stop reaches
such a run at its next task (the callback ends ansible-playbook there).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import datetime
from functools import cached_property
from typing import Any

from autoops.core.policy import HaltFacts
from autoops.errors import SecretsError
from autoops.run.runner import HostResult, RunOutcome
from autoops.services.context import Context
from autoops.services.metrics import Metrics
from autoops.services.recovery import Recovery
from autoops.services.verdicts import classify
from autoops.state.runs import RunRow, RunState


class Reports:
    """One admitted run's reports (the callback holds one per playbook run)."""

    def __init__(self, ctx: Context, recovery: Recovery, run_id: str) -> None:
        self.ctx, self.recovery, self.run_id = ctx, recovery, run_id
        self.results: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self._halt_watch: Callable[[], HaltFacts | None] | None = None

    @cached_property
    def row(self) -> RunRow:
        row = self.ctx.db.runs.get(self.run_id)
        if row is None or row.status != RunState.RUNNING:
            raise LookupError(f"run {self.run_id} is not running")
        self._redact_secrets(row.env)
        return row

    def _redact_secrets(self, env: str) -> None:
        """Mask the environment's secret values in what is recorded, as ``autoops run`` does."""
        try:
            self.ctx.redactor.add(self.ctx.secret_store.load_for_run(env).values)
        except SecretsError as exc:  # the playbook could not have read them either
            self.warnings.append(f"secrets not loaded for redaction: {exc.message}")

    def _record(self, type_: str, data: dict[str, Any], *, durable: bool) -> None:
        row = self.row
        self.ctx.audit.append(run_id=self.run_id, type_=type_, actor=row.actor, env=row.env,
                              action=row.action, data=data, durable=durable)

    def result(self, result: HostResult) -> None:
        data = self.ctx.redactor(result.to_dict())
        self.results.append(data)
        self._record("task.result", data, durable=False)

    def halt(self) -> HaltFacts | None:
        """An emergency stop now in force for this run (polled cheaply, at task starts)."""
        if self._halt_watch is None:
            row = self.row
            self._halt_watch = self.ctx.halts.watcher(row.env, row.actor)
        return self._halt_watch()

    def halted(self, halt: HaltFacts) -> int:
        """Record the run stopped by ``halt`` before its next task; the exit status (7)."""
        self._record("run.interrupted", {"reason": f"halted: {halt.describe()}",
                                         "halt": asdict(halt)}, durable=True)
        return self._end(RunOutcome(status="canceled", rc=-1), halt)

    def finished(self, stats: Mapping[str, Mapping[str, int]], *, completed: bool) -> int:
        """Record the end (``completed``: the play recap was reached); the exit status."""
        return self._end(RunOutcome(status="successful" if completed else "failed",
                                    rc=0 if completed else 2,
                                    stats={h: dict(s) for h, s in stats.items()}), None)

    def _end(self, outcome: RunOutcome, halt: HaltFacts | None) -> int:
        row = self.row
        status, error = classify(outcome, self.run_id, halt, self.results, sorted(outcome.stats))
        self._record("run.finished", {
            "status": status.name.lower(), "exit_status": int(status),
            "runner_status": outcome.status, "rc": outcome.rc, "stats": outcome.stats,
            "errors": [], "warnings": self.warnings,
            "error": error.to_dict() if error else None}, durable=True)
        self.ctx.db.runs.set_state(self.run_id, RunState.FINISHED)
        self.recovery.locks.release(self.run_id)
        seconds = (self.ctx.clock() - datetime.fromisoformat(row.started)).total_seconds()
        Metrics(self.ctx).run_ended(row.action, row.env, status, max(seconds, 0.0))
        return int(status)
