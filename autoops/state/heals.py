"""Self-healing attempts: what a runbook did about one finding, and how it ended.

A row is written before the attempt's first step runs (``outcome`` ``running``, with the
healing process's pid and start time) and finished with its outcome, so a heal whose
autoops was killed is found by the next one and counted by the circuit breaker.
``detail`` is JSON the heal service writes (steps, run ids, reasons); not interpreted here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from autoops.state.base import Connections


@dataclass(frozen=True)
class HealRow:
    attempt_id: str
    env: str
    host: str
    finding_id: str
    runbook: str
    started: str
    ended: str | None
    outcome: str  # running, verifying, held, failed, refused, escalated, interrupted
    detail: dict[str, Any]
    pid: int
    pid_start: str


class HealTable:
    def __init__(self, database: Connections) -> None:
        self.database = database

    def add(self, row: HealRow) -> None:
        with self.database.transaction() as db:
            db.execute("INSERT INTO heal_attempts (attempt_id, env, host, finding_id, runbook, "
                       "started, ended, outcome, detail, pid, pid_start) "
                       "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                       (row.attempt_id, row.env, row.host, row.finding_id, row.runbook,
                        row.started, row.ended, row.outcome, json.dumps(row.detail), row.pid,
                        row.pid_start))

    def finish(self, attempt_id: str, outcome: str, detail: dict[str, Any],
               ended: str | None) -> None:
        with self.database.transaction() as db:
            db.execute("UPDATE heal_attempts SET outcome=?, detail=?, ended=? WHERE attempt_id=?",
                       (outcome, json.dumps(detail), ended, attempt_id))

    def of_env(self, env: str) -> list[HealRow]:
        """Every attempt in ``env``, oldest first."""
        with self.database.connect() as db:
            rows = db.execute("SELECT attempt_id, env, host, finding_id, runbook, started, ended, "
                              "outcome, detail, pid, pid_start FROM heal_attempts WHERE env=? "
                              "ORDER BY started, attempt_id", (env,)).fetchall()
        return [HealRow(attempt_id=str(r[0]), env=str(r[1]), host=str(r[2]),
                        finding_id=str(r[3]), runbook=str(r[4]), started=str(r[5]),
                        ended=None if r[6] is None else str(r[6]), outcome=str(r[7]),
                        detail=json.loads(r[8]), pid=int(r[9]), pid_start=str(r[10]))
                for r in rows]
