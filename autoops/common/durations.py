"""Durations as operators type them: ``90s``, ``30m``, ``2h``, ``7d``, ``1w``, ``1h30m``.

One parser for grant lifetimes, ``--since`` and anything else that takes a duration.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1),
          "m": timedelta(minutes=1), "s": timedelta(seconds=1)}


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
    """The shortest ``1d2h3m4s`` form (``0s`` for nothing), the inverse of parse_duration."""
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
