"""``autoops heartbeat run NAME -- COMMAND``: run a job and leave the record watch reads.

The record (``DIR/NAME.json``) says when the job last started and finished, how it
ended, how long it took, when it last succeeded and its recent start times (so "ran
too often" can be seen; a start after a failed run is a retry, and counts apart). It
is rewritten atomically under a lock, so two overlapping runs of one job both count.
The command is run from its argv, never through a shell; SIGTERM and SIGINT are
passed on to it, and autoops exits with its exit status.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from autoops.common.files import write_atomic
from autoops.errors import BadInputError, StateError

DEFAULT_DIR = Path("/var/lib/autoops/heartbeats")
KEEP_STARTS = 20
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@._-")


def check_name(name: str) -> str:
    if not (1 <= len(name) <= 64 and set(name) <= _NAME_CHARS and name[0].isalnum()):
        raise BadInputError(f"heartbeat name {name!r} is not a plain name",
                            remedy="Use letters, digits, '@', '.', '_' and '-' (up to 64), "
                                   "as declared in watch_heartbeats.")
    return name


class Record:
    """One job's record file; each change is read, changed and written under its lock."""

    def __init__(self, directory: Path, name: str, clock: Callable[[], float] = time.time) -> None:
        self.path = directory / f"{check_name(name)}.json"
        self.name = name
        self.clock = clock

    def read(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {"name": self.name}
        return doc if isinstance(doc, dict) else {"name": self.name}

    def _directory(self) -> None:
        """Readable by the watch's login (it may not be the job's user); writable by no other."""
        directory = self.path.parent
        try:
            directory.mkdir(mode=0o755, parents=True, exist_ok=True)
            mode = directory.stat().st_mode
        except OSError as exc:
            raise StateError(f"cannot use heartbeat directory {directory}: {exc.strerror}",
                             remedy="Create it for the job's user, or pass --dir.") from exc
        if mode & 0o022:
            raise StateError(f"{directory} is writable by other users (mode {mode & 0o777:o})",
                             remedy=f"chmod go-w {directory}")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        self._directory()
        fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            doc = self.read()
            yield doc
            write_atomic(self.path, (json.dumps(doc, sort_keys=True) + "\n").encode(), 0o644)
        finally:
            os.close(fd)

    def started(self) -> float:
        at = self.clock()
        with self._locked() as doc:
            starts = [s for s in doc.get("starts", []) if isinstance(s, (int, float))]
            retries = [s for s in doc.get("retries", []) if isinstance(s, (int, float))]
            if doc.get("exit_status") not in (0, None):  # run again after a failure
                retries = [*retries, at][-KEEP_STARTS:]
            doc.update(name=self.name, started=at, pid=os.getpid(),
                       starts=[*starts, at][-KEEP_STARTS:], retries=retries)
        return at

    def finished(self, began: float, status: int) -> None:
        at = self.clock()
        with self._locked() as doc:
            doc.update(name=self.name, finished=at, exit_status=status,
                       duration_seconds=round(at - began, 3))
            if doc.get("started") != began:  # an overlapping run started after this one
                doc["overlapped"] = True
            if status == 0:
                doc["last_success"] = at


def run(directory: Path, name: str, argv: Sequence[str],
        clock: Callable[[], float] = time.time) -> int:
    """Record the start, run ``argv``, record the end; the command's exit status."""
    if not argv:
        raise BadInputError("heartbeat run needs a command after `--`",
                            remedy="Run `autoops heartbeat run NAME -- COMMAND [ARGS…]`.")
    record = Record(directory, name, clock)
    began = record.started()
    try:
        child = subprocess.Popen(list(argv))
    except OSError as exc:
        record.finished(began, 127)
        raise BadInputError(f"cannot run {argv[0]!r}: {exc.strerror or exc}",
                            remedy="Give the command's full path after `--`.") from None

    def forward(signum: int, _frame: FrameType | None) -> None:
        child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        status = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    exit_status = status if status >= 0 else 128 - status  # killed by a signal: 128 + N
    record.finished(began, exit_status)
    return exit_status
