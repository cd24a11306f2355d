"""A real service-mode installation with real Unix users, for the boundary tests.

The fixture creates, for one test module: an operators group; two operators, an agent
account and an outsider; a service account through `autoops service install` (its
launcher, a sudoers drop-in validated by visudo, a root-owned config); a project and a
state directory whose paths hold spaces, quotes, `-e @x` words and non-ASCII. Every
attack is then tried as those users through the real entry, `sudo -u SERVICE
LAUNCHER …`. Everything is removed afterwards (users, group, sudoers drop-in).

The service's interpreter must be one the service user can run: this checkout's venv
points into root's home, so the fixture makes a venv from Debian's python3.11 that reads
the same site-packages, with console scripts for the Ansible commands.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import VENV_BIN, make_project

SITE = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" \
    / "site-packages"
SYSTEM_PYTHON = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
WEIRD = " sp ace 'q' -e @x ü"
TOOLS = ("ansible", "ansible-playbook", "ansible-inventory", "ansible-config", "ansible-galaxy")


@dataclass(frozen=True)
class Service:
    base: Path
    user: str
    group: str
    alice: str  # an operator
    bob: str  # another operator
    agent: str  # an operator account an AI agent uses
    eve: str  # an outsider, not in the operators group
    launcher: Path
    config: Path
    project: Path
    state: Path
    sudoers: Path
    python: Path
    install_argv: tuple[str, ...]  # what set it up: running it again must change nothing

    def sudo(self, who: str, *argv: str, env: dict[str, str] | None = None,
             stdin: str | None = None, timeout: float = 300,
             sudo_args: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        """``who`` runs ``sudo -u SERVICE LAUNCHER argv…`` (what an operator types)."""
        return self.as_user(who, "sudo", "-n", *sudo_args, "-u", self.user,
                            str(self.launcher), *argv, env=env, stdin=stdin, timeout=timeout)

    def as_user(self, who: str, *argv: str, env: dict[str, str] | None = None,
                stdin: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
                "HOME": f"/home/{who}"}
        return subprocess.run(["/usr/sbin/runuser", "-u", who, "--", *argv], env={**base, **(env or {})},
                              input=stdin, capture_output=True, text=True, timeout=timeout,
                              check=False, stdin=None if stdin is not None else subprocess.DEVNULL)

    def popen(self, who: str, *argv: str) -> subprocess.Popen[str]:
        return subprocess.Popen(["/usr/sbin/runuser", "-u", who, "--", "sudo", "-n", "-u", self.user,
                                 str(self.launcher), *argv],
                                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def audit(self) -> list[dict[str, object]]:
        path = self.state / "audit" / "audit.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]


def _run(*argv: str) -> None:
    subprocess.run(list(argv), check=True, capture_output=True, text=True, timeout=120)


def _service_venv(base: Path) -> Path:
    """A venv on Debian's interpreter that the service user can run, sharing our packages."""
    venv = base / "venv"
    _run(str(SYSTEM_PYTHON), "-m", "venv", "--without-pip", str(venv))
    site = venv / "lib" / SITE.parent.name / "site-packages"
    (site / "autoops-shared.pth").write_text(f"import site; site.addsitedir({str(SITE)!r})\n")
    python = venv / "bin" / "python"
    for tool in TOOLS:
        body = (VENV_BIN / tool).read_text().split("\n", 1)[1]
        script = venv / "bin" / tool
        script.write_text(f"#!{python}\n{body}")
        script.chmod(0o755)
    return python


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (it creates users and a sudoers entry)"
    for tool in ("sudo", "visudo", "useradd", "runuser"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not SYSTEM_PYTHON.exists():
        return f"{SYSTEM_PYTHON} is not installed"
    return None


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    why = _missing()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"boundary tests cannot run: {why}")
        pytest.skip(why)
    tag = secrets.token_hex(3)
    base = Path(tempfile.mkdtemp(prefix="autoops-boundary-", dir="/tmp"))
    base.chmod(0o755)
    names = {role: f"ao{role}{tag}" for role in ("svc", "ops", "alice", "bob", "agent", "eve")}
    sudoers = Path(f"/etc/sudoers.d/autoops-test-{tag}")
    created: list[str] = []
    try:
        _run("groupadd", names["ops"])
        for role in ("alice", "bob", "agent", "eve"):
            groups = [] if role == "eve" else ["-G", names["ops"]]
            _run("useradd", "--create-home", "--shell", "/bin/sh", *groups, names[role])
            created.append(names[role])
        python = _service_venv(base)
        project = make_project(base / f"project{WEIRD}")
        policy = yaml.safe_load((project / "policy.yml").read_text())
        policy["environments"]["local"].update({
            "unattended_max_risk": "LOW", "confirm_max_risk": "DESTRUCTIVE",
            "two_person_min_risk": "HIGH", "typed_confirmation_max_risk": "MEDIUM",
            "approvers": {"groups": [names["ops"]]}})
        (project / "policy.yml").write_text(yaml.safe_dump(policy, sort_keys=False))
        backups = base / "backups"
        (project / "inventories" / "local" / "group_vars" / "all" / "zz_test.yml").write_text(
            yaml.safe_dump({"autoops_backup_dir": str(backups),
                            "autoops_backup_paths": [str(project / "catalog.yml")]}))
        state = base / f"state{WEIRD}"
        config = base / "etc" / "service.yml"
        launcher = base / "bin" / "autoops"
        install_argv = (
            str(VENV_BIN / "autoops"), "service", "install", "--project", str(project),
            "--python", str(python), "--user", names["svc"], "--group", names["ops"],
            "--home", str(base / "home"), "--state-dir", str(state), "--launcher",
            str(launcher), "--sudoers", str(sudoers), "--config", str(config), "--json")
        install = subprocess.run(
            install_argv, capture_output=True, text=True, timeout=300, check=False,
            env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8"})
        created.append(names["svc"])
        assert install.returncode == 0, install.stdout + install.stderr
        backups.mkdir(mode=0o700)
        shutil.chown(backups, names["svc"], names["svc"])
        yield Service(base=base, user=names["svc"], group=names["ops"], alice=names["alice"],
                      bob=names["bob"], agent=names["agent"], eve=names["eve"],
                      launcher=launcher, config=config, project=project, state=state,
                      sudoers=sudoers, python=python, install_argv=install_argv)
    finally:
        with contextlib.suppress(OSError):
            sudoers.unlink()
        subprocess.run(["pkill", "-9", "-u", names["svc"]], check=False, capture_output=True)
        for user in created:
            subprocess.run(["userdel", "--remove", user], check=False, capture_output=True)
        for group in (names["ops"], names["svc"]):
            subprocess.run(["groupdel", group], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
