"""A plan: the exact thing a run would do (action, params, env, hosts, content digest).

The digest binds approvals and audit records to the content that would run: the
catalog, policy, ansible.cfg, playbooks, roles, plugins and the environment's inventory.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from autoops import inventory
from autoops.catalog import ResolvedAction
from autoops.errors import CheckUnsupportedError

CONTENT_ROOTS = ("ansible.cfg", "catalog.yml", "policy.yml", "playbooks", "roles",
                 "collections", "filter_plugins")


class HostCache(Protocol):
    """Resolved host lists keyed by content digest and limit (state.db implements it)."""

    def cached_hosts(self, key: str) -> tuple[str, ...] | None: ...

    def cache_hosts(self, key: str, hosts: tuple[str, ...]) -> None: ...


@dataclass(frozen=True)
class Plan:
    resolved: ResolvedAction
    env: str
    inventory: Path
    limit: str | None
    hosts: tuple[str, ...]
    check_mode: bool
    content_digest: str
    revision: str | None

    @property
    def action_name(self) -> str:
        return self.resolved.action.name

    def to_dict(self) -> dict[str, Any]:
        action = self.resolved.action
        return {
            "action": action.name,
            "description": action.description,
            "playbook": action.playbook,
            "risk": action.risk.name,
            "env": self.env,
            "params": dict(self.resolved.params),
            "limit": self.limit,
            "hosts": list(self.hosts),
            "check_mode": self.check_mode,
            "content_digest": self.content_digest,
            "revision": self.revision,
            "rollback": action.rollback,
        }


def build(resolved: ResolvedAction, env: str, project_dir: Path, declared_envs: set[str],
          limit: str | None = None, *, check_mode: bool = False,
          host_cache: HostCache | None = None) -> Plan:
    """Derive the inventory from the env name, resolve hosts and digest the content."""
    if check_mode and not resolved.action.check_mode:
        raise CheckUnsupportedError(f"{resolved.action.name} does not support check mode")
    inv = inventory.inventory_path(project_dir / "inventories", env, declared_envs)
    limit = inventory.check_limit(limit)
    digest = content_digest(project_dir, inv)
    # ansible.cfg enables only static inventory plugins, and the digest covers every
    # inventory file and ansible.cfg: the same digest and limit give the same hosts.
    key = hashlib.sha256(f"{digest}\0{env}\0{limit or ''}".encode()).hexdigest()
    hosts = host_cache.cached_hosts(key) if host_cache else None
    if hosts is None:
        hosts = inventory.resolve_hosts(project_dir, inv, limit)
        if host_cache:
            host_cache.cache_hosts(key, hosts)
    return Plan(
        resolved=resolved,
        env=env,
        inventory=inv,
        limit=limit,
        hosts=hosts,
        check_mode=check_mode,
        content_digest=digest,
        revision=git_revision(project_dir),
    )


def content_digest(project_dir: Path, inventory_dir: Path) -> str:
    """sha256 over the relative paths and bytes of everything a run reads."""
    digest = hashlib.sha256()
    roots = [project_dir / name for name in CONTENT_ROOTS] + [inventory_dir]
    for path in sorted(_files(roots)):
        digest.update(str(path.relative_to(project_dir)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return "sha256:" + digest.hexdigest()


def _files(roots: Iterable[Path]) -> Iterable[Path]:
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            for path in root.rglob("*"):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                    yield path


def git_revision(project_dir: Path) -> str | None:
    """The checked-out commit, marked ``-dirty`` when the tree has changes; None if no git."""
    if not (project_dir / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(project_dir), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=False)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(project_dir), "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
