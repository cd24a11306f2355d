"""``autoops lab up|status|down``: real SSH hosts as containers on this machine's loopback.

Each host is a container of the lab image with its own filesystem, hostname, users and
processes, running supervisord (PID 1) with sshd on 127.0.0.1:PORT and the operator's
stack (the demo app behind Caddy, cron, a crash loop to switch on) on ports derived from
PORT. The host network is shared, so nothing but loopback is ever addressed. ``up``
writes ``inventories/lab`` (git-ignored) so every action runs with ``--env lab``, with
what ``autoops watch`` should read on each host; host keys are collected with
ssh-keyscan, so host key checking stays on.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from autoops.errors import BadInputError
from autoops.lab import docker, image
from autoops.lab.docker import Engine, LabError
from autoops.settings import Settings

LABEL = "autoops.lab"
BASE_PORT = 22200
PORT_SPAN = min(image.PORT_OFFSETS.values())  # SSH ports never reach a host's other ports
MAX_HOSTS = 200
KNOWN_HOSTS_FILE = "known_hosts.txt"  # in inventories/lab: the hosts' SSH host keys
Progress = Callable[[str], None]


@dataclass(frozen=True)
class LabHost:
    name: str
    group: str
    port: int
    container: str

    @property
    def ports(self) -> dict[str, int]:
        """The stack's ports on this host (app, http, https), besides SSH's ``port``."""
        return image.host_ports(self.port)


@dataclass(frozen=True)
class LabPaths:
    lab_dir: Path  # state: keys, known_hosts, lab.json, private engine
    cache_dir: Path  # built root filesystems (kept across labs)
    inventory_dir: Path  # inventories/lab

    @classmethod
    def of(cls, settings: Settings) -> LabPaths:
        """Where the lab of these settings keeps its state, cache and inventory."""
        return cls(settings.lab_dir, settings.cache_dir / "lab",
                   settings.inventories_dir / "lab")

    @property
    def project_dir(self) -> Path:
        return self.inventory_dir.parent.parent

    @property
    def key(self) -> Path:
        return self.lab_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.lab_dir / "known_hosts"

    @property
    def record(self) -> Path:
        return self.lab_dir / "lab.json"


def parse_groups(hosts: int | None, groups: str | None) -> list[tuple[str, str]]:
    """``--groups web=2,db=1`` → [(web1, web), (web2, web), (db1, db)]; else lab1..labN."""
    if groups:
        layout: list[tuple[str, str]] = []
        for part in groups.split(","):
            name, _, count = part.partition("=")
            if not re.fullmatch(r"[a-z][a-z0-9]{0,15}", name) or not count.isdigit():
                raise BadInputError(f"--groups {groups!r}: expected NAME=COUNT,… like web=2,db=1")
            layout += [(f"{name}{i}", name) for i in range(1, int(count) + 1)]
    else:
        layout = [(f"lab{i}", "lab") for i in range(1, (hosts or 3) + 1)]
    if hosts is not None and groups and hosts != len(layout):
        raise BadInputError(f"--hosts {hosts} disagrees with --groups ({len(layout)} hosts)")
    if not 1 <= len(layout) <= MAX_HOSTS or len({n for n, _ in layout}) != len(layout):
        raise BadInputError(f"a lab has 1 to {MAX_HOSTS} hosts with distinct names")
    return layout


def up(paths: LabPaths, layout: list[tuple[str, str]], progress: Progress) -> dict[str, Any]:
    if paths.record.exists():
        raise LabError("a lab is already up", remedy="Run `autoops lab down` first.")
    started = time.monotonic()
    paths.lab_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    engine = docker.find_or_start(paths.lab_dir)
    progress(f"lab: Docker engine at {engine.host}"
             + (" (started by autoops)" if engine.private_dir else ""))
    tag = image.ensure_image(engine, paths.cache_dir, progress)
    _keypair(paths.key)
    pubkey = paths.key.with_suffix(".pub").read_text().strip()
    ports = free_ports(len(layout))
    if len(ports) < len(layout):
        raise LabError(f"only {len(ports)} of {len(layout)} hosts' ports are free on 127.0.0.1 "
                       f"({BASE_PORT} to {BASE_PORT + PORT_SPAN - 1} and their offsets)",
                       remedy="Stop what listens there, or another lab (`autoops lab down`).")
    hosts = [LabHost(name, group, port, f"autoops-lab-{name}")
             for (name, group), port in zip(layout, ports, strict=True)]
    _save(paths, engine, tag, hosts)  # before containers exist: `down` can always clean up
    progress(f"lab: starting {len(hosts)} host(s) …")
    hosts_started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda h: start_host(engine, tag, h, pubkey), hosts))
    wait_for_ssh(hosts, paths.known_hosts, progress)
    _wait_for_stack(hosts, progress)
    write_inventory(paths, hosts)
    took, hosts_took = time.monotonic() - started, time.monotonic() - hosts_started
    progress(f"lab: {len(hosts)} host(s) up in {took:.1f}s ({hosts_took:.1f}s for the hosts "
             "themselves); try `autoops run health --env lab`")
    return {**status(paths), "seconds": round(took, 2), "hosts_seconds": round(hosts_took, 2)}


def _keypair(key: Path) -> None:
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "autoops-lab",
                        "-f", str(key)], check=True)


def free_ports(count: int) -> list[int]:
    """SSH ports whose host's every port (SSH, app, http, https) is free on loopback."""
    ports: list[int] = []
    for port in range(BASE_PORT, BASE_PORT + PORT_SPAN):
        if len(ports) == count:
            break
        if all(_bindable(p) for p in (port, *image.host_ports(port).values())):
            ports.append(port)
    return ports


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_host(engine: Engine, tag: str, host: LabHost, pubkey: str,
               *extra: str) -> None:
    engine.docker("run", "--detach", "--name", host.container, "--hostname", host.name,
                  "--network", "host", "--label", f"{LABEL}=1", "--label",
                  f"{LABEL}.group={host.group}", "--env", f"AUTOOPS_LAB_PUBKEY={pubkey}",
                  *extra, tag, "/usr/local/sbin/autoops-lab-init", str(host.port))


def _deadline(hosts: list[LabHost]) -> float:
    """Two minutes, longer for a big lab: fifty hosts boot their stacks on two cores."""
    return time.monotonic() + max(120.0, 3.0 * len(hosts))


def wait_for_ssh(hosts: list[LabHost], known_hosts: Path, progress: Progress,
                 *, append: bool = False) -> None:
    """Until each host answers SSH; their host keys go to ``known_hosts`` (or are added)."""
    lines: list[str] = []
    deadline = _deadline(hosts)
    for host in hosts:
        while True:
            scan = subprocess.run(["ssh-keyscan", "-T", "2", "-t", "ed25519", "-p",
                                   str(host.port), "127.0.0.1"], capture_output=True,
                                  text=True, check=False)
            if scan.stdout.strip():
                lines += [ln for ln in scan.stdout.splitlines() if not ln.startswith("#")]
                break
            if time.monotonic() > deadline:
                raise LabError(f"{host.name} did not answer SSH on port {host.port}",
                               remedy=f"docker logs {host.container}")
            time.sleep(0.2)
    with known_hosts.open("a" if append else "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")  # in place: a node mounts this very file
    progress(f"lab: SSH answers on {len(hosts)} host(s)")


def _wait_for_stack(hosts: list[LabHost], progress: Progress) -> None:
    """Until Caddy listens on every host: a watch right after ``up`` sees a running stack."""
    deadline = _deadline(hosts)
    for host in hosts:
        for kind in ("http", "https"):
            port = host.ports[kind]
            while not _listens(port):
                if time.monotonic() > deadline:
                    raise LabError(f"{host.name}'s Caddy does not listen on {kind} port {port}",
                                   remedy=f"docker exec {host.container} supervisorctl tail "
                                          "caddy stderr")
                time.sleep(0.2)
    progress(f"lab: Caddy answers on {len(hosts)} host(s)")


def _listens(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def watch_vars() -> dict[str, Any]:
    """What ``autoops watch --env lab`` reads on every host: the lab's whole stack.

    Quick to fire (two readings) so that a failure induced by hand or by a fleet test
    shows within a minute; the crash loop's window is one minute so that it also ends
    soon after the flag is removed. Load is the machine's (the hosts share its CPUs),
    so only an extreme one is news. Caddy's internal CA issues 12-hour certificates
    and renews them at a third left: any days left are fine in the lab.
    """
    supervised = {"manager": "supervisord"}
    return {
        "watch_fail_after": 2,
        "watch_recover_after": 2,
        "watch_load_warning_per_cpu": 6.0,
        "watch_load_critical_per_cpu": 12.0,
        "watch_services": [
            {"name": "autoops-demo", **supervised},
            {"name": "caddy", **supervised},
            {"name": "cron", **supervised},
            {"name": "autoops-crashloop", **supervised, "restarts": 2, "within_minutes": 1},
        ],
        "watch_proxy_logs": [{"path": image.ACCESS_LOG, "window_minutes": 2,
                              "min_requests": 5}],
        "watch_heartbeats": [{"name": "lab-tick", "schedule": "* * * * *",
                              "file": image.HEARTBEAT_FILE, "grace": "2m"}],
        "watch_tls_endpoints": [{"host": "127.0.0.1", "port": "{{ lab_https_port }}",
                                 "warning_days": 0, "critical_days": 0}],
    }


def write_inventory(paths: LabPaths, hosts: list[LabHost]) -> None:
    groups: dict[str, dict[str, Any]] = {}
    for host in hosts:
        groups.setdefault(host.group, {"hosts": {}})["hosts"][host.name] = {
            "ansible_port": host.port,
            **{f"lab_{kind}_port": port for kind, port in host.ports.items()}}
    inv = paths.inventory_dir
    (inv / "group_vars" / "all").mkdir(parents=True, exist_ok=True)
    (inv / KNOWN_HOSTS_FILE).write_text(paths.known_hosts.read_text())
    (inv / "hosts.yml").write_text("---\n# Written by `autoops lab up`; removed by `lab down`.\n"
                                   + yaml.safe_dump({"all": {"children": groups}}))
    common = {
        "ansible_host": "127.0.0.1",
        "autoops_env": "lab",
        "ansible_user": "autoops",
        "ansible_become": True,
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_private_key_file": str(paths.key),
        # The hosts' keys travel with the inventory (an execution node reads them there);
        # Ansible's inventory loader skips .txt files.
        "ansible_ssh_common_args": f"-o 'UserKnownHostsFile={{{{ inventory_dir }}}}/"
                                   f"{KNOWN_HOSTS_FILE}' -o StrictHostKeyChecking=yes",
        "autoops_service_manager": "supervisor",
        "autoops_supervisor_config": "/etc/supervisor/supervisord.conf",
        "autoops_backup_dir": "/var/backups/autoops",
        "autoops_backup_paths": ["/etc/hostname", "/etc/hosts", "/etc/supervisor"],
        "autoops_deploy_state_dir": "/var/lib/autoops/deploy",
        # Deploys are verified through the host's Caddy, as its users reach the app.
        "autoops_apps": {"demo": {"repo": "/srv/git/demo.git", "dest": "/srv/apps/demo",
                                  "service": "autoops-demo", "settle": 5,
                                  "probe": {"url": "http://127.0.0.1:{{ lab_http_port }}/up",
                                            "deadline": 15}}},
    }
    (inv / "group_vars" / "all" / "main.yml").write_text(
        "---\n# Written by `autoops lab up`.\n" + yaml.safe_dump(common, sort_keys=True))
    (inv / "group_vars" / "all" / "watch.yml").write_text(
        "---\n# Written by `autoops lab up`: what `autoops watch --env lab` reads on each "
        "host.\n# Override per host in host_vars/NAME.yml (roles/watch/meta/argument_specs.yml"
        ").\n" + yaml.safe_dump(watch_vars(), sort_keys=False))


def _save(paths: LabPaths, engine: Engine, tag: str, hosts: list[LabHost]) -> None:
    save_record(paths, {"engine": engine.host, "private_engine": str(engine.private_dir or ""),
                        "image": tag, "hosts": [asdict(h) for h in hosts], "nodes": []})


def save_record(paths: LabPaths, record: dict[str, Any]) -> None:
    paths.record.write_text(json.dumps(record, indent=2))


def load_record(paths: LabPaths) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(paths.record.read_text())
    except (OSError, ValueError):
        return None
    return data


def engine_of(record: dict[str, Any]) -> Engine:
    private = record.get("private_engine") or None
    return Engine(record["engine"], Path(private) if private else None)


def status(paths: LabPaths) -> dict[str, Any]:
    record = load_record(paths)
    if record is None:
        return {"up": False, "hosts": []}
    engine = engine_of(record)
    states: dict[str, str] = {}
    ps = engine.docker("ps", "--all", "--filter", f"label={LABEL}=1", "--format",
                       "{{.Names}}\t{{.State}}", check=False)
    for line in ps.stdout.splitlines():
        name, _, state = line.partition("\t")
        states[name] = state
    memory = _memory(engine, list(states))
    hosts = [{**h, "state": states.get(h["container"], "missing"),
              "memory_mib": memory.get(h["container"]),
              **{f"{kind}_port": port for kind, port in image.host_ports(h["port"]).items()}}
             for h in [*record["hosts"], *record.get("nodes", [])]]
    return {"up": True, "engine": record["engine"], "image": record["image"], "hosts": hosts,
            "inventory": str(paths.inventory_dir)}


def _memory(engine: Engine, names: list[str]) -> dict[str, float]:
    if not names:
        return {}
    stats = engine.docker("stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}",
                          *names, check=False)
    found: dict[str, float] = {}
    units = {"B": 1 / 2**20, "KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0}
    for line in stats.stdout.splitlines():
        name, _, usage = line.partition("\t")
        match = re.match(r"([\d.]+)\s*([KMG]?i?B)", usage.strip())
        if match and match.group(2) in units:
            found[name] = round(float(match.group(1)) * units[match.group(2)], 2)
    return found


def stop_host(paths: LabPaths, name: str) -> None:
    """Stop one host's container (to test unreachable hosts)."""
    record = load_record(paths)
    if record is None:
        raise LabError("no lab is up")
    engine_of(record).docker("stop", "--time", "1", f"autoops-lab-{name}")


def down(paths: LabPaths, progress: Progress) -> dict[str, Any]:
    """Remove the lab's containers, inventory, keys and any engine autoops started."""
    record = load_record(paths)
    removed: list[str] = []
    if record is not None:
        engine = engine_of(record)
        ids = engine.docker("ps", "--all", "--quiet", "--filter", f"label={LABEL}=1",
                            check=False).stdout.split()
        if ids:
            progress(f"lab: removing {len(ids)} container(s) …")
            engine.docker("rm", "--force", *ids, check=False)
        removed = [h["name"] for h in record["hosts"]]
        if docker.stop_private(engine) and engine.private_dir is not None:
            progress("lab: stopped the Docker engine autoops had started")
            docker.remove_private(engine.private_dir)
    for path in (paths.record, paths.known_hosts, paths.key, paths.key.with_suffix(".pub"),
                 paths.project_dir / "nodes" / "lab.yml"):  # the lab's execution nodes
        path.unlink(missing_ok=True)
    shutil.rmtree(paths.inventory_dir, ignore_errors=True)
    return {"removed": removed}
