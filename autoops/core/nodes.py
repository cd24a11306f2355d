"""Execution nodes: where an environment's runs execute when one controller is not enough.

(Declarations, like the catalog and the policy, so they live in ``core``; the transport is
:mod:`autoops.run.remote`.)

``nodes/ENV.yml`` lists the machines that run ENV's playbooks: autoops decides, locks and
audits on the controller as always, then hands the job to a node with ansible-runner's own
streaming (``transmit`` → ``worker`` over SSH → ``process``), the mechanism AWX's mesh
uses. An environment with no file runs on the controller. A node holds no secret at rest:
for each run the controller lends it the environment's age key and the SSH identities the
file names (see :mod:`autoops.run.remote`), and takes them back when the run ends.

Everything here is checked before it reaches a command line: names, hosts, users and
paths have fixed shapes, and the ssh command is an argv list whose remote part is a
constant.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoops.common import yamlfile
from autoops.common.names import UNIX_NAME
from autoops.errors import NodesInvalidError, NodeUnknownError

NODE_NAME = r"^[a-z][a-z0-9-]{0,31}$"
# A DNS name or an IPv4 address; never something ssh could read as an option (-oProxy…).
_HOST = r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$"
_ABSOLUTE = r"^/[A-Za-z0-9._/+-]{0,254}$"
_KEY_PATH = r"^(~/|/)[A-Za-z0-9._/+-]{1,254}$"
REMOTE_MODULE = "autoops.node"

_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "nodes"],
    "properties": {
        "version": {"const": 1},
        "nodes": {"type": "array", "minItems": 1, "maxItems": 64, "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "host"],
            "properties": {
                "name": {"type": "string", "pattern": NODE_NAME},
                "host": {"type": "string", "pattern": _HOST},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "user": {"type": "string", "pattern": UNIX_NAME},
                "python": {"type": "string", "pattern": _ABSOLUTE},
                "identity_file": {"type": "string", "pattern": _KEY_PATH},
                "known_hosts": {"type": "string", "pattern": _KEY_PATH},
            },
        }},
        "lend_identities": {"type": "array", "maxItems": 8,
                            "items": {"type": "string", "pattern": _KEY_PATH}},
    },
}


@dataclass(frozen=True)
class Node:
    """One execution node, as ``nodes/ENV.yml`` declares it."""

    name: str
    host: str
    port: int = 22
    user: str | None = None  # None: the controller's account name
    python: str = "/usr/bin/python3"  # the node's interpreter, autoops installed in it
    identity_file: Path | None = None  # the controller's key for the node
    known_hosts: Path | None = None  # the node's host key; None: the account's own file

    def ssh_argv(self, *remote: str) -> list[str]:
        """``ssh … NODE PYTHON -I -m autoops.node REMOTE…``: batch mode, host key checked.

        ``remote`` are fixed words (``serve``, ``cancel RUN_ID``, ``info``) checked by the caller;
        the host was checked against :data:`_HOST`, and ``--`` ends ssh's options anyway.
        """
        argv = ["ssh", "-T", "-x", "-a", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=5",
                "-o", "ServerAliveCountMax=3", "-o", "ControlMaster=no", "-o", "ControlPath=none",
                "-p", str(self.port)]
        if self.known_hosts is not None:
            argv += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        if self.identity_file is not None:
            argv += ["-i", str(self.identity_file), "-o", "IdentitiesOnly=yes"]
        if self.user is not None:
            argv += ["-l", self.user]
        return [*argv, "--", self.host, self.python, "-I", "-m", REMOTE_MODULE, *remote]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "host": self.host, "port": self.port, "user": self.user,
                "python": self.python}


@dataclass(frozen=True)
class EnvNodes:
    """An environment's execution nodes and the identities the controller lends them."""

    env: str
    nodes: tuple[Node, ...]
    lend_identities: tuple[Path, ...] = ()
    source: Path | None = None

    def choose(self, run_id: str, wanted: str | None = None) -> Node | None:
        """The node a run goes to: ``wanted`` if given, else one spread by the run id."""
        if wanted is not None:
            return self.named(wanted)
        if not self.nodes:
            return None
        index = int(hashlib.sha256(run_id.encode()).hexdigest()[:8], 16) % len(self.nodes)
        return self.nodes[index]

    def named(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        declared = ", ".join(n.name for n in self.nodes) or "none"
        raise NodeUnknownError(
            f"no execution node {name!r} for {self.env} (declared: {declared})",
            remedy=f"Name a node nodes/{self.env}.yml declares, or leave --node out.")


def path_of(project_dir: Path, env: str) -> Path:
    return project_dir / "nodes" / f"{env}.yml"


def load(project_dir: Path, env: str, home: Path | None = None) -> EnvNodes:
    """``nodes/ENV.yml``, checked; no file means the environment runs on the controller."""
    path = path_of(project_dir, env)
    if not path.is_file():
        return EnvNodes(env, ())
    document = yamlfile.load(path, NodesInvalidError)
    yamlfile.validate(document, _SCHEMA, path, NodesInvalidError)
    names = [n["name"] for n in document["nodes"]]
    if len(set(names)) != len(names):
        raise NodesInvalidError(f"{path}: node names must be unique ({', '.join(names)})")
    nodes = tuple(Node(name=n["name"], host=n["host"], port=int(n.get("port", 22)),
                       user=n.get("user"), python=n.get("python", "/usr/bin/python3"),
                       identity_file=_expand(n.get("identity_file"), home),
                       known_hosts=_expand(n.get("known_hosts"), home))
                  for n in document["nodes"])
    lent = tuple(p for p in (_expand(t, home) for t in document.get("lend_identities", ()))
                 if p is not None)
    project = project_dir.resolve()
    for key in [*lent, *(p for n in nodes for p in (n.identity_file, n.known_hosts) if p)]:
        if project == key.resolve() or project in key.resolve().parents:
            raise NodesInvalidError(
                f"{path}: {key} is inside the project; keys and the nodes' host keys are the "
                "controller's own, never content anyone who edits the project can change")
    return EnvNodes(env, nodes, lent, path)


def _expand(text: str | None, home: Path | None) -> Path | None:
    if text is None:
        return None
    if text.startswith("~/"):
        return (home or Path.home()) / text[2:]
    return Path(os.path.normpath(text))


def fingerprint(public_pem: bytes) -> str:
    """How ``node-info`` names a trusted key (a digest of the PEM file as installed)."""
    return "sha256:" + hashlib.sha256(public_pem).hexdigest()[:16]


def probe(node: Node, environ: Mapping[str, str], env: str, trust: bytes,
          timeout: float = 30.0) -> dict[str, Any]:
    """What ``node-info`` says on the node, and whether it can take this controller's runs.

    ``trust`` is the public key the node must have installed for ``env``.
    """
    from autoops import __version__  # noqa: PLC0415

    found: dict[str, Any] = {**node.to_dict(), "ok": False}
    try:
        done = subprocess.run(node.ssh_argv("info"), env=dict(environ), capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {**found, "problem": f"ssh: {exc}"}
    try:
        info = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        lines = (done.stderr or done.stdout).strip().splitlines()
        return {**found, "problem": f"ssh exit {done.returncode}: "
                                    f"{lines[-1][:300] if lines else 'no answer'}"}
    problems = []
    if info.get("autoops") != __version__:
        problems.append(f"autoops {info.get('autoops')} there, {__version__} here")
    if not info.get("ansible_playbook"):
        problems.append("no ansible-playbook on the node")
    if not info.get("ssh_agent"):
        problems.append("no ssh-agent on the node (lent identities need one)")
    if (info.get("trusts") or {}).get(env) != fingerprint(trust):
        problems.append(f"it does not trust this controller's {env} key "
                        f"(`autoops nodes trust --env {env}` says how)")
    elif (named := (info.get("names") or {}).get(env)) != node.name:
        problems.append(f"it answers to {named or 'no name'} for {env}, not {node.name} "
                        f"(`autoops nodes trust --env {env}` says how)")
    return {**found, **{k: info.get(k) for k in ("autoops", "python", "ansible_runner",
                                                 "ansible_core")},
            "ok": not problems, "problem": "; ".join(problems) or None}
