"""Execution nodes for the lab: lab hosts with autoops installed, declared in nodes/lab.yml.

A node is a lab container (sshd on loopback, the same ``autoops`` user) from an image that
adds autoops and everything it needs — installed from wheels built on this machine, in a
``docker build`` with no network, so nothing is pulled. It is not in inventories/lab (no
play targets it): runs of ``--env lab`` go *through* it to the lab's hosts. It reaches them
with the host keys that travel in inventories/lab (``known_hosts.txt``) and an identity the
controller lends for each run; it keeps no key.
"""

from __future__ import annotations

import hashlib
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from autoops.lab import ee, manager
from autoops.lab.docker import Engine, LabError
from autoops.lab.manager import LabHost, LabPaths, Progress

GROUP = "node"
FORCED_COMMAND = "/usr/bin/python3 -I -m autoops.node ssh-command"
NODE_HOME = "/home/autoops"
MAX_NODES = 8
_CONTAINERFILE = """FROM {base}
COPY wheels/ /tmp/wheels/
# pip from its own wheel (Debian's python3 has none); only these wheels, no index.
RUN python3 "$(ls /tmp/wheels/pip-*.whl)/pip" install --quiet --no-index \\
      --find-links /tmp/wheels --break-system-packages --no-warn-script-location autoops \\
 && rm -rf /tmp/wheels /root/.cache \\
 && sops --version --disable-version-check >/dev/null
"""


def node_image_tag(base: str, project_dir: Path) -> str:
    """Named after the lab image and autoops' own sources: a change in either rebuilds."""
    digest = hashlib.sha256(base.encode())
    for path in sorted([project_dir / "pyproject.toml",
                        *(project_dir / "autoops").rglob("*.py")]):
        digest.update(str(path.relative_to(project_dir)).encode() + b"\0" + path.read_bytes())
    return f"autoops-lab-node:{digest.hexdigest()[:12]}"


def ensure_node_image(engine: Engine, base: str, project_dir: Path, progress: Progress) -> str:
    tag = node_image_tag(base, project_dir)
    if engine.docker("image", "inspect", tag, check=False).returncode == 0:
        return tag
    with tempfile.TemporaryDirectory(prefix="autoops-node-image-") as tmp:
        context = Path(tmp)
        progress("lab: building the wheels a node installs (autoops and all it needs) …")
        # the versions this controller runs (ansible-core above all), not the newest
        pins = context / "constraints.txt"
        pins.write_text(controller_pins())
        ee.wheels(project_dir, context / "wheels", extra=("pip", "-c", str(pins)))
        (context / "Containerfile").write_text(_CONTAINERFILE.format(base=base))
        progress(f"lab: docker build -t {tag} (no network) …")
        engine.docker("build", "--network", "none", "-t", tag, "-f",
                      str(context / "Containerfile"), str(context), timeout=1800)
    return tag


def controller_pins() -> str:
    """``name==version`` for every distribution this interpreter has (pip constraints)."""
    lines = set()
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower() not in {"autoops", "pip", "setuptools", "wheel"}:
            lines.add(f"{name}=={dist.version}")
    return "\n".join(sorted(lines)) + "\n"


def add(paths: LabPaths, count: int, source_dir: Path, trust: bytes,
        progress: Progress) -> list[dict[str, Any]]:
    """Start ``count`` nodes beside the lab's hosts and declare them in nodes/lab.yml.

    ``source_dir`` is the autoops source tree the nodes' image installs (this checkout);
    ``trust`` the controller's public node key for the lab, which each node installs.
    """
    record = manager.load_record(paths)
    if record is None:
        raise LabError("no lab is up", remedy="Run `autoops lab up` first.")
    if record.get("nodes"):
        raise LabError("the lab has nodes already", remedy="`autoops lab down`, then up again.")
    if not 1 <= count <= MAX_NODES:
        raise LabError(f"a lab has 1 to {MAX_NODES} nodes")
    engine = manager.engine_of(record)
    tag = ensure_node_image(engine, record["image"], source_dir, progress)
    ports = manager.free_ports(count)
    if len(ports) < count:
        raise LabError(f"only {len(ports)} of {count} nodes' ports are free on 127.0.0.1")
    added = [LabHost(f"node{i}", GROUP, port, f"autoops-lab-node{i}")
             for i, port in enumerate(ports, start=1)]
    record["nodes"] = [{"name": n.name, "group": n.group, "port": n.port,
                        "container": n.container} for n in added]
    manager.save_record(paths, record)  # before containers exist: `down` can clean up
    pubkey = paths.key.with_suffix(".pub").read_text().strip()
    for node in added:
        manager.start_host(engine, tag, node, pubkey)
    manager.wait_for_ssh(added, paths.known_hosts, progress, append=True)
    for node in added:  # after its init wrote authorized_keys: the forced command replaces it
        _provision(engine, node.container, node.name, trust, pubkey)
    declared = [{"name": n.name, "host": "127.0.0.1", "port": n.port, "user": "autoops",
                 "identity_file": str(paths.key), "known_hosts": str(paths.known_hosts)}
                for n in added]
    nodes_file(paths).parent.mkdir(parents=True, exist_ok=True)
    nodes_file(paths).write_text(
        "---\n# Written by `autoops lab up --nodes`; removed by `lab down`.\n"
        "# Runs of --env lab execute on these nodes; the controller lends each run the\n"
        "# lab's SSH identity (lend_identities) and the lab's age key.\n"
        + yaml.safe_dump({"version": 1, "nodes": declared,
                          "lend_identities": [str(paths.key)]}, sort_keys=False))
    progress(f"lab: {count} execution node(s) up; runs of --env lab now execute there")
    return declared


def _provision(engine: Engine, container: str, name: str, public_pem: bytes,
               pubkey: str) -> None:
    """What the README says a node needs besides autoops.

    The controller's lab key and the node's name in nodes/lab.yml (``autoops nodes trust
    --env lab``), and the controller's SSH key limited to autoops' node verbs (the forced
    command).
    """
    trust_dir = f"{NODE_HOME}/.config/autoops/node-trust"
    engine.docker("exec", "-i", "-u", "autoops", container, "sh", "-c",
                  f"mkdir -p {trust_dir} && cat > {trust_dir}/lab.pub",
                  stdin=public_pem.decode())
    engine.docker("exec", "-i", "-u", "autoops", container, "sh", "-c",
                  f"cat > {trust_dir}/lab.name", stdin=f"{name}\n")
    engine.docker("exec", "-i", "-u", "autoops", container, "sh", "-c",
                  f"cat > {NODE_HOME}/.ssh/authorized_keys",
                  stdin=f'command="{FORCED_COMMAND}",restrict {pubkey}\n')


def nodes_file(paths: LabPaths) -> Path:
    return paths.project_dir / "nodes" / "lab.yml"


def remove(paths: LabPaths, progress: Progress) -> list[str]:
    """Stop the lab's nodes and remove nodes/lab.yml (the hosts stay)."""
    record = manager.load_record(paths)
    removed: list[str] = []
    if record is not None and record.get("nodes"):
        engine = manager.engine_of(record)
        names = [n["container"] for n in record["nodes"]]
        engine.docker("rm", "--force", *names, check=False)
        removed = [n["name"] for n in record["nodes"]]
        record["nodes"] = []
        manager.save_record(paths, record)
        progress(f"lab: removed {len(removed)} node(s)")
    nodes_file(paths).unlink(missing_ok=True)
    return removed

