"""Service mode set-up: the account, the launcher, the sudoers entry and the root-owned config.

``autoops service install`` (as root, idempotent) makes autoops a privilege boundary,
the way sudo-guarded wrappers are: a system account that alone holds the fleet's SSH
key, the age keys, the grant signing keys and the state directory; a root-owned
launcher that runs autoops as ``python -I -m autoops`` with the config path pinned; and
a sudoers drop-in (validated with ``visudo -c``) that lets the operators group run that
launcher, and only that, as the service account, with ``env_reset`` and no ``setenv``.
``autoops service uninstall`` removes the launcher, the drop-in and the config; it keeps
the account, its keys and the state directory (the audit log is evidence).
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from autoops.common.names import UNIX_NAME
from autoops.errors import BadInputError, ServiceInvalidError
from autoops.settings import SERVICE_CONFIG_PATH, SERVICE_CONFIG_VAR, ServiceConfig, trusted_path

_PLAIN_PATH = re.compile(r"/[A-Za-z0-9._/+-]+")  # a path sudoers needs no escaping for
NOLOGIN = "/usr/sbin/nologin"
Runner = Callable[[list[str]], subprocess.CompletedProcess[str]]


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False,
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"})


@dataclass(frozen=True)
class InstallOptions:
    project_dir: Path
    python: Path  # an interpreter the service user can run, with autoops importable
    user: str = "autoops"
    operators: str = "autoops-operators"
    home: Path = Path("/var/lib/autoops")
    state_dir: Path | None = None  # default HOME/state
    config_dir: Path | None = None  # default HOME/config
    launcher: Path = Path("/usr/local/bin/autoops")
    sudoers: Path = Path("/etc/sudoers.d/autoops")
    config: Path = SERVICE_CONFIG_PATH
    witness: str | None = None
    metrics_dir: Path | None = None  # node_exporter's textfile directory (autoops metrics)

    def service_config(self) -> ServiceConfig:
        return ServiceConfig(path=self.config, user=self.user, operators=self.operators,
                             project_dir=self.project_dir,
                             state_dir=self.state_dir or self.home / "state",
                             config_dir=self.config_dir or self.home / "config",
                             witness=self.witness, launcher=self.launcher, sudoers=self.sudoers,
                             metrics_dir=self.metrics_dir)


def launcher_text(python: Path, config: Path) -> str:
    """The root-owned launcher sudoers names: pins the config, isolates the interpreter."""
    return ("#!/bin/sh\n"
            "# autoops service-mode launcher, written by `autoops service install`.\n"
            "# -I: no PYTHON* variables, no user site-packages, no script directory on the path.\n"
            f"{SERVICE_CONFIG_VAR}={shlex.quote(str(config))}\n"
            f"export {SERVICE_CONFIG_VAR}\n"
            f'exec {shlex.quote(str(python))} -I -m autoops "$@"\n')


def sudoers_text(launcher: Path, user: str, operators: str, drop_in: Path) -> str:
    """The sudoers drop-in: the operators group runs the launcher, only it, as ``user``."""
    alias = "AUTOOPS_" + hashlib.sha256(str(drop_in).encode()).hexdigest()[:10].upper()
    return ("# autoops service mode, written by `autoops service install` (removed by\n"
            "# `autoops service uninstall`). Members of the operators group run autoops as\n"
            "# the service account, nothing else; sudo resets the environment and forbids\n"
            "# setting variables, so nothing the caller sets reaches autoops.\n"
            f"Cmnd_Alias {alias} = {launcher}\n"
            f"Defaults!{alias} env_reset, !setenv\n"
            f"%{operators} ALL=({user}) NOPASSWD: {alias}\n")


def install(opts: InstallOptions, run: Runner = _run) -> dict[str, Any]:
    """Create or update everything service mode needs; report what changed."""
    _must_be_root()
    for name in (opts.user, opts.operators):
        if not re.fullmatch(UNIX_NAME, name):
            raise BadInputError(f"{name!r} is not a valid Unix user or group name")
    for path in (opts.launcher, opts.sudoers):
        if not _PLAIN_PATH.fullmatch(str(path)):
            raise BadInputError(f"{path} must be a plain absolute path (letters, digits, ._+-/)")
    if "." in opts.sudoers.name or opts.sudoers.name.endswith("~"):
        raise BadInputError(f"{opts.sudoers}: sudo ignores drop-ins whose name holds '.' or ends "
                            "in '~'", remedy="Use a name like /etc/sudoers.d/autoops.")
    config = opts.service_config()
    done: dict[str, str] = {}
    done["group"] = _ensure_group(opts.operators, run)
    done["user"] = _ensure_user(opts.user, opts.home, run)
    account = pwd.getpwnam(opts.user)
    trusted_path(opts.project_dir, owners=frozenset({0, account.pw_uid}))
    for path in (config.state_dir, config.config_dir):
        done[str(path)] = _private_dir(path, account)
    done["ssh_key"] = _ensure_ssh_key(Path(account.pw_dir), account, run)
    _check_python(opts.python, opts.user, run)
    done[str(opts.config)] = _write_root_file(opts.config, yaml.safe_dump(
        config.to_dict(), sort_keys=False), 0o644)
    ServiceConfig.load(opts.config)  # what autoops will read: trusted and well-formed
    done[str(opts.launcher)] = _write_root_file(
        opts.launcher, launcher_text(opts.python, opts.config), 0o755)
    done[str(opts.sudoers)] = _install_sudoers(
        opts.sudoers, sudoers_text(opts.launcher, opts.user, opts.operators, opts.sudoers), run)
    return {"config": config.to_dict(), "changes": done,
            "ssh_public_key": _read(Path(account.pw_dir) / ".ssh" / "id_ed25519.pub"),
            "entry": f"sudo -u {opts.user} {opts.launcher} …"}


def uninstall(config_path: Path) -> dict[str, Any]:
    """Remove the launcher, the sudoers drop-in and the config; keep account and state."""
    _must_be_root()
    config = ServiceConfig.load(config_path)
    removed = []
    for path in (config.sudoers, config.launcher, config.path):
        if path is not None and path.exists():
            path.unlink()
            removed.append(str(path))
    return {"removed": removed, "kept": {
        "user": config.user, "group": config.operators, "state_dir": str(config.state_dir),
        "config_dir": str(config.config_dir),
        "note": "the account, its keys and the audit log stay; remove them by hand if meant"}}


def status(config_path: Path, run: Runner = _run) -> dict[str, Any]:
    """Check an installation: config trusted, account present, launcher and sudoers intact."""
    config = ServiceConfig.load(config_path)
    problems = []
    try:
        pwd.getpwnam(config.user)
    except KeyError:
        problems.append(f"no user {config.user}")
    if config.launcher is not None and not config.launcher.is_file():
        problems.append(f"launcher {config.launcher} is missing")
    if config.sudoers is not None:
        check = run(["visudo", "-c", "-q", "-f", str(config.sudoers)])
        if check.returncode != 0:
            problems.append(f"{config.sudoers} does not validate: {check.stderr.strip()}")
    return {"config": config.to_dict(), "ok": not problems, "problems": problems}


def _must_be_root() -> None:
    if os.geteuid() != 0:
        raise BadInputError("autoops service install/uninstall must run as root",
                            remedy="Run it with sudo.")


def _ensure_group(name: str, run: Runner) -> str:
    try:
        grp.getgrnam(name)
    except KeyError:
        _checked(run(["groupadd", "--system", name]), f"groupadd {name}")
        return "created"
    return "present"


def _ensure_user(name: str, home: Path, run: Runner) -> str:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        _checked(run(["useradd", "--system", "--user-group", "--create-home", "--home-dir",
                      str(home), "--shell", NOLOGIN, name]), f"useradd {name}")
        entry = pwd.getpwnam(name)
        os.chmod(entry.pw_dir, 0o700)  # noqa: PTH101 - the home holds the fleet's keys
        return "created"
    if entry.pw_uid == 0:
        raise ServiceInvalidError(f"{name} is root: the service account must be its own user")
    return "present"


def _private_dir(path: Path, account: pwd.struct_passwd) -> str:
    existed = path.is_dir()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chown(path, account.pw_uid, account.pw_gid)
    path.chmod(0o700)
    return "present" if existed else "created"


def _ensure_ssh_key(home: Path, account: pwd.struct_passwd, run: Runner) -> str:
    """The fleet's SSH key, the service account's alone (distribute the .pub)."""
    ssh = home / ".ssh"
    key = ssh / "id_ed25519"
    if key.exists():
        return "present"
    _private_dir(ssh, account)
    _checked(run(["runuser", "-u", account.pw_name, "--", "ssh-keygen", "-q", "-t", "ed25519",
                  "-N", "", "-C", f"{account.pw_name}@autoops", "-f", str(key)]),
             "ssh-keygen")
    return "created"


def _check_python(python: Path, user: str, run: Runner) -> None:
    probe = run(["runuser", "-u", user, "--", str(python), "-I", "-c", "import autoops"])
    if probe.returncode != 0:
        raise ServiceInvalidError(
            f"{user} cannot run autoops with {python}: {probe.stderr.strip()[-300:]}",
            remedy="Install autoops where the service user can run it, e.g. `python3 -m venv "
                   "/opt/autoops && /opt/autoops/bin/pip install …`, then --python "
                   "/opt/autoops/bin/python.")


def _write_root_file(path: Path, text: str, mode: int) -> str:
    """Write atomically, owned by root; report whether it changed."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        os.chown(path, 0, 0)
        path.chmod(mode)
        return "unchanged"
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chown(tmp, 0, 0)
    os.chmod(tmp, mode)  # noqa: PTH101 - the temp file's path is a str
    Path(tmp).replace(path)
    return "written"


def _install_sudoers(path: Path, text: str, run: Runner) -> str:
    """Validate with visudo before it takes effect; a broken file never lands."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return "unchanged"
    fd, tmp = tempfile.mkstemp(prefix="autoops-sudoers-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o440)  # noqa: PTH101 - the temp file's path is a str
        _checked(run(["visudo", "-c", "-q", "-f", tmp]), "visudo -c (the new drop-in)")
        path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        shutil.copyfile(tmp, path.with_name(f".{path.name}.new"))
        staged = path.with_name(f".{path.name}.new")
        os.chown(staged, 0, 0)
        staged.chmod(0o440)
        staged.replace(path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    whole = run(["visudo", "-c", "-q"])
    if whole.returncode != 0:
        path.unlink()
        raise ServiceInvalidError(f"sudoers does not validate with {path}: {whole.stderr.strip()}")
    return "written"


def _checked(proc: subprocess.CompletedProcess[str], what: str) -> None:
    if proc.returncode != 0:
        raise ServiceInvalidError(f"{what} failed: {(proc.stderr or proc.stdout).strip()[-300:]}")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
