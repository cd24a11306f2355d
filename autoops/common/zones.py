"""Time zones read from fixed places, never from the caller's ``PYTHONTZPATH``.

Change windows and heartbeat schedules both turn wall-clock times into instants; a
fake ``UTC`` planted on a zone path the caller controls must move neither.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Zone data comes from these root-owned places, then the tzdata package, never from
# PYTHONTZPATH (which zoneinfo honours): a fake "UTC" there would move every window
# and every schedule.
SYSTEM_TZPATH = ("/usr/share/zoneinfo", "/usr/lib/zoneinfo", "/usr/share/lib/zoneinfo",
                 "/etc/zoneinfo")
_ZONE_KEY = re.compile(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*")


@functools.lru_cache(maxsize=64)
def zone(key: str) -> ZoneInfo:
    """The time zone ``key`` from the system's zone files (or tzdata), at fixed paths."""
    if not _ZONE_KEY.fullmatch(key):
        raise ZoneInfoNotFoundError(f"not a time zone name: {key!r}")
    for base in SYSTEM_TZPATH:
        path = Path(base, *key.split("/"))
        if path.is_file():
            with path.open("rb") as fh:
                return ZoneInfo.from_file(fh, key=key)
    try:
        data = importlib.resources.files("tzdata.zoneinfo").joinpath(*key.split("/"))
        with data.open("rb") as fh:
            return ZoneInfo.from_file(fh, key=key)
    except (ModuleNotFoundError, FileNotFoundError, IsADirectoryError, ValueError):
        raise ZoneInfoNotFoundError(f"no time zone {key!r}") from None
