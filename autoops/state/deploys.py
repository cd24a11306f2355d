"""Deploys and rollbacks as they ended: which commit an environment runs and verified, when.

One row per executed deploy or deploy-rollback run, written by the deploy service once
the run's end is recorded. The promotion gate reads it; the audit log stays the record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from autoops.state.base import Connections


@dataclass(frozen=True)
class DeployRow:
    run_id: str
    env: str
    app: str
    commit: str
    operation: str  # deploy | rollback
    outcome: str  # verified | rolled_back | failed
    finished: str  # ISO time
    hosts: tuple[str, ...]


class DeployTable:
    def __init__(self, database: Connections) -> None:
        self.database = database

    def add(self, row: DeployRow) -> None:
        with self.database.transaction() as db:
            db.execute("INSERT OR REPLACE INTO deploys (run_id, env, app, commit_id, operation, "
                       "outcome, finished, hosts) VALUES (?,?,?,?,?,?,?,?)",
                       (row.run_id, row.env, row.app, row.commit, row.operation, row.outcome,
                        row.finished, json.dumps(list(row.hosts))))

    def of_app(self, env: str, app: str, limit: int = 50) -> list[DeployRow]:
        """The newest ``limit`` deploys and rollbacks of ``app`` in ``env``, newest first."""
        with self.database.connect() as db:
            rows = db.execute("SELECT run_id, env, app, commit_id, operation, outcome, finished, "
                              "hosts FROM deploys WHERE env=? AND app=? "
                              "ORDER BY finished DESC, run_id DESC LIMIT ?",
                              (env, app, limit)).fetchall()
        return [DeployRow(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]),
                          str(r[6]), tuple(json.loads(r[7]))) for r in rows]
