"""Restart loops from restart counters remembered between watch runs (Monit's "N restarts in M cycles").

A host reports what its manager counts: systemd's ``NRestarts``, Docker's
``RestartCount``; supervisord counts nothing, so a changed PID is one restart. The
controller keeps each service's samples for the window and turns them into "restarted
N times in the last 15 minutes". Counters that go backwards (a reboot, a re-created
container) start a new run of counting instead of hiding restarts or inventing them.
Pure: the caller stores the samples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Sample:
    at: datetime
    total: int  # restarts seen since this service was first watched (never decreases)
    counter: int | None  # what the manager reported, if it counts
    marker: str | None  # the process the manager ran (a PID, a start time)


def advance(history: Sequence[Sample], at: datetime, counter: int | None, marker: str | None,
            window: timedelta) -> tuple[list[Sample], int]:
    """The samples to keep after this reading, and the restarts within ``window``."""
    if not history:
        kept = [Sample(at, 0, counter, marker)]
        return kept, 0
    last = history[-1]
    if counter is not None and last.counter is not None:
        step = counter - last.counter if counter >= last.counter else counter
    elif counter is None and marker is not None and last.marker is not None:
        step = int(marker != last.marker)
    else:
        step = 0
    # a process that is down has no marker: the one before stands, so down-then-up with a
    # new PID is one restart
    current = Sample(at, last.total + step, counter, marker if marker is not None else last.marker)
    recent = [s for s in history if s.at >= at - window]
    # the oldest sample in the window is the baseline; with none (watch runs further
    # apart than the window), the restarts since the last run are what is known
    base = recent[0] if recent else last
    return [*recent, current], current.total - base.total


def to_list(samples: Sequence[Sample]) -> list[dict[str, Any]]:
    return [{"at": s.at.isoformat(), "total": s.total, "counter": s.counter, "marker": s.marker}
            for s in samples]


def from_list(docs: Sequence[Mapping[str, Any]]) -> list[Sample]:
    return [Sample(datetime.fromisoformat(d["at"]), int(d["total"]),
                   None if d.get("counter") is None else int(d["counter"]),
                   None if d.get("marker") is None else str(d["marker"])) for d in docs]
