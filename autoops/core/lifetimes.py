"""How long grants and approvals may live: durations, and ceilings that shrink with risk.

Kept apart from ``grants`` (which needs cryptography) so that the pure policy module
can parse and check lifetimes without loading a crypto library.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import timedelta

from autoops.common.durations import format_duration
from autoops.core.risk import Risk

DEFAULT_TTL_CEILINGS: Mapping[Risk, timedelta] = {
    Risk.SAFE: timedelta(days=30), Risk.LOW: timedelta(days=7), Risk.MEDIUM: timedelta(hours=24),
    Risk.HIGH: timedelta(hours=8), Risk.CRITICAL: timedelta(hours=4),
    Risk.DESTRUCTIVE: timedelta(hours=2)}
BREAK_GLASS_CEILING = timedelta(hours=2)


def check_ceilings(ceilings: Mapping[Risk, timedelta]) -> None:
    """A higher class may never keep a grant alive longer than a lower one."""
    ordered = sorted(ceilings.items())
    for (low, low_ttl), (high, high_ttl) in itertools.pairwise(ordered):
        if high_ttl > low_ttl:
            raise ValueError(f"{high.name} ({format_duration(high_ttl)}) may not exceed "
                             f"{low.name} ({format_duration(low_ttl)})")


def ttl_ceiling(max_risk: Risk, break_glass: bool,
                ceilings: Mapping[Risk, timedelta] = DEFAULT_TTL_CEILINGS,
                break_glass_ceiling: timedelta = BREAK_GLASS_CEILING) -> timedelta:
    """The longest a grant up to ``max_risk`` may live; break-glass never over 2 hours."""
    ceiling = ceilings.get(max_risk, DEFAULT_TTL_CEILINGS[max_risk])
    if break_glass:
        return min(ceiling, break_glass_ceiling, BREAK_GLASS_CEILING)
    return ceiling
