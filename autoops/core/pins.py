"""Pinning a deploy's revision: a branch or tag becomes the commit it names, at plan time.

A tag can be moved and a branch advances: approving "v1.2.3" would approve whatever
it names when the run starts. autoops resolves it when the run is planned — the app's
repository from the inventory (``autoops_apps[APP].repo``, templated by Ansible on the
controller exactly as the deploy play will template it), then ``git ls-remote`` — and
hands the commit to the play. The commit is part of the plan, so the approval covers
it and the recomputation before the run starts refuses the run if the ref moved.

The controller must be able to read the repository: a URL, or a path on this machine
for hosts reached with ``ansible_connection: local``. Otherwise give the commit itself.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from autoops.common.names import APP_NAME
from autoops.core import inventory
from autoops.errors import ParamInvalidError

COMMIT = re.compile(r"[0-9a-f]{40}")
_URL = re.compile(r"^([a-z][a-z0-9+.-]*://|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:)")


def pin(revision: str, app: str, *, hosts: Sequence[str], addresses: Sequence[str],
        project_dir: Path, inv: Path, environ: Mapping[str, str]) -> str:
    """The commit ``revision`` names in the repository ``app`` deploys from, on every host."""
    if COMMIT.fullmatch(revision):
        return revision
    repos = _repositories(app, hosts, project_dir, inv, environ)
    local = {h for h, a in zip(hosts, addresses, strict=True) if a == inventory.LOCAL}
    commits = set()
    for host, repo in sorted(repos.items()):
        if not (_URL.match(repo) or (host in local and Path(repo).is_absolute())):
            raise ParamInvalidError(
                f"revision {revision!r} cannot be pinned: {host}'s repository {repo!r} is not "
                "readable from this controller",
                remedy="Give the full commit id (40 hex digits) as revision.")
        commits.add(_ls_remote(repo, revision, environ))
    if len(commits) != 1:
        raise ParamInvalidError(f"revision {revision!r} names different commits on the hosts: "
                                f"{', '.join(sorted(commits))}")
    return commits.pop()


def _repositories(app: str, hosts: Sequence[str], project_dir: Path, inv: Path,
                  environ: Mapping[str, str]) -> dict[str, str]:
    """Each host's ``autoops_apps[app].repo``, templated on the controller (no connection)."""
    if not re.fullmatch(APP_NAME, app):
        raise ParamInvalidError(f"app {app!r} is not an app name")
    cmd = [inventory.ansible_tool("ansible"), ",".join(hosts), "-i", str(inv), "-m",
           "ansible.builtin.debug", "-a", f"msg={{{{ autoops_apps['{app}'].repo }}}}"]
    env = {**inventory.tool_environ(project_dir, environ), "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
           "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
           # no secret is needed to read a repository's address: do not decrypt any
           "SOPS_ANSIBLE_AWX_DISABLE_VARS_PLUGIN_TEMPORARILY": "1"}
    try:
        proc = subprocess.run(cmd, cwd=project_dir, env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=120, check=False)
        doc = json.loads(proc.stdout)
    except (subprocess.TimeoutExpired, ValueError):
        raise ParamInvalidError(f"cannot read app {app!r}'s repository from the inventory "
                                "(ansible gave no answer)") from None
    repos = {}
    for play in doc.get("plays", []):
        for task in play.get("tasks", []):
            for host, res in task.get("hosts", {}).items():
                if res.get("failed") or not isinstance(res.get("msg"), str):
                    raise ParamInvalidError(
                        f"{host} has no repository for app {app!r} (autoops_apps.{app}.repo)")
                repos[host] = res["msg"]
    if set(repos) != set(hosts):
        raise ParamInvalidError(f"cannot read app {app!r}'s repository for every host")
    return repos


def _ls_remote(repo: str, revision: str, environ: Mapping[str, str]) -> str:
    """The commit of tag (peeled) or branch ``revision`` in ``repo``."""
    env = {**environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
    try:
        proc = subprocess.run(["git", "ls-remote", "--", repo], env=env, capture_output=True,
                              text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        raise ParamInvalidError(f"git ls-remote {repo} timed out") from None
    if proc.returncode != 0:
        raise ParamInvalidError(f"cannot read {repo}: {proc.stderr.strip()[:300]}")
    refs = {}
    for line in proc.stdout.splitlines():
        commit, _, ref = line.partition("\t")
        refs[ref.strip()] = commit.strip()
    for ref in (f"refs/tags/{revision}^{{}}", f"refs/tags/{revision}", f"refs/heads/{revision}"):
        if ref in refs and COMMIT.fullmatch(refs[ref]):
            return refs[ref]
    raise ParamInvalidError(f"revision {revision!r} is not a tag or branch of {repo}",
                            remedy="Give a tag, a branch or the full commit id.")
