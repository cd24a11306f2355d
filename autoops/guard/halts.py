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

from autoops.common import identity
from autoops.core.policy import HaltFacts
from autoops.state.db import StateDB
from autoops.state.halts import HaltRow

ALL = "*"
POLL_SECONDS = 0.25  # how often a running run looks at state.db for a halt


@dataclass
class Halts:
    db: StateDB
    clock: Callable[[], datetime]

    def engage(self, scope: str, reason: str, actor: str,
               against: str | None = None) -> tuple[HaltRow, bool]:
        """Halt ``scope`` (for everyone, or only ``against`` one actor's runs).

        Returns the halt in force and whether this call engaged it.
        """
        target = identity.normalise(against) if against else ""
        row = HaltRow(scope=scope, reason=reason, actor=actor, since=self.clock().isoformat(),
                      against=target)
        engaged = self.db.halts.engage(row)
        return (row if engaged else self._in_scope(scope, target) or row), engaged

    def get(self, scope: str, against: str | None = None) -> HaltRow | None:
        return self._in_scope(scope, identity.normalise(against) if against else "")

    def lift(self, scope: str, against: str | None = None) -> HaltRow | None:
        """Lift the halt of exactly ``scope`` (a global halt is lifted only globally)."""
        return self.db.halts.clear(scope, identity.normalise(against) if against else "")

    def active(self) -> list[HaltRow]:
        return self.db.halts.all()

    def for_env(self, env: str, actor: str | None = None) -> HaltFacts | None:
        """The halt stopping ``actor``'s runs in ``env``: its own, else a global one.

        A halt for everyone comes before a halt against this actor; without ``actor``
        only halts for everyone count.
        """
        who = identity.normalise(actor) if actor else None
        rows = [r for r in self.db.halts.all() if r.scope in {env, ALL}
                and (not r.against or r.against == who)]
        rows.sort(key=lambda r: (r.scope != env, bool(r.against)))
        row = rows[0] if rows else None
        return HaltFacts(row.scope, row.reason, row.actor, row.since, row.against or None) \
            if row else None

    def _in_scope(self, scope: str, against: str) -> HaltRow | None:
        return next((row for row in self.db.halts.all()
                     if row.scope == scope and row.against == against), None)

    def watcher(self, env: str, actor: str | None = None,
                monotonic: Callable[[], float] = time.monotonic,
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
                halt = self.for_env(env, actor)
                if halt is not None:
                    seen.append(halt)
            return seen[0] if seen else None
        return poll
