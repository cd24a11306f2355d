"""One frozen settings object: the only place that reads environment variables.

autoops runs in one of two modes:

- **service mode** — autoops runs as a dedicated service account that alone holds the
  fleet's SSH key, the age keys, the grant signing keys and the state directory, and
  callers reach it through ``sudo -u SERVICE autoops …``. Everything that decides what
  runs comes from a root-owned config file (``/etc/autoops/service.yml``), never from
  the caller's environment, and the actor is the invoking Unix user (from sudo, checked
  against the passwd database).
- **same-user mode** — a laptop or a checkout: autoops runs as you, with your keys. It
  is a safety rail, not a boundary (you could run ansible-playbook yourself).

In both modes every child process (ansible-runner, ansible-playbook, ansible, sops,
git, the editor) gets an environment built from an allowlist: inherited variables that
could change what runs or where output goes are dropped and named in a notice.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import re
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from autoops.common import identity
from autoops.common.names import UNIX_NAME
from autoops.errors import ServiceCallerError, ServiceInvalidError

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent

SERVICE_CONFIG_PATH = Path("/etc/autoops/service.yml")
# Set by the root-owned launcher `autoops service install` writes (after sudo's env_reset).
SERVICE_CONFIG_VAR = "AUTOOPS_SERVICE_CONFIG"
INLINE_KEY_VAR = "SOPS_AGE_KEY"  # the age key itself, not a path: forgotten once read
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Inherited variables a child process may see, with the caller's values: locale and
# terminal only (and, in same-user mode, the caller's own ssh-agent).
_LOCALE = re.compile(r"^(LANG|LANGUAGE|LC_[A-Z_]+)$")
_PASS_THROUGH = frozenset({"TERM", "COLORTERM", "NO_COLOR"})
_USER_PASS_THROUGH = frozenset({"SSH_AUTH_SOCK"})
# Inherited variables worth naming when they are dropped: they could change what runs,
# what is loaded, or where output goes.
_NOTABLE_PREFIXES = ("ANSIBLE_", "PYTHON", "LD_", "SOPS_", "AUTOOPS_", "GIT_", "DYLD_")
_NOTABLE = frozenset({"BASH_ENV", "ENV", "TMPDIR", "TZ", "TZDIR", "PERL5LIB", "PERLLIB",
                      "RUBYLIB", "NODE_OPTIONS", "LOCPATH", "GCONV_PATH"})
# What autoops itself reads in same-user mode (never passed on as such).
_CONSUMED = frozenset({"AUTOOPS_PROJECT_DIR", "AUTOOPS_STATE_DIR", "AUTOOPS_AUDIT_WITNESS",
                       "AUTOOPS_METRICS_DIR", SERVICE_CONFIG_VAR, "SOPS_AGE_KEY_FILE", "JOB_ID",
                       INLINE_KEY_VAR})


@dataclass(frozen=True)
class ServiceConfig:
    """The root-owned service-mode configuration (``/etc/autoops/service.yml``)."""

    path: Path
    user: str  # the service account autoops runs as
    operators: str  # the Unix group whose members may call it through sudo
    project_dir: Path
    state_dir: Path
    config_dir: Path  # age keys and grant signing keys (0700, the service user's)
    witness: str | None = None
    launcher: Path | None = None
    sudoers: Path | None = None
    metrics_dir: Path | None = None  # node_exporter's textfile directory (optional)

    @classmethod
    def load(cls, path: Path) -> ServiceConfig:
        """Read and check the file: root's, not writable by anyone else, keys known."""
        trusted_path(path, ServiceInvalidError)
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ServiceInvalidError(f"cannot read {path}: {exc}") from None
        known = {"version", "user", "operators", "project_dir", "state_dir", "config_dir",
                 "witness", "launcher", "sudoers", "metrics_dir"}
        if not isinstance(doc, dict) or doc.get("version") != 1:
            raise ServiceInvalidError(f"{path}: not an autoops service config (version: 1)")
        unknown = sorted(set(doc) - known)
        missing = sorted({"user", "operators", "project_dir", "state_dir", "config_dir"}
                         - set(doc))
        if unknown or missing:
            raise ServiceInvalidError(f"{path}: unknown keys {unknown}, missing keys {missing}")
        paths = {}
        for key in ("project_dir", "state_dir", "config_dir", "launcher", "sudoers",
                    "metrics_dir"):
            value = doc.get(key)
            if value is None:
                continue
            if not isinstance(value, str) or not Path(value).is_absolute():
                raise ServiceInvalidError(f"{path}: {key} must be an absolute path")
            paths[key] = Path(value)
        for key in ("user", "operators"):
            if not isinstance(doc[key], str) or not re.fullmatch(UNIX_NAME,
                                                                 doc[key]):
                raise ServiceInvalidError(f"{path}: {key} must be a Unix user/group name")
        witness = doc.get("witness")
        if witness is not None and not isinstance(witness, str):
            raise ServiceInvalidError(f"{path}: witness must be a URL string")
        return cls(path=path, user=doc["user"], operators=doc["operators"],
                   project_dir=paths["project_dir"], state_dir=paths["state_dir"],
                   config_dir=paths["config_dir"], witness=witness,
                   launcher=paths.get("launcher"), sudoers=paths.get("sudoers"),
                   metrics_dir=paths.get("metrics_dir"))

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, "user": self.user, "operators": self.operators,
                "project_dir": str(self.project_dir), "state_dir": str(self.state_dir),
                "config_dir": str(self.config_dir), "witness": self.witness,
                "launcher": str(self.launcher) if self.launcher else None,
                "sudoers": str(self.sudoers) if self.sudoers else None,
                "metrics_dir": str(self.metrics_dir) if self.metrics_dir else None}


def trusted_path(path: Path, error: type[ServiceInvalidError] = ServiceInvalidError,
                 owners: frozenset[int] = frozenset({0})) -> None:
    """Refuse ``path`` unless it and every directory above it are safe from others.

    Each must be owned by one of ``owners`` (root by default) and writable by nobody
    else; a world-writable directory is accepted only with the sticky bit and a
    root owner (``/tmp``), where nobody else can rename what it holds — as OpenSSH's
    StrictModes does.
    """
    try:
        st = path.lstat()
    except OSError as exc:
        raise error(f"cannot use {path}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise error(f"{path} is a symbolic link", remedy="Give the real path.")
    if st.st_uid not in owners or st.st_mode & 0o022:
        raise error(f"{path} must be owned by root and writable by nobody else "
                    f"(owner uid {st.st_uid}, mode {st.st_mode & 0o777:o})",
                    remedy=f"chown root:root {path} && chmod go-w {path}")
    for parent in path.parents:
        pst = parent.stat()
        sticky = pst.st_mode & stat.S_ISVTX and pst.st_uid == 0
        if pst.st_uid not in owners | {0} or (pst.st_mode & 0o022 and not sticky):
            raise error(f"{parent} (above {path}) can be changed by others "
                        f"(owner uid {pst.st_uid}, mode {pst.st_mode & 0o777:o})",
                        remedy=f"chmod go-w {parent}, owned by root")


@dataclass(frozen=True)
class Settings:
    """Where autoops finds its content and keeps its state, and who is running it."""

    project_dir: Path
    state_dir: Path
    os_user: str  # the acting Unix user: the sudo caller in service mode
    python: Path
    search_path: str
    cache_dir: Path
    config_dir: Path
    # SOPS_AGE_KEY_FILE / SOPS_AGE_KEY override the per-environment key files (CI, AWX);
    # never in service mode.
    age_key_file: Path | None = None
    age_key: str | None = field(default=None, repr=False)
    editor: str | None = None
    # Where each durable audit record is also sent (syslog, RFC 5424): unix:///dev/log,
    # udp://HOST:PORT or tcp://HOST:PORT. None: no witness.
    witness: str | None = None
    # Where `autoops.prom` is kept for node_exporter's textfile collector. None: metrics off
    # (still counted in state.db, never written).
    metrics_dir: Path | None = None
    home: Path | None = None  # HOME for child processes (default: the account's home)
    # AWX's job id (its JOB_ID in a job's environment): the guard believes awx_* variables
    # only for that job.
    awx_job_id: str | None = None
    # On an execution node reached through the forced command: what the controller asked
    # for (sshd's SSH_ORIGINAL_COMMAND); autoops.node runs only its own verbs from it.
    ssh_original_command: str | None = None
    passthrough: Mapping[str, str] = field(default_factory=dict)  # locale, TERM, …
    ignored_environ: tuple[str, ...] = ()  # inherited variables dropped (named in a notice)
    service: ServiceConfig | None = None

    @property
    def mode(self) -> str:
        return "service" if self.service is not None else "same-user"

    @property
    def catalog_path(self) -> Path:
        return self.project_dir / "catalog.yml"

    @property
    def policy_path(self) -> Path:
        return self.project_dir / "policy.yml"

    @property
    def inventories_dir(self) -> Path:
        return self.project_dir / "inventories"

    @property
    def audit_path(self) -> Path:
        return self.state_dir / "audit" / "audit.jsonl"

    @property
    def db_path(self) -> Path:
        return self.state_dir / "state.db"

    @property
    def runs_dir(self) -> Path:
        """Parent of the per-run private data dirs (each 0700, removed after its run)."""
        return self.state_dir / "runs"

    @property
    def lab_dir(self) -> Path:
        """The lab's keys, known_hosts, record and (if autoops started one) Docker engine."""
        return self.state_dir / "lab"

    @property
    def node_seen_dir(self) -> Path:
        """On an execution node: the run ids it took (a ticket is good for one run)."""
        return self.state_dir / "node-seen"

    @property
    def age_keys_dir(self) -> Path:
        """Per-environment age private keys (0600), outside any repository."""
        return self.config_dir / "age"

    @property
    def account(self) -> str:
        """The Unix account this process runs as (the service user in service mode)."""
        return self.service.user if self.service is not None else _account_name()

    def child_environ(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The whole environment of a child process: the allowlist plus ``extra``.

        Nothing inherited reaches a child unless it is locale or terminal (see
        ``passthrough``); what autoops needs it sets itself.
        """
        account = self.account
        env = dict(self.passthrough)
        env.update({
            "PATH": f"{self.python.parent}{os.pathsep}{self.search_path}",
            "HOME": str(self.home or _home_of(account) or Path.home()),
            "USER": account, "LOGNAME": account,
        })
        env.update(extra or {})
        return env

    def locator_environ(self) -> dict[str, str]:
        """What a child autoops (the guard play in a run) needs to find these same settings."""
        if self.service is not None:
            return {SERVICE_CONFIG_VAR: str(self.service.path)}
        return {"AUTOOPS_PROJECT_DIR": str(self.project_dir),
                "AUTOOPS_STATE_DIR": str(self.state_dir)}

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the process environment (or ``environ``).

        The project (catalog, policy, inventories, playbooks) is never looked up from
        the current directory: a stray catalog.yml in a hostile directory must not
        become the allowlist. In same-user mode it is ``$AUTOOPS_PROJECT_DIR`` or this
        source checkout; in service mode, the root-owned config says.
        """
        if environ is None:
            settings = cls._from(os.environ)
            _forget_in_process(INLINE_KEY_VAR)
            return settings
        return cls._from(environ)

    @classmethod
    def _from(cls, env: Mapping[str, str]) -> Settings:
        explicit = env.get(SERVICE_CONFIG_VAR)
        config_path = Path(explicit) if explicit else SERVICE_CONFIG_PATH
        if explicit or _exists(config_path):
            service = ServiceConfig.load(config_path)
            account = _account_name()
            if account == service.user:
                return cls._service_mode(service, env)
            if explicit:  # the launcher, run by someone other than the service user
                raise ServiceCallerError(
                    f"autoops runs as the service user {service.user!r} here, not as {account}",
                    remedy=f"Run it as `sudo -u {service.user} autoops …`.")
        return cls._same_user_mode(env)

    @classmethod
    def _same_user_mode(cls, env: Mapping[str, str]) -> Settings:
        project = Path(env.get("AUTOOPS_PROJECT_DIR") or _PACKAGE_ROOT).resolve()
        home = Path(env.get("HOME") or _home_of(_account_name()) or "~")
        if env.get("AUTOOPS_STATE_DIR"):
            state = Path(env["AUTOOPS_STATE_DIR"])
        else:
            state = Path(env.get("XDG_STATE_HOME") or home / ".local" / "state") / "autoops"
        return cls(
            project_dir=project,
            state_dir=state.expanduser().resolve(),
            os_user=_os_user(),
            python=Path(sys.executable),
            search_path=env.get("PATH", os.defpath),
            cache_dir=Path(env.get("XDG_CACHE_HOME") or home / ".cache").expanduser() / "autoops",
            config_dir=Path(env.get("XDG_CONFIG_HOME") or home / ".config")
            .expanduser() / "autoops",
            age_key_file=Path(env["SOPS_AGE_KEY_FILE"]).expanduser()
            if env.get("SOPS_AGE_KEY_FILE") else None,
            age_key=env.get(INLINE_KEY_VAR) or None,
            editor=env.get("VISUAL") or env.get("EDITOR") or None,
            witness=env.get("AUTOOPS_AUDIT_WITNESS") or None,
            metrics_dir=Path(env["AUTOOPS_METRICS_DIR"]).expanduser().resolve()
            if env.get("AUTOOPS_METRICS_DIR") else None,
            home=home.expanduser(),
            awx_job_id=env.get("JOB_ID") or None,
            ssh_original_command=env.get("SSH_ORIGINAL_COMMAND"),
            passthrough=_passthrough(env, _PASS_THROUGH | _USER_PASS_THROUGH),
            ignored_environ=_ignored(env, _CONSUMED),
        )

    @classmethod
    def _service_mode(cls, service: ServiceConfig, env: Mapping[str, str]) -> Settings:
        home = _home_of(service.user) or service.state_dir
        return cls(
            project_dir=service.project_dir,
            state_dir=service.state_dir,
            os_user=_sudo_caller(service, env),
            python=Path(sys.executable),
            search_path=SYSTEM_PATH,
            cache_dir=home / ".cache" / "autoops",
            config_dir=service.config_dir,
            witness=service.witness,
            metrics_dir=service.metrics_dir,
            home=home,
            passthrough=_passthrough(env, _PASS_THROUGH),
            ignored_environ=_ignored(env, frozenset({SERVICE_CONFIG_VAR})),
            service=service,
        )


def _sudo_caller(service: ServiceConfig, env: Mapping[str, str]) -> str:
    """The Unix user who invoked the service through sudo (the service user if nobody did).

    sudo sets SUDO_USER and SUDO_UID itself (the sudoers entry forbids setting
    variables), so they name the caller; both must agree with the passwd database, and
    the caller must be root or a member of the operators group.
    """
    name, uid = env.get("SUDO_USER"), env.get("SUDO_UID")
    if not name and not uid:
        return service.user
    try:
        entry = pwd.getpwuid(int(uid or ""))
    except (KeyError, ValueError):
        raise ServiceCallerError(f"SUDO_UID {uid!r} is not a user of this system") from None
    if not name or entry.pw_name != name:
        raise ServiceCallerError(f"SUDO_USER {name!r} does not match SUDO_UID {uid!r} "
                                 f"({entry.pw_name})")
    if entry.pw_uid != 0 and name != service.user and \
            service.operators not in identity.unix_groups(name):
        raise ServiceCallerError(f"{name} is not a member of {service.operators}",
                                 remedy=f"Ask an administrator: usermod -aG {service.operators} "
                                        f"{name}")
    return name


def _passthrough(env: Mapping[str, str], names: frozenset[str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if (k in names or _LOCALE.fullmatch(k)) and
            "\0" not in v and len(v) < 4096}


def _forget_in_process(name: str) -> None:
    """Drop ``name`` from this process's environment, and zero it where ``/proc`` shows it.

    Removing it from ``os.environ`` is not enough: ``/proc/PID/environ`` reads the
    environment block the kernel laid out at exec, and a child forked to exec
    something else shows that block (the key, if it was ``SOPS_AGE_KEY``) until it
    execs. Once read into ``Settings``, the value is overwritten in place.
    """
    os.environ.pop(name, None)
    try:
        after_comm = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start, end = int(after_comm[47]), int(after_comm[48])  # fields 50, 51: env_start/end
    except (OSError, IndexError, ValueError):
        return
    if end <= start:
        return
    block = ctypes.string_at(start, end - start)
    prefix = name.encode() + b"="
    offset = 0
    for entry in block.split(b"\0"):
        if entry.startswith(prefix):
            ctypes.memset(start + offset + len(prefix), 0, len(entry) - len(prefix))
        offset += len(entry) + 1


def _ignored(env: Mapping[str, str], consumed: frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted(k for k in env if k not in consumed and
                        (k.startswith(_NOTABLE_PREFIXES) or k in _NOTABLE)))


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False


def _account_name() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid:{os.geteuid()}"


def _home_of(user: str) -> Path | None:
    try:
        return Path(pwd.getpwnam(user).pw_dir)
    except KeyError:
        return None


def _os_user() -> str:
    """The real user, from the passwd database (never $USER / $LOGNAME, which anyone sets)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # no passwd entry (containers): fall back to the uid
        return f"uid:{os.getuid()}"
