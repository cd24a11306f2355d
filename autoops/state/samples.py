"""Counters watch remembers between runs (restart counts per service), one row per series.

Bodies are JSON the watch package writes and reads (autoops.watch.restarts); the
store keeps them per (env, host, series) and does not interpret them.
"""

from __future__ import annotations

from autoops.state.base import Connections


class SampleTable:
    def __init__(self, database: Connections) -> None:
        self.database = database

    def of_host(self, env: str, host: str) -> dict[str, str]:
        with self.database.connect() as db:
            rows = db.execute("SELECT series, body FROM watch_samples WHERE env=? AND host=?",
                              (env, host)).fetchall()
        return {str(series): str(body) for series, body in rows}

    def replace(self, env: str, host: str, bodies: dict[str, str], updated: str) -> None:
        """The host's series after this run: the ones given are kept, the rest dropped."""
        with self.database.transaction() as db:
            db.execute("DELETE FROM watch_samples WHERE env=? AND host=?", (env, host))
            db.executemany("INSERT INTO watch_samples VALUES (?,?,?,?,?)",
                           [(env, host, series, body, updated)
                            for series, body in sorted(bodies.items())])
