"""What every service shares: one settings object, one clock, one state database.

The pieces are built on first use, so ``autoops list`` never opens ``state.db`` and
``autoops status`` never loads the age keys; each is built once per process, so every
service sees the same catalog, policy, audit log and guards.
"""

from __future__ import annotations

import pwd
import re
import secrets
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from autoops.audit.log import AuditLog
from autoops.audit.witness import Witness
from autoops.common import identity, reasons
from autoops.common.files import ensure_dir
from autoops.common.identity import Principal
from autoops.common.names import ACTOR_NAME
from autoops.core import nodes
from autoops.core.catalog import Catalog, verdicts
from autoops.core.nodes import EnvNodes
from autoops.core.plan import Content, owned
from autoops.core.policy import Policy
from autoops.errors import BadInputError, EnvUnknownError, ServiceRefusedError
from autoops.guard import grants, tickets
from autoops.guard.approvals import SecondPerson
from autoops.guard.grantstore import GrantStore
from autoops.guard.halts import Halts
from autoops.secrets.redact import Redactor
from autoops.secrets.store import Secrets
from autoops.settings import Settings
from autoops.state.db import StateDB

Clock = Callable[[], datetime]


def new_run_id(now: datetime) -> str:
    """Sortable and unguessable: ``20261122T081500Z-3fa9c1d2``."""
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(4)}"


class Context:
    """One project (catalog, policy, inventories) and one state directory."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.redactor = Redactor()

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog.load(self.settings.catalog_path, self.settings.project_dir,
                            verdicts(self.settings.cache_dir))

    @cached_property
    def policy(self) -> Policy:
        return Policy.load(self.settings.policy_path, verdicts(self.settings.cache_dir))

    @cached_property
    def content(self) -> Content:
        """The project's content; in service mode only root and the service may own it."""
        owners = None
        if self.settings.service is not None:
            owners = frozenset({0, *_uids(self.settings.service.user)})
        return Content(self.settings.project_dir, self.settings.child_environ(), owners)

    @cached_property
    def db(self) -> StateDB:
        return StateDB(self.settings.db_path)

    @cached_property
    def audit(self) -> AuditLog:
        """The audit log; with a witness configured, each durable record is also witnessed."""
        witness = Witness(self.settings.witness) if self.settings.witness else None
        return AuditLog(self.settings.audit_path, self.db, self.redactor, witness=witness)

    @cached_property
    def ticket_key(self) -> bytes:
        """The key of run tickets (see :mod:`autoops.guard.tickets`), created on first use."""
        return tickets.ensure_key(ensure_dir(self.settings.state_dir))

    def node_key(self, env: str) -> bytes:
        """``env``'s node-ticket signing key (Ed25519, private), created on first use."""
        return tickets.ensure_node_key(self.settings.config_dir, env)

    def node_trust(self, env: str) -> bytes:
        """The public half of :meth:`node_key`: what ``env``'s nodes install to trust us."""
        return grants.public_of(self.node_key(env))

    @cached_property
    def halts(self) -> Halts:
        return Halts(self.db, self.clock)

    @cached_property
    def grant_store(self) -> GrantStore:
        return GrantStore(self.settings, self.db, self.policy, self.clock)

    @cached_property
    def second_person(self) -> SecondPerson:
        return SecondPerson(self.db, self.clock)

    def nodes(self, env: str) -> EnvNodes:
        """``env``'s execution nodes (none: its runs execute here).

        Read at each call, so a run that waited sees the file as it is when it starts.
        """
        owners = self.content.owners
        if owners is not None:  # service mode: like the content, root's or the service's
            owned(nodes.path_of(self.settings.project_dir, env), owners)
        return nodes.load(self.settings.project_dir, env, self.settings.home)

    @cached_property
    def secret_store(self) -> Secrets:
        return Secrets(self.settings, set(self.policy.environments), self.clock)

    # -- who, where and why -----------------------------------------------------------

    def principal(self, given: str | None = None) -> Principal:
        """Who is acting.

        In service mode the invoking Unix user, whatever ``given`` says (``--actor`` is
        then only a recorded label); in same-user mode ``given`` or the OS user — an
        assertion, not proof.
        """
        label = checked_actor(given) if given else None
        if self.settings.service is not None:
            name = self.settings.os_user
            return Principal(name, identity.unix_groups(name), label)
        name = label or checked_actor(self.settings.os_user)
        groups = (identity.unix_groups(name) if identity.same(name, self.settings.os_user)
                  else frozenset())
        return Principal(name, groups)

    def actor(self, given: str | None = None) -> str:
        return self.principal(given).name

    def scope(self, env: str | None) -> str:
        """An environment the policy declares, or ``*`` (all of them) for None."""
        if env is None:
            return "*"
        if env not in self.policy.environments:
            raise EnvUnknownError(f"unknown environment {env!r}")
        return env

    def refuse_in_service_mode(self, command: str, sub: str | None = None) -> None:
        """Commands that would hand the caller the service account's powers are refused.

        ``secrets edit`` runs an editor as the service user (an editor runs shells);
        ``lab`` starts containers and writes into the project.
        """
        if self.settings.service is None:
            return
        if command == "lab" or (command, sub) == ("secrets", "edit"):
            what = "secrets edit" if command == "secrets" else "lab"
            raise ServiceRefusedError(
                f"`autoops {what}` is not available in service mode",
                remedy="Use `autoops secrets set --env ENV NAME` (value on stdin)."
                if command == "secrets" else "The lab is a development tool: use same-user mode.")

    def record_admin(self, type_: str, env: str, data: dict[str, Any], *,
                     action: str = "secrets", actor: str | None = None) -> None:
        """Audit a command that is not a run (keys, grants, halts, approvals, secrets)."""
        self.audit.append(run_id=new_run_id(self.clock()), type_=type_,
                          actor=actor or self.settings.os_user, env=env, action=action, data={
                              **data, "os_user": self.settings.os_user,
                              "controller": socket.gethostname()})


def checked_actor(name: str) -> str:
    """An actor name as it may appear in the audit log."""
    if not re.fullmatch(ACTOR_NAME, name):
        raise BadInputError(f"--actor {name!r} is not a valid actor name",
                            remedy="Use letters, digits and . _ @ + - (at most 64).")
    return name


def reason_line(text: str) -> str:
    """A reason for the audit log (see :mod:`autoops.common.reasons`), or BadInputError."""
    try:
        return reasons.one_line(text)
    except ValueError:
        raise BadInputError(f"--reason must say why, in one line of at most "
                            f"{reasons.REASON_MAX} characters") from None


def _uids(user: str) -> set[int]:
    try:
        return {pwd.getpwnam(user).pw_uid}
    except KeyError:
        return set()
