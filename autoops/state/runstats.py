"""Counters of finished runs and watch runs, kept for ``autoops metrics``.

Prometheus counters may only go up between scrapes, and every autoops command is a
short-lived process: what one counted in memory would be gone at its exit. So each
finished run adds to its row here, in one transaction, and the metrics file is
rendered from these rows. Durations are kept as histogram bucket counts in JSON —
upper bound (``"0.5"`` … ``"+Inf"``) → runs in that bucket alone, not cumulative — so
the bounds can change later without a migration (old keys keep their meaning).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from autoops.state.base import Connections

DURATION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
"""Upper bounds in seconds: a refusal takes well under a second, a deploy minutes."""


@dataclass(frozen=True)
class RunStatRow:
    """Every finished run of one action in one environment that ended with one status."""

    action: str
    env: str
    exit_status: int
    count: int
    seconds: float  # the sum of their durations
    buckets: dict[str, int]  # upper bound → runs in that bucket (not cumulative)


@dataclass(frozen=True)
class WatchStatRow:
    """Every completed watch run of one environment that ended with one status."""

    env: str
    exit_status: int
    count: int
    last_ended: float  # Unix time the newest of them ended


def bucket_of(seconds: float) -> str:
    """The key of the smallest bucket that holds ``seconds``."""
    bound = next((b for b in DURATION_BUCKETS if seconds <= b), math.inf)
    return le_text(bound)


def le_text(bound: float) -> str:
    """A bucket bound as Prometheus writes ``le``: ``0.5``, ``1.0``, ``+Inf``."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


class RunStatTable:
    def __init__(self, database: Connections) -> None:
        self.database = database

    def add_run(self, action: str, env: str, exit_status: int, seconds: float) -> None:
        """Count one finished run (read-modify-write in one IMMEDIATE transaction)."""
        seconds = max(float(seconds), 0.0)
        with self.database.transaction() as db:
            found = db.execute("SELECT buckets FROM run_stats WHERE action=? AND env=? AND "
                               "exit_status=?", (action, env, exit_status)).fetchone()
            buckets: dict[str, int] = json.loads(found[0]) if found else {}
            key = bucket_of(seconds)
            buckets[key] = buckets.get(key, 0) + 1
            db.execute("INSERT INTO run_stats VALUES (?,?,?,1,?,?) "
                       "ON CONFLICT(action, env, exit_status) DO UPDATE SET "
                       "count=count+1, seconds=seconds+excluded.seconds, "
                       "buckets=excluded.buckets",
                       (action, env, exit_status, seconds, json.dumps(buckets, sort_keys=True)))

    def runs(self) -> list[RunStatRow]:
        with self.database.connect() as db:
            rows = db.execute("SELECT action, env, exit_status, count, seconds, buckets "
                              "FROM run_stats ORDER BY action, env, exit_status").fetchall()
        return [RunStatRow(str(action), str(env), int(status), int(count), float(seconds),
                           _every_bucket(json.loads(buckets)))
                for action, env, status, count, seconds, buckets in rows]

    def add_watch(self, env: str, exit_status: int, ended: float) -> None:
        """Count one completed watch run that ended at Unix time ``ended``."""
        with self.database.transaction() as db:
            db.execute("INSERT INTO watch_stats VALUES (?,?,1,?) "
                       "ON CONFLICT(env, exit_status) DO UPDATE SET count=count+1, "
                       "last_ended=max(last_ended, excluded.last_ended)",
                       (env, exit_status, float(ended)))

    def watches(self) -> list[WatchStatRow]:
        with self.database.connect() as db:
            rows = db.execute("SELECT env, exit_status, count, last_ended FROM watch_stats "
                              "ORDER BY env, exit_status").fetchall()
        return [WatchStatRow(str(env), int(status), int(count), float(last))
                for env, status, count, last in rows]


def _every_bucket(kept: dict[str, int]) -> dict[str, int]:
    """Every current bound (0 where nothing fell), and any older bound a row still holds.

    Each series then has the same buckets, as ``sum by (le)`` and ``histogram_quantile``
    across environments need.
    """
    return {**{le_text(b): 0 for b in (*DURATION_BUCKETS, math.inf)},
            **{str(k): int(v) for k, v in kept.items()}}
