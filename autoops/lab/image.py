"""The lab's base image, built locally from Debian packages and never pulled.

debootstrap a minimal bookworm with OpenSSH, Python 3, sudo, supervisord, git, Caddy
and cron, add the lab's init script, the operator's stack (a demo app behind Caddy, a
cron heartbeat, a switchable crash loop) and an unprivileged ``autoops`` user with
sudo, then ``docker import`` it. The tag is a hash of this recipe, and the root
filesystem tarball is cached, so a rebuild happens only when the recipe changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from autoops.lab.docker import Engine, LabError
from autoops.settings import SYSTEM_PATH

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("openssh-server", "python3", "sudo", "supervisor", "git", "procps", "ca-certificates",
            "adduser", "caddy", "cron")

# A host's ports, all on 127.0.0.1 and derived from its SSH port so that hosts sharing the
# network never collide. The offsets keep them below Linux's ephemeral range (32768 on),
# where an outgoing connection could hold a port before the host binds it.
PORT_OFFSETS = {"app": 1000, "http": 2000, "https": 3000}
CRASH_FLAG = "/etc/autoops-lab/crash"
HEARTBEAT_FILE = "/var/lib/autoops/heartbeats/lab-tick"
ACCESS_LOG = "/var/log/caddy/access.log"


def _fill(text: str, **values: object) -> str:
    """``@NAME@`` markers replaced at build time (the init script fills in the ports)."""
    for name, value in values.items():
        text = text.replace(f"@{name}@", str(value))
    return text


INIT = _fill("""#!/bin/sh
# PID 1 of a lab host: fresh host keys, the lab's public key, this host's ports (derived
# from the SSH port in $1) in the stack's configs, then supervisord running sshd, the
# demo app, Caddy, cron and the crash loop.
set -eu
port="$1"
app=$((port + @APP_OFFSET@))
http=$((port + @HTTP_OFFSET@))
https=$((port + @HTTPS_OFFSET@))
ssh-keygen -A >/dev/null
mkdir -p /run/sshd /home/autoops/.ssh
printf '%s\\n' "$AUTOOPS_LAB_PUBKEY" > /home/autoops/.ssh/authorized_keys
chown -R autoops:autoops /home/autoops/.ssh
chmod 700 /home/autoops/.ssh
chmod 600 /home/autoops/.ssh/authorized_keys
ports() {
  sed -e "s/@PORT@/$port/g" -e "s/@APP_PORT@/$app/g" -e "s/@HTTP_PORT@/$http/g" \\
      -e "s/@HTTPS_PORT@/$https/g" "$1" > "$2"
}
for program in sshd autoops-demo caddy; do
  ports "/etc/supervisor/$program.conf.in" "/etc/supervisor/conf.d/$program.conf"
done
ports /etc/caddy/Caddyfile.in /etc/caddy/Caddyfile
printf 'ssh=%s\\napp=%s\\nhttp=%s\\nhttps=%s\\n' "$port" "$app" "$http" "$https" \\
  > /etc/autoops-lab/ports
mkdir -p /var/log/caddy "$(dirname @HEARTBEAT@)"
chown caddy:caddy /var/log/caddy
# Caddy opens its log at the first request; before that the log exists, empty.
[ -e @ACCESS_LOG@ ] || install -o caddy -g caddy -m 0640 /dev/null @ACCESS_LOG@
# A host that just came up counts as having just ticked: its first minute is not a
# missed heartbeat.
touch @HEARTBEAT@
exec /usr/bin/supervisord -n -c /etc/supervisor/supervisord.conf
""", APP_OFFSET=PORT_OFFSETS["app"], HTTP_OFFSET=PORT_OFFSETS["http"],
             HTTPS_OFFSET=PORT_OFFSETS["https"], HEARTBEAT=HEARTBEAT_FILE,
             ACCESS_LOG=ACCESS_LOG)

SSHD = """[program:sshd]
command=/usr/sbin/sshd -D -e -p @PORT@ -o ListenAddress=127.0.0.1 -o PasswordAuthentication=no -o UseDNS=no
autorestart=true
priority=10
"""

DEMO = """[program:autoops-demo]
command=/usr/local/bin/autoops-demo @APP_PORT@
user=www-data
autorestart=true
startsecs=1
"""

DEMO_APP = '''#!/usr/bin/python3
"""autoops-demo: the lab's app behind Caddy, on 127.0.0.1:PORT (argv[1]).

Answers every GET with the host's name and the deployed version (the deploy role's
release linked at /srv/apps/demo), so a deploy or a restart shows through the proxy.
Its health path /up answers what the release's code says: the status in its HEALTH
file (200 without one), and a release with a CRASH file exits 1 that many seconds after
it starts: a bad revision, and one that crash-loops after its probe passed.
"""
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RELEASE = "/srv/apps/demo"


def read(name, default):
    try:
        with open(os.path.join(RELEASE, name), encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return default


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        version = read("VERSION", "none")
        status = int(read("HEALTH", "200")) if self.path == "/up" else 200
        body = ("autoops-demo on %s, version %s\\n" % (socket.gethostname(), version)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # Caddy keeps the access log
        pass


crash = read("CRASH", "")
if crash:
    threading.Timer(float(crash), lambda: os._exit(1)).start()
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
'''

# One OS thread and an eager collector: fifty Caddies share two cores and the memory.
CADDY = """[program:caddy]
command=/usr/bin/caddy run --config /etc/caddy/Caddyfile --adapter caddyfile
user=caddy
environment=HOME="/var/lib/caddy",XDG_DATA_HOME="/var/lib/caddy/.local/share",XDG_CONFIG_HOME="/var/lib/caddy/.config",GOMAXPROCS="1",GOGC="50"
autorestart=true
startsecs=1
priority=20
"""

# No admin endpoint (nothing to collide on), no trust store to install into, no
# redirects, no HTTP/3 (UDP); both sites bound to loopback only, logging JSON where watch
# reads it. A client without SNI (watch reading 127.0.0.1) gets the 127.0.0.1 certificate.
CADDYFILE = _fill("""# Written by autoops-lab-init from /etc/caddy/Caddyfile.in with this host's ports.
{
\tadmin off
\tskip_install_trust
\tauto_https disable_redirects
\tdefault_sni 127.0.0.1
\tservers {
\t\tprotocols h1 h2
\t}
}

(lab) {
\tbind 127.0.0.1
\treverse_proxy 127.0.0.1:@APP_PORT@
\tlog {
\t\toutput file @ACCESS_LOG@ {
\t\t\troll_size 10MiB
\t\t\troll_keep 2
\t\t}
\t\tformat json
\t}
}

http://:@HTTP_PORT@ {
\timport lab
}

https://127.0.0.1:@HTTPS_PORT@ {
\ttls internal
\timport lab
}
""", ACCESS_LOG=ACCESS_LOG)

# It echoes first: supervisord's loop wakes on the output and marks it RUNNING at once
# (startsecs=0), so a loop shows as restarts rather than as a service that is down.
CRASHLOOP = _fill("""#!/bin/sh
# autoops-crashloop: idles; while @FLAG@ exists it exits 1 a second after each
# start, so supervisord restarts it in a loop (touch the file to start it, rm to end it).
echo "autoops-crashloop: started"
while [ ! -e @FLAG@ ]; do sleep 2; done
sleep 1
echo "autoops-crashloop: @FLAG@ exists, exiting 1" >&2
exit 1
""", FLAG=CRASH_FLAG)

CRASHLOOP_PROGRAM = """[program:autoops-crashloop]
command=/usr/local/sbin/autoops-crashloop
user=nobody
autorestart=true
startsecs=0
"""

CRON_PROGRAM = """[program:cron]
command=/usr/sbin/cron -f
autorestart=true
"""

CRON_HEARTBEAT = f"""# The lab's heartbeat, declared to watch as lab-tick (every minute, grace 2m).
* * * * * root touch {HEARTBEAT_FILE}
"""

SETUP = """set -eu
useradd --create-home --shell /bin/bash autoops
echo 'autoops ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/autoops
chmod 0440 /etc/sudoers.d/autoops
rm -f /etc/ssh/ssh_host_*
chmod 0755 /usr/local/sbin/autoops-lab-init /usr/local/sbin/autoops-crashloop \\
  /usr/local/bin/autoops-demo
chmod 0644 /etc/cron.d/autoops-heartbeat
# A container may not set the audit login uid; as "required", cron would run no job.
sed -i 's/^session\\s\\+required\\s\\+pam_loginuid.so/session optional pam_loginuid.so/' \\
  /etc/pam.d/cron
mkdir -p /etc/autoops-lab /srv/apps
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
"""

FILES = {
    "usr/local/sbin/autoops-lab-init": INIT,
    "etc/supervisor/sshd.conf.in": SSHD,
    "etc/supervisor/autoops-demo.conf.in": DEMO,
    "etc/supervisor/caddy.conf.in": CADDY,
    "etc/supervisor/conf.d/autoops-crashloop.conf": CRASHLOOP_PROGRAM,
    "etc/supervisor/conf.d/cron.conf": CRON_PROGRAM,
    "usr/local/bin/autoops-demo": DEMO_APP,
    "usr/local/sbin/autoops-crashloop": CRASHLOOP,
    "etc/caddy/Caddyfile.in": CADDYFILE,
    "etc/cron.d/autoops-heartbeat": CRON_HEARTBEAT,
}
"""Every file the recipe adds to the debootstrap tree, by path inside it."""

Progress = Callable[[str], None]


def host_ports(ssh_port: int) -> dict[str, int]:
    """A host's stack ports (app, http, https), as its init script derives them."""
    return {name: ssh_port + offset for name, offset in PORT_OFFSETS.items()}


def recipe_hash() -> str:
    text = "\0".join([SUITE, MIRROR, *PACKAGES, *(f"{k}\n{v}" for k, v in FILES.items()),
                      SETUP])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def image_tag() -> str:
    return f"autoops-lab:{recipe_hash()}"


def rootfs_tarball(cache_dir: Path) -> Path:
    """Build (or reuse) the root filesystem tarball for this recipe."""
    tarball = cache_dir / f"rootfs-{recipe_hash()}.tar"
    if tarball.exists():
        return tarball
    return build_rootfs(tarball)


def build_rootfs(tarball: Path, progress: Progress = print, *,
                  packages: tuple[str, ...] = PACKAGES, files: dict[str, str] | None = None,
                  setup: str = SETUP) -> Path:
    """debootstrap ``packages``, add ``files``, run ``setup`` in it, and tar it up."""
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not Path(debootstrap).exists():
        raise LabError("debootstrap is not installed", remedy="apt-get install debootstrap")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="autoops-rootfs-", dir=tarball.parent) as tmp:
        root = Path(tmp) / "root"
        progress(f"building a {SUITE} root filesystem with debootstrap (takes minutes) …")
        _run([debootstrap, "--variant=minbase", f"--include={','.join(packages)}", SUITE,
              str(root), MIRROR], "debootstrap")
        for name, text in (FILES if files is None else files).items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        _run(["chroot", str(root), "/bin/sh", "-c", setup], "image setup")
        # Per process: two labs building at once must not write one partial file.
        partial = tarball.with_name(f"{tarball.name}.{os.getpid()}.partial")
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
        build_rootfs(tarball, progress)
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
