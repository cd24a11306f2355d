"""Host locks: at most one run that can change something per host at a time.

A run takes a lock on its environment's resolved hosts after it is approved and
before anything executes, and releases it when it ends. Read-only runs (SAFE, or
check mode) take none and wait for none. A lock whose process died (kill -9, power
loss) is released by the next run that meets it, and that is reported so it can be
audited.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from autoops.common.procs import is_alive
from autoops.core.risk import Risk
from autoops.errors import LockedError
from autoops.state.db import StateDB
from autoops.state.locks import LockHolder

_POLL = 0.2


def needs_lock(risk: Risk, check_mode: bool) -> bool:
    return risk > Risk.SAFE and not check_mode


@dataclass
class Locks:
    db: StateDB
    # Whether a holder still runs: by default its autoops process; the engine also counts
    # the run's worker and ansible processes, so a kill -9 of autoops frees nothing.
    alive: Callable[[LockHolder], bool] = lambda holder: is_alive(holder.pid, holder.pid_start)
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic

    def acquire(self, env: str, hosts: Sequence[str], holder: LockHolder, *, wait: float = 0,
                on_stale: Callable[[LockHolder], None] = lambda _h: None,
                check: Callable[[], None] = lambda: None,
                addresses: Sequence[str] | None = None) -> None:
        """Take the lock, waiting up to ``wait`` seconds; raise LockedError otherwise.

        ``check`` runs before every attempt and may raise to end the wait (a halt, a
        revoked grant): whatever made the run acceptable is re-checked while it waits.
        ``addresses`` are the machines the hosts reach (default: the host names).
        """
        deadline = self.monotonic() + max(wait, 0)
        targets = dict(zip(addresses or hosts, hosts, strict=True))
        while True:
            check()
            live, stale = self.db.locks.try_lock(env, list(targets.values()), holder, self.alive,
                                           addresses=list(targets))
            for gone in stale:
                on_stale(gone)
            if not live:
                return
            remaining = deadline - self.monotonic()
            if remaining <= 0:
                first = live[0]
                raise LockedError(
                    f"{env}: hosts are locked by run {first.run_id} of {first.actor} "
                    f"(pid {first.pid}, since {first.acquired})",
                    details={"holders": [h.to_dict() for h in live]})
            self.sleep(min(_POLL, remaining))

    def holders(self, env: str, hosts: Sequence[str],
                addresses: Sequence[str] | None = None) -> list[tuple[LockHolder, list[str]]]:
        """Live runs holding locks on the machines of ``hosts``, with the hosts each holds."""
        wanted = dict(zip(addresses or hosts, hosts, strict=True))
        held: dict[str, tuple[LockHolder, list[str]]] = {}
        for lock_env, host, address, holder in self.db.locks.held():
            if address in wanted and self.alive(holder):
                shown = host if lock_env == env else f"{host} ({lock_env})"
                held.setdefault(holder.run_id, (holder, []))[1].append(shown)
        return list(held.values())

    def release(self, run_id: str) -> None:
        self.db.locks.unlock(run_id)
