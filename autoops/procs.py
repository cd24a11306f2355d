"""Process facts read from /proc: start times (to tell a pid from its reuse) and trees."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def stat_fields(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/PID/stat (after the command name, which may hold spaces)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if gone."""
    fields = stat_fields(pid)
    return fields[19] if fields else None  # field 22 of proc(5)


def is_alive(pid: int, start: str) -> bool:
    return process_start_time(pid) == start


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = stat_fields(int(entry.name))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def kill_leftovers(before: set[int]) -> list[int]:
    """SIGKILL and reap our descendants that were not there ``before``."""
    leftovers = sorted(descendants(os.getpid()) - before)
    for pid in leftovers:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    for pid in leftovers:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, 0)
    return leftovers
