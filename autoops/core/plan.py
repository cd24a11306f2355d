"""A plan: the exact thing a run would do (action, params, env, hosts, content digest).

The digest binds approvals and audit records to everything that decides what a run
does: the catalog, policy, ansible.cfg, playbooks, roles, collections, filter plugins,
the SOPS rules, the grant public keys, the environment's inventory (vars and secrets'
ciphertext included) and autoops' own version. A symbolic link that leaves the project
is refused; in service mode so is content that anyone but root or the service account
could change. The engine recomputes the plan after every wait, right before a run
starts, and refuses the run if anything differs from what was approved.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from autoops import __version__
from autoops.core import inventory, pins
from autoops.core.catalog import ResolvedAction
from autoops.errors import CheckUnsupportedError, ContentInvalidError

CONTENT_ROOTS = ("ansible.cfg", "catalog.yml", "policy.yml", "sops-rules.yaml", "playbooks",
                 "roles", "collections", "filter_plugins", "grant-keys")


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
    addresses: tuple[str, ...] = ()  # the machine each host reaches (host locks key on it)
    pinned: Mapping[str, str] = field(default_factory=dict)  # param -> what was given

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
            "addresses": list(self.addresses),
            "check_mode": self.check_mode,
            "content_digest": self.content_digest,
            "revision": self.revision,
            "rollback": action.rollback,
            "pinned": {name: {"given": given, "commit": self.resolved.params[name]}
                       for name, given in self.pinned.items()},
        }


@dataclass(frozen=True)
class Content:
    """Where the content lives and whose it may be."""

    project_dir: Path
    environ: Mapping[str, str]  # for the ansible and git commands planning runs
    owners: frozenset[int] | None = None  # service mode: uids that may own content


def build(resolved: ResolvedAction, env: str, content: Content, declared_envs: set[str],
          limit: str | None = None, *, check_mode: bool = False,
          host_cache: HostCache | None = None) -> Plan:
    """Derive the inventory from the env name, resolve hosts and digest the content."""
    if check_mode and not resolved.action.check_mode:
        raise CheckUnsupportedError(f"{resolved.action.name} does not support check mode")
    project_dir = content.project_dir
    inv = inventory.inventory_path(project_dir / "inventories", env, declared_envs)
    limit = inventory.check_limit(limit)
    digest = content_digest(project_dir, inv, content.owners)
    # ansible.cfg enables only static inventory plugins, and the digest covers every
    # inventory file and ansible.cfg: the same digest and limit give the same hosts.
    key = hashlib.sha256(f"{digest}\0{env}\0{limit or ''}".encode()).hexdigest()
    hosts = host_cache.cached_hosts(key) if host_cache else None
    if hosts is None:
        hosts = inventory.resolve_hosts(project_dir, inv, limit, content.environ)
        if host_cache:
            host_cache.cache_hosts(key, hosts)
    fleet = fleet_map(content, declared_envs, host_cache)
    inventory.check_overlaps(fleet)
    addresses = tuple(fleet.get(env, {}).get(h, f"{h.lower()}:22") for h in hosts)
    pinned: dict[str, str] = {}
    if resolved.action.pin_revision:
        given = str(resolved.params["revision"])
        commit = pins.pin(given, str(resolved.params["app"]), hosts=hosts, addresses=addresses,
                          project_dir=project_dir, inv=inv, environ=content.environ)
        if commit != given:
            pinned["revision"] = given
            resolved = replace(resolved, params={**resolved.params, "revision": commit})
    return Plan(
        resolved=resolved,
        env=env,
        inventory=inv,
        limit=limit,
        hosts=hosts,
        check_mode=check_mode,
        content_digest=digest,
        revision=git_revision(project_dir, content.environ),
        addresses=addresses,
        pinned=pinned,
    )


def fleet_map(content: Content, declared_envs: set[str],
              cache: HostCache | None = None) -> dict[str, dict[str, str]]:
    """Every declared environment's hosts and the machines they reach.

    Cached by a digest of all the inventories and ansible.cfg, so it costs one
    ``ansible-inventory`` per environment only when an inventory changed.
    """
    root = content.project_dir / "inventories"
    envs = sorted(e for e in declared_envs if (root / e).is_dir())
    paths = {env: inventory.inventory_path(root, env, declared_envs) for env in envs}
    # what decides the hosts and their addresses: ansible.cfg and every inventory
    key = "fleet:" + _digest(content.project_dir.resolve(),
                             [content.project_dir / "ansible.cfg", *paths.values()],
                             content.owners)
    cached = cache.cached_hosts(key) if cache else None
    if cached is not None:
        return dict(json.loads(cached[0]))
    fleet = {env: inventory.host_addresses(content.project_dir, path, content.environ)
             for env, path in paths.items()}
    if cache:
        cache.cache_hosts(key, (json.dumps(fleet, sort_keys=True),))
    return fleet


def content_digest(project_dir: Path, inventory_dir: Path,
                   owners: frozenset[int] | None = None) -> str:
    """sha256 over autoops' version and the relative paths and bytes of what a run reads."""
    project = project_dir.resolve()
    return _digest(project, _content_roots(project, inventory_dir), owners)


def content_files(project_dir: Path, inventory_dir: Path,
                  owners: frozenset[int] | None = None) -> list[tuple[str, Path]]:
    """(name in the project, real file) of everything :func:`content_digest` covers.

    What an execution node receives: exactly these bytes under these names, so the
    digest it computes of what it got is the plan's.
    """
    project = project_dir.resolve()
    return sorted(_files(project, _content_roots(project, inventory_dir), owners))


def _content_roots(project: Path, inventory_dir: Path) -> list[Path]:
    """What a run reads: the shared content, its inventory, and where it executes.

    ``nodes/ENV.yml`` counts: a node changed after approval is a changed plan.
    """
    return [*(project / name for name in CONTENT_ROOTS), inventory_dir,
            project / "nodes" / f"{inventory_dir.name}.yml"]


def _digest(project: Path, roots: list[Path], owners: frozenset[int] | None) -> str:
    digest = hashlib.sha256(f"autoops {__version__}\0".encode())
    for name, path in sorted(_files(project, roots, owners)):
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return "sha256:" + digest.hexdigest()


def _files(project: Path, roots: list[Path],
           owners: frozenset[int] | None) -> Iterator[tuple[str, Path]]:
    """(path as named inside the project, real file) for every file under ``roots``.

    Symbolic links are followed only while they stay inside the project.
    """
    seen: set[Path] = set()
    todo = [(root, root) for root in roots if root.exists() or root.is_symlink()]
    while todo:
        named, real = todo.pop()
        target = _inside(project, named) if named.is_symlink() else real
        owned(target, owners)
        if target.is_dir():
            if target in seen:
                continue
            seen.add(target)
            for entry in sorted(os.scandir(target), key=lambda e: e.name):
                if entry.name == "__pycache__" or entry.name.endswith(".pyc"):
                    continue
                todo.append((named / entry.name, target / entry.name))
        elif target.is_file():
            yield str(named.relative_to(project)), target


def _inside(project: Path, link: Path) -> Path:
    target = link.resolve()
    if target != project and project not in target.parents:
        raise ContentInvalidError(
            f"{link.relative_to(project)} is a symbolic link out of the project (to {target})")
    return target


def owned(path: Path, owners: frozenset[int] | None) -> None:
    """In service mode, content must be root's or the service account's, writable by no one else."""
    if owners is None or not path.exists():
        return
    st = path.stat()
    if st.st_uid not in owners or (st.st_mode & 0o022 and not (
            stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX and st.st_uid == 0)):
        raise ContentInvalidError(
            f"{path} can be changed by others (owner uid {st.st_uid}, mode "
            f"{st.st_mode & 0o777:o}): in service mode the content must be root's or the "
            "service account's", remedy=f"chown root: {path} && chmod go-w {path}")


def git_revision(project_dir: Path, environ: Mapping[str, str]) -> str | None:
    """The checked-out commit, marked ``-dirty`` when the tree has changes; None if no git."""
    if not (project_dir / ".git").exists():
        return None
    env = {**environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_OPTIONAL_LOCKS": "0"}
    try:
        git = ["git", "-c", f"safe.directory={project_dir}", "-C", str(project_dir)]
        head = subprocess.run([*git, "rev-parse", "HEAD"], env=env,
                              capture_output=True, text=True, timeout=10, check=False)
        if head.returncode != 0:
            return None
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], env=env,
                               capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
