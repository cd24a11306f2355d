"""A Docker engine for the lab: the running one, or a private dockerd we start.

No registry is reachable, so nothing is ever pulled. A private engine runs with its
own data root, exec root, pid file and socket, no bridge and no iptables changes
(lab hosts use the host's loopback), and is stopped by ``lab down``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from autoops.errors import AutoopsError
from autoops.settings import SYSTEM_PATH


class LabError(AutoopsError):
    code = "AUTOOPS-LAB-FAILED"
    default_remedy = "Check that Docker (docker.io) and debootstrap are installed; run as root."


def docker_cli() -> str:
    """Debian's client matches Debian's dockerd; fall back to any docker on PATH."""
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and Path(candidate).exists():
            return candidate
    raise LabError("no docker client is installed", remedy="apt-get install docker.io")


@dataclass(frozen=True)
class Engine:
    host: str  # DOCKER_HOST url
    private_dir: Path | None  # set when autoops started this dockerd

    def env(self) -> dict[str, str]:
        return _client_environ(self.host)

    def docker(self, *args: str, check: bool = True, timeout: float = 600,
               stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([docker_cli(), *args], env=self.env(), capture_output=True,
                              text=True, timeout=timeout, check=False, input=stdin)
        if check and proc.returncode != 0:
            raise LabError(f"docker {args[0]} failed: {proc.stderr.strip()[-500:]}")
        return proc


def _answers(host: str) -> bool:
    try:
        proc = subprocess.run([docker_cli(), "version", "--format", "{{.Server.Version}}"],
                              env=_client_environ(host), capture_output=True,
                              text=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0


def private_engine(lab_dir: Path) -> Engine:
    return Engine(f"unix://{lab_dir / 'docker' / 'docker.sock'}", lab_dir / "docker")


def find_or_start(lab_dir: Path, system_host: str = "unix:///var/run/docker.sock") -> Engine:
    """Use our private engine if it runs, else the system's, else start a private one."""
    private = private_engine(lab_dir)
    if _answers(private.host):
        return private
    if _answers(system_host):
        return Engine(system_host, None)
    return start_private(lab_dir)


def start_private(lab_dir: Path) -> Engine:
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    if not Path(dockerd).exists():
        raise LabError("no Docker engine answers and dockerd is not installed",
                       remedy="apt-get install docker.io")
    base = lab_dir / "docker"
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    engine = private_engine(lab_dir)
    with (base / "dockerd.log").open("ab") as log:
        _spawn_dockerd(dockerd, base, engine, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if _answers(engine.host):
            return engine
        time.sleep(0.3)
    raise LabError(f"dockerd did not start; see {base / 'dockerd.log'}")


def _spawn_dockerd(dockerd: str, base: Path, engine: Engine, log: BinaryIO) -> None:
    """Start dockerd detached (setsid --fork): it outlives this process until `lab down`."""
    subprocess.run([
        "setsid", "--fork", dockerd, "--bridge=none", "--iptables=false", "--ip6tables=false",
        f"--data-root={base / 'data'}", f"--exec-root={base / 'exec'}",
        f"--pidfile={base / 'dockerd.pid'}", f"--host={engine.host}",
        "--log-level=warn"], stdout=log, stderr=log, stdin=subprocess.DEVNULL, check=True,
        env={"PATH": SYSTEM_PATH})


def remove_private(private_dir: Path) -> None:
    """Remove a stopped private engine's directory and what dockerd left mounted in it.

    dockerd leaves exec/netns/default (an nsfs mount) behind when it stops.
    """
    root = str(private_dir.resolve())
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m == root or m.startswith(root + "/")),
                        key=len, reverse=True):
        subprocess.run(["umount", "--lazy", mount], capture_output=True, check=False)
    shutil.rmtree(private_dir, ignore_errors=True)


def stop_private(engine: Engine) -> bool:
    """Stop a dockerd autoops started (never the system's)."""
    if engine.private_dir is None:
        return False
    pidfile = engine.private_dir / "dockerd.pid"
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.2)
    return True


def _client_environ(host: str) -> dict[str, str]:
    """The docker client's whole environment: the engine to talk to, nothing inherited."""
    return {"PATH": SYSTEM_PATH, "DOCKER_HOST": host}
