"""Run tickets: how the guard play knows a run is one autoops itself already let through.

Every catalog playbook starts with the pre-flight guard (``autoops.ops.guard``). When
autoops runs the playbook, the gate has already decided, so the guard must pass at once —
but only for that run: a ticket is an HMAC, under a key that only the state directory's
owner can read, of the run id, action, environment, check mode, parameters and hosts. A front-end
cannot make one, and a copied ticket fails on any other run, on other parameters, and once
its run is no longer running (the guard also looks the run up in state.db) or in any process
but that run's own ansible-playbook.

A run on an execution node has no state.db to look in, and the node must not take a job
just because someone could reach it over SSH. Its ticket (``aon1.``) is an Ed25519
signature by the environment's node key, which only the controller holds, over the same
fields, the node it is meant for, the digest of the content the node received and an
expiry; the node holds only the public key (``node-trust/ENV.pub``, installed once) and the
name it has in ``nodes/ENV.yml`` (``node-trust/ENV.name``), checks the signature for that
name, the content and the time, and takes each run id once (:func:`first_use`). So a job
for one node is refused by every other node of the environment.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from autoops.common.canonical import canonical_json
from autoops.common.files import create_private, ensure_dir
from autoops.core.nodes import NODE_NAME
from autoops.errors import StateError
from autoops.guard import grants

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


NODE_PREFIX = "aon1."
NODE_TICKET_TTL = timedelta(minutes=10)  # from the run's start to its guard, on the node


def _node_body(fields: Mapping[str, Any], expires: int) -> bytes:
    return canonical_json({**fields, "expires": expires})


def sign_node(private_pem: bytes, *, run_id: str, action: str, env: str, check_mode: bool,
              params: Mapping[str, Any], hosts: Sequence[str], content: str, node: str,
              expires: datetime) -> str:
    """A node run's ticket for node ``node``: the controller's signature, good until ``expires``."""
    fields = {"run_id": run_id, "action": action, "env": env, "check_mode": bool(check_mode),
              "params": dict(params), "hosts": sorted(hosts), "content": content,
              "node": node}
    until = int(expires.timestamp())
    signature = grants.private_key(private_pem).sign(_node_body(fields, until))
    return f"{NODE_PREFIX}{until}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"


def node_valid(public_pem: bytes, ticket: str, *, run_id: str, action: str, env: str,
               check_mode: bool, params: Mapping[str, Any], hosts: Sequence[str], content: str,
               node: str, now: datetime) -> bool:
    """Whether ``ticket`` is the controller's signature over exactly this run on ``node``, in time."""
    match = re.fullmatch(r"aon1\.([0-9]{1,12})\.([A-Za-z0-9_-]{86})", str(ticket))
    if match is None or int(match.group(1)) < now.timestamp():
        return False
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415

    fields = {"run_id": run_id, "action": action, "env": env, "check_mode": bool(check_mode),
              "params": dict(params), "hosts": sorted(hosts), "content": content,
              "node": node}
    try:
        grants.load_public(public_pem).verify(
            base64.urlsafe_b64decode(match.group(2) + "=="),
            _node_body(fields, int(match.group(1))))
    except (InvalidSignature, ValueError):
        return False
    return True


def ensure_node_key(config_dir: Path, env: str) -> bytes:
    """The environment's node-ticket signing key (private PEM, 0600), made on first use."""
    path = config_dir / "node-keys" / f"{env}.key"
    ensure_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        create_private(path, grants.generate_keypair()[0])
    try:
        return path.read_bytes()
    except OSError as exc:
        raise StateError(f"cannot read the node key {path}: {exc.strerror}") from None


def trusted_node_key(config_dir: Path, env: str) -> bytes | None:
    """On a node: the public key it trusts for ``env``'s runs (``node-trust/ENV.pub``)."""
    try:
        return (config_dir / "node-trust" / f"{env}.pub").read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read the trusted node key for {env}: {exc.strerror}") from None


def node_name(config_dir: Path, env: str) -> str | None:
    """On a node: the name it has in ``env``'s ``nodes/ENV.yml`` (``node-trust/ENV.name``)."""
    path = config_dir / "node-trust" / f"{env}.name"
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(f"cannot read this node's name for {env} ({path}): {exc}") from None
    if not re.fullmatch(NODE_NAME, text):
        raise StateError(f"{path} holds no node name (lowercase letters, digits and '-')",
                         remedy=f"Write the node's name in nodes/{env}.yml into {path}.")
    return text


def expiry_of(ticket: str) -> datetime:
    """When a node ticket (already checked) stops being good."""
    match = re.fullmatch(r"aon1\.([0-9]{1,12})\..*", ticket)
    if match is None:
        raise ValueError("not a node ticket")
    return datetime.fromtimestamp(int(match.group(1)), UTC)


def first_use(seen_dir: Path, run_id: str, expires: datetime) -> bool:
    """Record that this node took ``run_id``; False if it did before (a replayed job).

    Each marker is kept until its ticket expires (its mtime), by this node's clock, the
    one that decided the ticket was still good; then it can go, as the ticket can no
    longer be used.
    """
    ensure_dir(seen_dir)
    now = time.time()
    for old in seen_dir.iterdir():
        with contextlib.suppress(OSError):
            if old.stat().st_mtime < now - 60:
                old.unlink()
    marker = seen_dir / run_id
    try:
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return False
    until = max(expires.timestamp(), now) + 60
    os.utime(marker, (until, until))
    return True
