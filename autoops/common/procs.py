"""Process facts read from /proc: start times (to tell a pid from its reuse) and trees."""

from __future__ import annotations

import contextlib
import os
import signal
import time
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


def parent_of(pid: int) -> int | None:
    """The parent process of ``pid``, or None if it is gone."""
    fields = stat_fields(pid)
    return int(fields[1]) if fields else None  # field 4 of proc(5)


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


RUN_MARK = "AUTOOPS_RUN_ID"  # set in the environment of a run's worker; every descendant inherits it


def marked(run_id: str) -> list[tuple[int, str]]:
    """(pid, start time) of every live process whose environment carries ``run_id``'s mark.

    ansible's workers call setsid() and survive their parent, so a tree walk cannot find
    them after autoops died; the mark in the environment they all inherited can.
    Processes of other users (unreadable environ) are not seen.
    """
    needle = f"{RUN_MARK}={run_id}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry.name}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            start = process_start_time(int(entry.name))
            if start is not None:
                found.append((int(entry.name), start))
    return found


def kill_recorded(processes: list[tuple[int, str]], wait: float = 5.0) -> list[int]:
    """SIGKILL each (pid, start) that is still that process; return those that are gone.

    A pid whose start time differs was reused by another process and is left alone.
    """
    killed = []
    for pid, start in processes:
        if is_alive(pid, start):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        for pid, _start in processes:  # our own children must be reaped to disappear
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
        if not [p for p, s in processes if is_alive(p, s) and not _zombie(p)]:
            break
        time.sleep(0.02)
    return killed


def _zombie(pid: int) -> bool:
    fields = stat_fields(pid)
    return fields is not None and fields[0] == "Z"


def still_alive(processes: list[tuple[int, str]]) -> list[int]:
    return [pid for pid, start in processes if is_alive(pid, start) and not _zombie(pid)]
