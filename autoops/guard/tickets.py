"""Run tickets: how the guard play knows a run is one autoops itself already let through.

Every catalog playbook starts with the pre-flight guard (``autoops.ops.guard``). When
autoops runs the playbook, the gate has already decided, so the guard must pass at once —
but only for that run: a ticket is an HMAC, under a key that only the state directory's
owner can read, of the run id, action, environment, check mode, parameters and hosts. A front-end
cannot make one, and a copied ticket fails on any other run, on other parameters, and once
its run is no longer running (the guard also looks the run up in state.db) or in any process
but that run's own ansible-playbook.

A run on an execution node has no state.db to look in. Its ticket is made under a key of
its own, derived from the master key and the run id (:func:`node_key`), which the node
borrows for that run only and holds in a memfd of its run process; the ticket also binds
the digest of the content the node received. The guard believes that key only from the
process that started its ansible-playbook, and only if that is autoops' node runner
(:func:`node_key_from`).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from autoops.common.canonical import canonical_json
from autoops.common.files import create_private
from autoops.common.procs import parent_of
from autoops.errors import StateError

KEY_FILE = "guard.key"
_KEY_BYTES = 32


def ensure_key(state_dir: Path) -> bytes:
    """The ticket key, created (0600) on first use."""
    # made by an earlier (or a concurrent) autoops: use that one
    with contextlib.suppress(FileExistsError):
        create_private(state_dir / KEY_FILE, secrets.token_bytes(_KEY_BYTES))
    key = read_key(state_dir)
    if key is None:
        raise StateError(f"the run-ticket key {state_dir / KEY_FILE} vanished while read")
    return key


def read_key(state_dir: Path) -> bytes | None:
    """The ticket key, or None when autoops never ran a playbook with this state directory."""
    path = state_dir / KEY_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read the run-ticket key {path}: {exc.strerror}") from exc
    try:
        st = os.fstat(fd)
        if st.st_mode & 0o077 or st.st_uid != os.getuid():
            raise StateError(f"{path} is readable by others or not ours (mode "
                             f"{st.st_mode & 0o777:o})", remedy=f"rm {path} (a new one is made)")
        key = os.read(fd, _KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(key) != _KEY_BYTES:
        raise StateError(f"{path} is not a run-ticket key", remedy=f"rm {path} (a new one is made)")
    return key


def issue(key: bytes, *, run_id: str, action: str, env: str, check_mode: bool,
          params: Mapping[str, Any], hosts: Sequence[str], content: str | None = None) -> str:
    """The ticket of one run: binds everything the guard would otherwise decide on."""
    fields = {"run_id": run_id, "action": action, "env": env, "check_mode": bool(check_mode),
              "params": dict(params), "hosts": sorted(hosts)}
    if content is not None:  # a node's ticket: the content it must have received
        fields["content"] = content
    return "aot1." + hmac.new(key, canonical_json(fields), hashlib.sha256).hexdigest()


def valid(key: bytes, ticket: str, *, run_id: str, action: str, env: str, check_mode: bool,
          params: Mapping[str, Any], hosts: Sequence[str], content: str | None = None) -> bool:
    expected = issue(key, run_id=run_id, action=action, env=env, check_mode=check_mode,
                     params=params, hosts=hosts, content=content)
    return hmac.compare_digest(expected.encode(), str(ticket).encode())


def node_key(master: bytes, run_id: str) -> bytes:
    """The key of one node run's ticket: opens that run's ticket and no other."""
    return hmac.new(master, b"autoops-node-run\0" + run_id.encode(), hashlib.sha256).digest()


_NODE_KEY_PATH = re.compile(r"^/proc/([0-9]+)/fd/([0-9]+)$")
NODE_RUNNER = ("-m", "autoops.run.runner", "node")


def node_key_from(path: str, playbook_pid: int) -> bytes:
    """The run key a node's run process lends its ansible-playbook; StateError otherwise.

    ``path`` must be a memfd of the playbook's parent, and that parent must be autoops'
    node runner (``python3 -I -m autoops.run.runner node``): a front-end that sets the
    variable itself cannot make its own key count.
    """
    match = _NODE_KEY_PATH.fullmatch(path)
    parent = parent_of(playbook_pid)
    if match is None or parent is None or int(match.group(1)) != parent:
        raise StateError(f"{path!r} is not held by the process that started this playbook")
    try:
        argv = Path(f"/proc/{parent}/cmdline").read_bytes().split(b"\0")
        text = Path(path).read_text(encoding="ascii").strip()
        key = bytes.fromhex(text)
    except (OSError, ValueError):
        raise StateError(f"cannot read the node run key at {path}") from None
    words = [w.decode(errors="replace") for w in argv]
    if not any(tuple(words[i:i + 3]) == NODE_RUNNER for i in range(len(words))) \
            or len(key) != _KEY_BYTES:
        raise StateError("the process that started this playbook is not autoops' node runner")
    return key
