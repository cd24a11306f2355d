"""One environment's inventory: its path (derived, never given) and its hosts.

Hosts are resolved by Ansible itself (``ansible --list-hosts``) so that every pattern
and inventory plugin behaves exactly as in the run; only names cross back, no vars.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from autoops.catalog import ENV_NAME
from autoops.errors import EnvUnknownError, InventoryInvalidError, LimitNoHostsError

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
    path = (root / env).resolve()
    if path.parent != root or not path.is_dir():
        raise EnvUnknownError(
            f"environment {env!r} has no inventory directory at {root / env}",
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


def resolve_hosts(project_dir: Path, inventory: Path, limit: str | None) -> tuple[str, ...]:
    """The inventory hostnames a run with this limit would target, in inventory order."""
    cmd = [ansible_tool("ansible"), "all", "-i", str(inventory), "--list-hosts"]
    if limit:
        cmd += ["--limit", limit]
    env = {**os.environ, "ANSIBLE_CONFIG": str(project_dir / "ansible.cfg"),
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_DEPRECATION_WARNINGS": "0"}
    try:
        proc = subprocess.run(cmd, cwd=project_dir, env=env, capture_output=True, text=True,
                              timeout=120, check=False)
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
