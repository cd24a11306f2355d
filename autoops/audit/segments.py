"""Where the audit log's records live: the active segment and the rotated ones.

``audit/audit.jsonl`` is the active segment, the only one appended to. When it passes its
size or its day ends, it is renamed to ``audit/segments/NNNNNNNNNNNN.jsonl`` (its first
seq, zero-padded, so names sort in chain order) and the next record starts a new
``audit.jsonl``. The chain does not restart: a segment's first record names the previous
segment's last hash as its ``prev``, so the segments are one chain cut into files.

After retention (``audit prune``) the oldest segments are gone and ``base.json`` says where
the chain now starts (first seq, the hash before it, and the seq of the ``audit.pruned``
record in the chain that vouches for both). One lock file (``.lock``) serialises every
writer, appends and rotation alike.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from autoops.errors import AuditBrokenError

_ROTATED = re.compile(r"^([0-9]{12})\.jsonl$")


@dataclass(frozen=True)
class Base:
    """Where the chain starts after a prune."""

    first_seq: int
    prev: str
    vouched_by: int  # the seq of the audit.pruned record that says so

    def to_dict(self) -> dict[str, int | str]:
        return {"first_seq": self.first_seq, "prev": self.prev, "vouched_by": self.vouched_by}


@dataclass(frozen=True)
class Segment:
    first_seq: int  # as named (rotated) or as read from its first line (active); 0: empty
    path: Path
    active: bool


class Layout:
    """The audit directory's files, named from the active segment's path."""

    def __init__(self, active: Path) -> None:
        self.active = active
        self.root = active.parent
        self.rotated_dir = self.root / "segments"
        self.base_file = self.root / "base.json"
        self.lock_file = self.root / ".lock"

    def rotated(self) -> list[Segment]:
        """Rotated segments in chain order."""
        try:
            paths = list(self.rotated_dir.iterdir())
        except FileNotFoundError:
            return []
        found = []
        for path in paths:
            match = _ROTATED.fullmatch(path.name)
            if match:
                found.append(Segment(int(match.group(1)), path, False))
        return sorted(found, key=lambda s: s.first_seq)

    def segments(self) -> list[Segment]:
        """Every segment in chain order, the active one last (if it exists)."""
        found = self.rotated()
        if self.active.exists():
            found.append(Segment(first_seq_of(self.active), self.active, True))
        return found

    def rotated_path(self, first_seq: int) -> Path:
        return self.rotated_dir / f"{first_seq:012d}.jsonl"

    def named(self, first_seq: int) -> Path:
        """The file holding the segment that starts at ``first_seq`` now (active or rotated)."""
        rotated = self.rotated_path(first_seq)
        return rotated if rotated.exists() else self.active

    def base(self) -> Base | None:
        try:
            data = json.loads(self.base_file.read_text(encoding="utf-8"))
            return Base(int(data["first_seq"]), str(data["prev"]), int(data["vouched_by"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AuditBrokenError(f"{self.base_file} is not readable: {exc}") from exc

    def write_base(self, base: Base) -> None:
        tmp = self.base_file.with_name(f".base.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps(base.to_dict(), sort_keys=True).encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(self.base_file)
        sync_dir(self.root)

    def rotate(self, first_seq: int) -> Path:
        """Move the active segment (fsynced by the caller) to its rotated name."""
        self.rotated_dir.mkdir(mode=0o700, exist_ok=True)
        target = self.rotated_path(first_seq)
        if target.exists():
            raise AuditBrokenError(f"cannot rotate: {target} exists already")
        self.active.rename(target)
        sync_dir(self.rotated_dir)
        sync_dir(self.root)
        return target

    def last_line(self) -> bytes | None:
        """The newest record's line: the active segment's, or the newest rotated one's."""
        for segment in reversed(self.segments()):
            line = last_line(segment.path)
            if line is not None:
                return line
        return None


def first_seq_of(path: Path) -> int:
    """The seq of a segment's first record (0 when it is empty or unreadable)."""
    try:
        with path.open("rb") as fh:
            line = fh.readline(1 << 20)
    except OSError:
        return 0
    match = re.search(rb'"seq":([0-9]{1,18})[,}]', line)
    if match is None:
        return 0
    with contextlib.suppress(ValueError):
        rec = json.loads(line)
        if isinstance(rec, dict) and isinstance(rec.get("seq"), int):
            return int(rec["seq"])
    return int(match.group(1))


def last_line(path: Path) -> bytes | None:
    """The last complete line of ``path`` (no newline), read backwards; None if empty."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return None
    with fh:
        end = fh.seek(0, os.SEEK_END)
        if end == 0:
            return None
        fh.seek(end - 1)
        if fh.read(1) != b"\n":
            raise AuditBrokenError(f"{path} ends in a partial record")
        pos, buf = end - 1, b""
        while pos > 0:
            step = min(4096, pos)
            pos -= step
            fh.seek(pos)
            buf = fh.read(step) + buf
            idx = buf.rfind(b"\n")
            if idx != -1:
                return buf[idx + 1:]
        return buf


def lines(path: Path, start: int = 0) -> Iterator[tuple[int, bytes]]:
    """(offset, raw line) from byte ``start``.

    Every line ends in a newline but a partial last one, which is how the caller tells it.
    """
    with path.open("rb") as fh:
        fh.seek(start)
        offset = start
        for raw in fh:
            yield offset, raw
            offset += len(raw)


def sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
