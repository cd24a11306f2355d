"""Private and atomic file writes: the few ways autoops puts bytes on disk.

Private directories are 0700 and refused when others can write them; private files
are created 0600, never overwritten; shared files are replaced in one step.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from autoops.errors import AutoopsError, StateError


def ensure_dir(path: Path) -> Path:
    """Create a private (0700) directory, refusing one that others can write."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.stat()
    except OSError as exc:
        raise StateError(f"cannot use state directory {path}: {exc.strerror}") from exc
    if st.st_mode & 0o022:
        raise StateError(f"{path} is writable by other users (mode {st.st_mode & 0o777:o})",
                         remedy=f"chmod 700 {path}")
    return path


def create_private(path: Path, body: bytes) -> None:
    """Create a private file 0600 in a 0700 directory, durably; never overwrite one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, body)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` in one step: readers see the old content or the new, never half."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def only_one(path: Path, busy: Callable[[], AutoopsError]) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (0600) for the block; taken already: ``busy()``.

    An flock, so a process that dies, even by kill -9, lets go of it at once.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy() from None
        yield
    finally:
        os.close(fd)
