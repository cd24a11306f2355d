"""One audit record: its fields, the bytes its hash covers, its line, and the line's check.

A record's hash is sha256 over the canonical JSON of the record without ``hash`` (sorted
keys, no spaces, UTF-8). Its line is that canonical JSON with ``"hash"`` appended as the
last key, so the bytes the hash covers are the line minus a fixed-length suffix: checking
a record costs one sha256 and two anchored regular expressions, not a parse and a
re-serialisation. Lines written by older autoops (``hash`` among the sorted keys) are
still checked, by parsing them: the hash definition never changed.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from autoops.common.canonical import canonical_json

SCHEMA_VERSION = 1
GENESIS = "0" * 64
RECORD_TYPES = (
    "run.requested", "run.decision", "run.started", "task.result", "run.finished",
    "run.interrupted", "secrets.initialised", "secrets.edited", "secrets.rotated",
    "secrets.set", "secrets.unset",
    "lock.stale_released", "grant.keys_created", "grant.created", "grant.revoked",
    "grant.used", "approval.requested", "approval.approved", "approval.rejected",
    "halt.engaged", "halt.lifted",
    "alert.notified", "alert.acked", "alert.silenced", "alert.unsilenced", "alert.tested",
    "heal.started", "heal.finished", "heal.escalated",
    "run.promotion", "deploy.rolled_back", "guard.refused", "audit.pruned",
)
FIELDS = frozenset({"v", "seq", "ts", "run_id", "type", "actor", "env", "action", "data",
                    "prev", "hash"})
_SUFFIX_LEN = len(',"hash":""}') + 64
# The envelope around ``data``: what a line must start and end with to be checked by bytes.
_HEAD = re.compile(rb'\{"action":"[^"\\]*","actor":"[^"\\]*","data":')
_TAIL = re.compile(rb',"env":"[^"\\]*","prev":"([0-9a-f]{64})","run_id":"[^"\\]*",'
                   rb'"seq":([1-9][0-9]{0,17}),"ts":"[^"\\]*","type":"[a-z._]{1,40}",'
                   rb'"v":1,"hash":"([0-9a-f]{64})"\}$')
_TAIL_WINDOW = 320  # the tail's longest form, with room: names are short


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes a record's hash covers: sorted keys, no spaces, UTF-8."""
    return canonical_json({k: v for k, v in record.items() if k != "hash"})


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


def seal(record: dict[str, Any]) -> bytes:
    """Set ``record["hash"]`` and return its line (with the newline)."""
    body = canonical(record)
    digest = hashlib.sha256(body).hexdigest()
    record["hash"] = digest
    return body[:-1] + b',"hash":"' + digest.encode() + b'"}\n'


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def check_line(raw: bytes, expected: int, prev: str) -> tuple[str | None, str]:
    """(problem or None, the line's hash) for a line that should be seq ``expected``.

    The fast path checks the bytes themselves (a line as autoops writes it); anything
    else — older lines, or a line that fails it — is parsed and checked field by field,
    which also says what is wrong.
    """
    if _HEAD.match(raw):
        tail = _TAIL.search(raw, max(0, len(raw) - _TAIL_WINDOW))
        if tail is not None:
            digest = tail.group(3).decode()
            if (int(tail.group(2)) == expected and tail.group(1).decode() == prev
                    and hashlib.sha256(raw[:-_SUFFIX_LEN] + b"}").hexdigest() == digest):
                return None, digest
    return _check_parsed(raw, expected, prev)


def _check_parsed(raw: bytes, expected: int, prev: str) -> tuple[str | None, str]:
    try:
        rec = json.loads(raw)
    except ValueError:
        return "not valid JSON (edited or cut off)", ""
    if not isinstance(rec, dict) or set(rec) != FIELDS:
        return "not an audit record (fields added or removed)", ""
    digest = str(rec["hash"])
    if rec["seq"] != expected:
        return (f"sequence {rec['seq']} where {expected} was expected (deleted, inserted or "
                "moved)"), digest
    if rec["prev"] != prev:
        return "does not chain to the record before it (deleted, inserted or moved)", digest
    if record_hash(rec) != digest:
        return "its content does not match its hash (edited)", digest
    return None, digest


def seq_and_hash(raw: bytes) -> tuple[int, str]:
    """The seq and hash of a line (the writer's own tail); ValueError if it is not a record."""
    tail = _TAIL.search(raw, max(0, len(raw) - _TAIL_WINDOW))
    if tail is not None:
        return int(tail.group(2)), tail.group(3).decode()
    rec = json.loads(raw)
    return int(rec["seq"]), str(rec["hash"])
