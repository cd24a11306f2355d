"""The lab's base image, built locally from Debian packages and never pulled.

debootstrap a minimal bookworm with OpenSSH, Python 3, sudo, supervisord and git,
add the lab's init script and an unprivileged ``autoops`` user with sudo, then
``docker import`` it. The tag is a hash of this recipe, and the root filesystem
tarball is cached, so a rebuild happens only when the recipe changes.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from autoops.lab.docker import Engine, LabError
from autoops.settings import SYSTEM_PATH

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("openssh-server", "python3", "sudo", "supervisor", "git", "procps", "ca-certificates")

INIT = """#!/bin/sh
# PID 1 of a lab host: fresh host keys, the lab's public key, then supervisord
# running sshd (on the given loopback port) and the demo service.
set -eu
port="$1"
ssh-keygen -A >/dev/null
mkdir -p /run/sshd /home/autoops/.ssh
printf '%s\\n' "$AUTOOPS_LAB_PUBKEY" > /home/autoops/.ssh/authorized_keys
chown -R autoops:autoops /home/autoops/.ssh
chmod 700 /home/autoops/.ssh
chmod 600 /home/autoops/.ssh/authorized_keys
sed "s/@PORT@/$port/" /etc/supervisor/sshd.conf.in > /etc/supervisor/conf.d/sshd.conf
exec /usr/bin/supervisord -n -c /etc/supervisor/supervisord.conf
"""

SSHD = """[program:sshd]
command=/usr/sbin/sshd -D -e -p @PORT@ -o ListenAddress=127.0.0.1 -o PasswordAuthentication=no -o UseDNS=no
autorestart=true
priority=10
"""

DEMO = """[program:autoops-demo]
command=/bin/sleep infinity
autorestart=true
startsecs=1
"""

SETUP = """set -eu
useradd --create-home --shell /bin/bash autoops
echo 'autoops ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/autoops
chmod 0440 /etc/sudoers.d/autoops
rm -f /etc/ssh/ssh_host_*
chmod 0755 /usr/local/sbin/autoops-lab-init
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
"""

Progress = Callable[[str], None]


def recipe_hash() -> str:
    text = "\0".join([SUITE, MIRROR, *PACKAGES, INIT, SSHD, DEMO, SETUP])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def image_tag() -> str:
    return f"autoops-lab:{recipe_hash()}"


def rootfs_tarball(cache_dir: Path) -> Path:
    """Build (or reuse) the root filesystem tarball for this recipe."""
    tarball = cache_dir / f"rootfs-{recipe_hash()}.tar"
    if tarball.exists():
        return tarball
    return _build_rootfs(tarball)


def _build_rootfs(tarball: Path, progress: Progress = print) -> Path:
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not Path(debootstrap).exists():
        raise LabError("debootstrap is not installed", remedy="apt-get install debootstrap")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="autoops-rootfs-", dir=tarball.parent) as tmp:
        root = Path(tmp) / "root"
        progress(f"lab: building the base image with debootstrap ({SUITE}, takes minutes) …")
        _run([debootstrap, "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE,
              str(root), MIRROR], "debootstrap")
        (root / "usr/local/sbin/autoops-lab-init").write_text(INIT)
        (root / "etc/supervisor/sshd.conf.in").write_text(SSHD)
        (root / "etc/supervisor/conf.d/autoops-demo.conf").write_text(DEMO)
        _run(["chroot", str(root), "/bin/sh", "-c", SETUP], "image setup")
        partial = tarball.with_suffix(".tar.partial")
        _run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."], "tar")
        partial.rename(tarball)
    return tarball


def ensure_image(engine: Engine, cache_dir: Path, progress: Progress) -> str:
    """The image tag, importing the cached root filesystem when the engine lacks it."""
    tag = image_tag()
    if engine.docker("image", "inspect", tag, check=False).returncode == 0:
        return tag
    tarball = cache_dir / f"rootfs-{recipe_hash()}.tar"
    if not tarball.exists():
        _build_rootfs(tarball, progress)
    progress(f"lab: importing {tarball.name} as {tag} …")
    engine.docker("import", "--change", 'CMD ["/usr/local/sbin/autoops-lab-init", "2222"]',
                  str(tarball), tag)
    return tag


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                          env={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"})
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise LabError(f"{what} failed (exit {proc.returncode}): {' | '.join(tail)}")
