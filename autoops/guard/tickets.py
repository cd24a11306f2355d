"""Run tickets: how the guard play knows a run is one autoops itself already let through.

Every catalog playbook starts with the pre-flight guard (``autoops.ops.guard``). When
autoops runs the playbook, the gate has already decided, so the guard must pass at once —
but only for that run: a ticket is an HMAC, under a key that only the state directory's
owner can read, of the run id, action, environment, check mode, parameters and hosts. A front-end
cannot make one, and a copied ticket fails on any other run, on other parameters, and once
its run is no longer running (the guard also looks the run up in state.db) or in any process
but that run's own ansible-playbook.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from autoops.common.canonical import canonical_json
from autoops.common.files import create_private
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
          params: Mapping[str, Any], hosts: Sequence[str]) -> str:
    """The ticket of one run: binds everything the guard would otherwise decide on."""
    body = canonical_json({"run_id": run_id, "action": action, "env": env,
                           "check_mode": bool(check_mode), "params": dict(params),
                           "hosts": sorted(hosts)})
    return "aot1." + hmac.new(key, body, hashlib.sha256).hexdigest()


def valid(key: bytes, ticket: str, *, run_id: str, action: str, env: str, check_mode: bool,
          params: Mapping[str, Any], hosts: Sequence[str]) -> bool:
    expected = issue(key, run_id=run_id, action=action, env=env, check_mode=check_mode,
                     params=params, hosts=hosts)
    return hmac.compare_digest(expected.encode(), str(ticket).encode())
