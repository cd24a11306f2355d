"""The guard's quick path: a run autoops itself decided, recognised by its ticket.

The pre-flight guard runs at the start of every catalog playbook; when ``autoops run``
is the caller it must pass at once, and only for that run. These checks need the
settings and ``state.db`` (or, on an execution node, the trusted key and the content as
received), not the engine, so the guard imports only this much on that path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from autoops.common.names import RUN_ID
from autoops.common.procs import parent_of
from autoops.core.inventory import inventory_path
from autoops.core.plan import content_digest
from autoops.core.policy import Policy
from autoops.errors import AutoopsError, GuardRefusedError
from autoops.guard import tickets
from autoops.run.remote import node_base
from autoops.settings import Settings
from autoops.state.db import StateDB
from autoops.state.runs import RunState


def check(settings: Settings, db: StateDB | None, ticket: str, *, run_id: str, action: str,
          env: str,
          check_mode: bool, params: Mapping[str, Any], hosts: Sequence[str], playbook_pid: int,
          actor: str, now: datetime) -> str:
    """The actor of the running run this ticket is for; GuardRefusedError for any other.

    The ticket must be that run's (HMAC over what it runs, and where), the run still
    running, and ``playbook_pid`` the ansible-playbook its own worker started. On an
    execution node (a signed ``aon1.`` ticket) see :func:`on_node`; the actor is then the
    one the controller passed.
    """
    if ticket.startswith(tickets.NODE_PREFIX):
        on_node(settings, ticket, run_id=run_id, action=action, env=env,
                check_mode=check_mode, params=params, hosts=hosts, playbook_pid=playbook_pid,
                now=now)
        return actor
    row = (db or StateDB(settings.db_path)).runs.get(run_id) if run_id else None
    key = tickets.read_key(settings.state_dir)
    if key is None or row is None or row.status != RunState.RUNNING \
            or (row.action, row.env) != (action, env) \
            or row.worker_pid is None or parent_of(playbook_pid) != row.worker_pid \
            or not tickets.valid(key, ticket, run_id=run_id, action=action, env=env,
                                 check_mode=check_mode, params=params, hosts=hosts):
        raise GuardRefusedError(
            f"the run ticket is not that of a running autoops run of {action} (run "
            f"{run_id or '?'}); nothing ran",
            remedy="Start it with `autoops run`; a ticket is good for its own run only.")
    return row.actor


def on_node(settings: Settings, ticket: str, *, run_id: str, action: str, env: str,
            check_mode: bool, params: Mapping[str, Any], hosts: Sequence[str],
            playbook_pid: int, now: datetime) -> None:
    """On an execution node: pass a ticket the controller signed for this very run.

    The playbook must have been started by the node's own runner (``autoops.node``, which
    checked the job and took its run id once) in a run directory of its own, and the
    ticket verify with the public key this node trusts for ``env``, bind the digest of the
    content as received and not have expired. Nothing is audited here: the controller
    records the guard task from the stream.
    """
    parent = parent_of(playbook_pid)
    base = node_base(settings.home or Path.home()).resolve()
    if parent is None or not _is_node_runner(parent) \
            or base not in settings.project_dir.resolve().parents:
        raise GuardRefusedError(
            f"a node ticket (run {run_id or '?'}) is good only in a run autoops' node "
            "runner started from a job it checked; nothing ran",
            remedy="Runs reach a node through `autoops run`.",
            details={"run_id": run_id or "?"})
    refused = GuardRefusedError(
        f"the node ticket of run {run_id or '?'} ({action} in {env}) does not hold here: "
        "not signed by a controller this node trusts for that environment, for other "
        "parameters, hosts or content, expired, or used before; nothing ran",
        remedy=f"Runs reach a node through `autoops run`; install the controller's key "
               f"(`autoops nodes trust --env {env}`) and autoops' own version on the node.",
        details={"run_id": run_id or "?"})
    try:
        public = tickets.trusted_node_key(settings.config_dir, env)
        name = tickets.node_name(settings.config_dir, env)
        declared = set(Policy.load(settings.policy_path).environments)
        digest = content_digest(settings.project_dir,
                                inventory_path(settings.inventories_dir, env, declared))
    except AutoopsError as exc:
        refused.message = f"{exc.message}; nothing ran"
        raise refused from exc
    if public is None or name is None or not tickets.node_valid(
            public, ticket, run_id=run_id, action=action, env=env, check_mode=check_mode,
            params=params, hosts=hosts, content=digest, node=name, now=now) \
            or not re.fullmatch(RUN_ID, run_id):
        raise refused


def _is_node_runner(pid: int) -> bool:
    """Whether ``pid`` runs ``python3 -I -m autoops.node …`` (an execution node's runner)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(argv[i:i + 2] == [b"-m", b"autoops.node"] for i in range(len(argv)))
