"""One environment's inventory: its path (derived, never given) and its hosts.

Hosts are resolved by Ansible itself (``ansible --list-hosts``) so that every pattern
and inventory plugin behaves exactly as in the run; only names cross back, no vars.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autoops.common.names import ENV_NAME
from autoops.errors import (
    EnvUnknownError,
    InventoryInvalidError,
    InventoryOverlapError,
    LimitNoHostsError,
)

# Host patterns as Ansible reads them, minus '@file' (read hosts from a file) and spaces.
LIMIT_PATTERN = re.compile(r"^[A-Za-z0-9_.:*!&,\[\]~^$()|?+\\-]{1,512}$")


def inventory_path(inventories_dir: Path, env: str, declared: set[str]) -> Path:
    """The inventory directory of ``env``, checked to be a declared, real environment."""
    if not re.fullmatch(ENV_NAME, env):
        raise EnvUnknownError(f"environment name {env!r} is not valid (lowercase, a-z0-9-)")
    if env not in declared:
        known = ", ".join(sorted(declared))
        raise EnvUnknownError(f"environment {env!r} is not declared in policy.yml (known: {known})")
    root = inventories_dir.resolve()
    given = root / env
    if given.is_symlink():  # inventories/staging -> production would borrow staging's rules
        raise EnvUnknownError(f"the inventory of {env!r} ({given}) is a symbolic link",
                              remedy="Each environment's inventory must be a real directory "
                                     "of its own inside the project.")
    path = given.resolve()
    if path.parent != root or path.name != env or not path.is_dir():
        raise EnvUnknownError(
            f"environment {env!r} has no inventory directory at {given}",
            remedy="Run `autoops lab up` first." if env == "lab" else None)
    return path


def check_limit(limit: str | None) -> str | None:
    """Refuse limit patterns Ansible would read as file references or that are garbage."""
    if limit is None:
        return None
    if not LIMIT_PATTERN.fullmatch(limit):
        raise LimitNoHostsError(
            f"--limit {limit!r} is not a host pattern (no spaces, no '@file')",
            remedy="Give host names, groups or patterns, e.g. --limit 'web:&eu'.",
        )
    return limit


def ansible_tool(name: str) -> str:
    """Path to an Ansible command next to this Python (a venv works unactivated)."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise InventoryInvalidError(f"{name} is not installed", remedy="Run ./bin/autoops once to set up.")
    return found


def tool_environ(project_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of an Ansible command autoops runs: the allowlist, its config."""
    return {**environ, "ANSIBLE_CONFIG": str(project_dir / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1", "ANSIBLE_DEPRECATION_WARNINGS": "0"}


def resolve_hosts(project_dir: Path, inventory: Path, limit: str | None,
                  environ: Mapping[str, str]) -> tuple[str, ...]:
    """The inventory hostnames a run with this limit would target, in inventory order."""
    cmd = [ansible_tool("ansible"), "all", "-i", str(inventory), "--list-hosts"]
    if limit:
        cmd += ["--limit", limit]
    env = tool_environ(project_dir, environ)
    try:
        proc = subprocess.run(cmd, cwd=project_dir, env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=120, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InventoryInvalidError(f"listing hosts of {inventory} timed out") from exc
    if proc.returncode != 0 and "leaves us with no hosts" in proc.stderr:
        raise LimitNoHostsError(f"no hosts in {inventory.name} match --limit {limit!r}")
    if proc.returncode != 0:
        detail = _last_error(proc.stderr) or f"exit {proc.returncode}"
        raise InventoryInvalidError(f"cannot read inventory {inventory}: {detail}")
    hosts = parse_list_hosts(proc.stdout)
    if not hosts:
        where = f" matching --limit {limit!r}" if limit else ""
        raise LimitNoHostsError(f"no hosts in {inventory.name}{where}")
    return hosts


def parse_list_hosts(output: str) -> tuple[str, ...]:
    """Parse ``ansible --list-hosts`` output: a '  hosts (N):' header then one per line."""
    hosts: list[str] = []
    seen_header = False
    for line in output.splitlines():
        stripped = line.strip()
        if re.match(r"^hosts \(\d+\):$", stripped):
            seen_header = True
            continue
        if seen_header and stripped:
            hosts.append(stripped)
    return tuple(hosts)


def _last_error(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "ERROR" in ln or "[WARNING]" in ln]
    return (errors or lines or [""])[-1][:300]


LOCAL = "local"  # the address of every host reached with ansible_connection: local


def host_addresses(project_dir: Path, inventory: Path,
                   environ: Mapping[str, str]) -> dict[str, str]:
    """Each host of an inventory and the machine it reaches (``address:port`` or ``local``).

    Read with ``ansible-inventory --list``, so group and host vars count as in a run
    (SOPS files stay ciphertext: vars_stage is task).
    """
    hostvars = _listing(project_dir, inventory, environ).get("_meta", {}).get("hostvars", {})
    return {str(host): address_of(str(host), dict(hv or {})) for host, hv in hostvars.items()}


def host_vars(project_dir: Path, inventory: Path,
              environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Each host's variables as written (group and host vars merged, nothing templated)."""
    hostvars = _listing(project_dir, inventory, environ).get("_meta", {}).get("hostvars", {})
    return {str(host): dict(hv or {}) for host, hv in hostvars.items()}


def host_groups(project_dir: Path, inventory: Path,
                environ: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """Each host of an inventory and every group it is in (parents of its groups too)."""
    return groups_of(_listing(project_dir, inventory, environ))


def groups_of(listing: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """``ansible-inventory --list`` JSON → host → its groups, sorted (``all`` left out)."""
    found: dict[str, set[str]] = {}

    def visit(group: str, parents: tuple[str, ...]) -> None:
        if group in parents:  # a cycle is the inventory's problem, not a reason to loop
            return
        node = listing.get(group) or {}
        here = (*parents, group)
        for host in node.get("hosts", []):
            found.setdefault(str(host), set()).update(g for g in here if g != "all")
        for child in node.get("children", []):
            visit(str(child), here)

    visit("all", ())
    return {host: tuple(sorted(groups)) for host, groups in sorted(found.items())}


def _listing(project_dir: Path, inventory: Path, environ: Mapping[str, str]) -> dict[str, Any]:
    cmd = [ansible_tool("ansible-inventory"), "-i", str(inventory), "--list"]
    try:
        proc = subprocess.run(cmd, cwd=project_dir, env=tool_environ(project_dir, environ),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=120, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InventoryInvalidError(f"reading {inventory} timed out") from exc
    if proc.returncode != 0:
        detail = _last_error(proc.stderr) or f"exit {proc.returncode}"
        raise InventoryInvalidError(f"cannot read inventory {inventory}: {detail}")
    try:
        doc = json.loads(proc.stdout)
    except ValueError as exc:
        raise InventoryInvalidError(f"ansible-inventory gave no JSON for {inventory}") from exc
    return doc if isinstance(doc, dict) else {}


def address_of(host: str, hostvars: Mapping[str, object]) -> str:
    """The machine a host entry reaches, normalised so two spellings of one machine meet."""
    if str(hostvars.get("ansible_connection", "")).rsplit(".", 1)[-1] == "local":
        return LOCAL
    name = str(hostvars.get("ansible_host") or host).strip().lower().rstrip(".")
    port = str(hostvars.get("ansible_port") or 22).strip()
    if name in {"localhost", "localhost.localdomain"}:
        name = "127.0.0.1"
    try:
        ip = ipaddress.ip_address(name.strip("[]"))
        name = "127.0.0.1" if ip.is_loopback else ip.compressed
    except ValueError:
        pass
    return f"{name}:{port}"


def overlaps(fleet: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Problems where one host (by name, or by address) belongs to two environments.

    Hosts reached with ``ansible_connection: local`` are this controller, which any
    environment may address (host locks still serialise them): they are not counted.
    """
    problems = []
    by_name: dict[str, list[str]] = {}
    by_address: dict[str, list[tuple[str, str]]] = {}
    for env, hosts in sorted(fleet.items()):
        for host, address in hosts.items():
            if address == LOCAL:
                continue
            by_name.setdefault(host.lower(), []).append(env)
            by_address.setdefault(address, []).append((env, host))
    for host, envs in sorted(by_name.items()):
        if len(set(envs)) > 1:
            problems.append(f"host {host} is in {' and '.join(sorted(set(envs)))}")
    for address, entries in sorted(by_address.items()):
        if len({env for env, _ in entries}) > 1:
            names = ", ".join(f"{host} ({env})" for env, host in entries)
            problems.append(f"{address} is one machine in several environments: {names}")
    return problems


def check_overlaps(fleet: Mapping[str, Mapping[str, str]]) -> None:
    problems = overlaps(fleet)
    if problems:
        raise InventoryOverlapError("environments overlap: " + "; ".join(problems))
