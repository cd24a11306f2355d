"""The emergency stop: a halt per environment (or for all) kept in state.db.

A halt blocks every new run in its scope (the policy's ``halt`` rule) and running
runs poll for it through ansible-runner's cancel callback, so they stop within a
second or two; the runner then kills anything of the run that is left.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from autoops.policy import HaltFacts
from autoops.state import HaltRow, StateDB

ALL = "*"
POLL_SECONDS = 0.25  # how often a running run looks at state.db for a halt


@dataclass
class Halts:
    db: StateDB
    clock: Callable[[], datetime]

    def engage(self, scope: str, reason: str, actor: str) -> tuple[HaltRow, bool]:
        """Halt ``scope``; (the halt in force, whether this call engaged it)."""
        row = HaltRow(scope=scope, reason=reason, actor=actor, since=self.clock().isoformat())
        engaged = self.db.set_halt(row)
        return (row if engaged else self._in_scope(scope) or row), engaged

    def lift(self, scope: str) -> HaltRow | None:
        """Lift the halt of exactly ``scope`` (a global halt is lifted only globally)."""
        return self.db.clear_halt(scope)

    def active(self) -> list[HaltRow]:
        return self.db.halts()

    def for_env(self, env: str) -> HaltFacts | None:
        """The halt stopping ``env``: its own, else a global one."""
        rows = {row.scope: row for row in self.db.halts()}
        row = rows.get(env) or rows.get(ALL)
        return HaltFacts(row.scope, row.reason, row.actor, row.since) if row else None

    def _in_scope(self, scope: str) -> HaltRow | None:
        return next((row for row in self.db.halts() if row.scope == scope), None)

    def watcher(self, env: str, monotonic: Callable[[], float] = time.monotonic,
                ) -> Callable[[], HaltFacts | None]:
        """A cheap poll for a running run.

        It looks at state.db at most every POLL_SECONDS and, once it has seen a halt,
        keeps returning it.
        """
        seen: list[HaltFacts] = []
        last = [float("-inf")]

        def poll() -> HaltFacts | None:
            if not seen and monotonic() - last[0] >= POLL_SECONDS:
                last[0] = monotonic()
                halt = self.for_env(env)
                if halt is not None:
                    seen.append(halt)
            return seen[0] if seen else None
        return poll
