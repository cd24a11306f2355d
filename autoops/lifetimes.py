"""How long grants and approvals may live: durations, and ceilings that shrink with risk.

Kept apart from ``grants`` (which needs cryptography) so that the pure policy module
can parse and check lifetimes without loading a crypto library.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from datetime import timedelta

from autoops.risk import Risk

_UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1),
          "m": timedelta(minutes=1), "s": timedelta(seconds=1)}
DEFAULT_TTL_CEILINGS: Mapping[Risk, timedelta] = {
    Risk.SAFE: timedelta(days=30), Risk.LOW: timedelta(days=7), Risk.MEDIUM: timedelta(hours=24),
    Risk.HIGH: timedelta(hours=8), Risk.CRITICAL: timedelta(hours=4),
    Risk.DESTRUCTIVE: timedelta(hours=2)}
BREAK_GLASS_CEILING = timedelta(hours=2)


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``7d``, ``1w``, ``1h30m``; always positive."""
    parts = re.findall(r"([0-9]{1,6})([wdhms])", text.strip()) if isinstance(text, str) else []
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ValueError(f"{text!r} is not a duration like 30m, 2h, 1h30m or 7d")
    total = sum((int(n) * _UNITS[u] for n, u in parts), timedelta())
    if total <= timedelta(0):
        raise ValueError(f"{text!r}: a duration must be positive")
    return total


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds <= 0:
        return "0s"
    out = []
    for unit in ("d", "h", "m", "s"):
        size = int(_UNITS[unit].total_seconds())
        count, seconds = divmod(seconds, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)


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
