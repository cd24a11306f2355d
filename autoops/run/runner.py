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
``transmit``) over SSH to ``python3 -I -m autoops.node serve`` on the node (which checks
the job, then runs it with :func:`work`, ansible-runner's ``worker``) and turns the
events coming back — so normalising, redaction and the audit log stay on the controller. The link and
what crosses it are in :mod:`autoops.run.remote`.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

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
_NODE_LINE_LIMIT = 16 << 20  # one event of a node's stream; anything longer is refused


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def become_subreaper() -> bool:
    """Adopt orphaned descendants (ansible workers call setsid() and outlive a cancel)."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


@dataclass
class Standby:
    """A run's worker, started while the run is still being decided.

    Its start-up (Python, ansible-runner's imports) overlaps the plan, the policy and
    the audit records; it runs nothing until :func:`execute` sends it the run, and
    :meth:`discard` ends it for a run that is refused. It already carries the run's mark
    and dies with autoops, like any worker.
    """

    process: subprocess.Popen[bytes]
    data_dir: Path
    run_id: str
    started: str = ""  # the worker's start time: with its pid, how a later autoops finds it
    used: bool = False

    def discard(self) -> None:
        if self.used:
            return
        self.used = True
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        # It was sent nothing, so it has started nothing: no need to wait out its imports.
        self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def standby(run_id: str, *, runs_dir: Path, python: Path, project_dir: Path,
            environ: Mapping[str, str],
            on_worker: Callable[[int, str], None] = lambda _pid, _start: None) -> Standby:
    """Start a run's worker (and its private data dir), to be given its run later."""
    runs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix=f"{run_id}.", dir=runs_dir))
    tmp = data_dir / "tmp"
    tmp.mkdir(mode=0o700)
    try:
        process = subprocess.Popen(
            [str(python), "-I", "-m", "autoops.run.runner", str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**environ, **_hardening(project_dir, tmp), RUN_MARK: run_id},
            cwd=project_dir, start_new_session=True, close_fds=True)
    except BaseException:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise
    started = process_start_time(process.pid) or ""
    on_worker(process.pid, started)
    return Standby(process, data_dir, run_id, started)


def execute(spec: RunSpec, on_result: Callable[[HostResult], None],
            cancel: Callable[[], bool] = lambda: False, *,
            on_worker: Callable[[int, str], None] = lambda _pid, _start: None,
            on_batch: Callable[[list[HostResult]], None] | None = None,
            ready: Standby | None = None) -> RunOutcome:
    """Run the playbook in a worker process; ``on_result`` sees each host result as it happens.

    With ``on_batch``, the results that arrived together (one read of the worker's pipe)
    come in one call instead, in order (the engine appends them to the audit log in one
    write). ``on_worker`` learns the worker's pid and start time as soon as it exists (the
    engine records them, so a later autoops can kill it if this one is killed). If
    a callback raises, the run is cancelled and the exception re-raised once nothing of
    the run is left. ``ready`` is the run's worker started beforehand (:func:`standby`).
    """
    if ready is None or ready.used or ready.run_id != spec.run_id:
        ready = standby(spec.run_id, runs_dir=spec.runs_dir, python=spec.python,
                        project_dir=spec.project_dir, environ=spec.environ, on_worker=on_worker)
    ready.used = True
    worker, data_dir = ready.process, ready.data_dir
    outcome = RunOutcome(status="failed", rc=-1)
    failure: list[BaseException] = []
    key_fd = os.memfd_create("autoops-age-key") if spec.age_key else None
    try:
        key_env = {}
        if key_fd is not None and spec.age_key:  # sops opens it through autoops' /proc entry
            os.write(key_fd, spec.age_key.encode())
            key_env = {"SOPS_AGE_KEY_FILE": f"/proc/{os.getpid()}/fd/{key_fd}"}
        assert worker.stdin is not None  # noqa: S101 - a PIPE
        with contextlib.suppress(BrokenPipeError):
            worker.stdin.write(json.dumps(_order(spec, data_dir, {**spec.environ, **key_env}))
                               .encode())
            worker.stdin.close()
        def one_by_one(batch: list[HostResult]) -> None:
            for result in batch:
                on_result(result)

        _follow(worker, outcome, on_batch or one_by_one, cancel, failure)
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


def _order(spec: RunSpec, data_dir: Path, environ: Mapping[str, str]) -> dict[str, Any]:
    """What the worker reads on stdin: the run, and what its environment lacked at start.

    That is the secrets' paths: the worker may have started before they were known.
    """
    return {"run_id": spec.run_id, "data_dir": str(data_dir), "environ": dict(environ),
            "project_dir": str(spec.project_dir), "playbook": str(spec.playbook),
            "inventory": str(spec.inventory), "limit": spec.limit,
            "extravars": dict(spec.extravars), "check_mode": spec.check_mode,
            "node": spec.node.to_order() if spec.node is not None else None}


def _follow(worker: subprocess.Popen[bytes], outcome: RunOutcome,
            deliver: Callable[[list[HostResult]], None], cancel: Callable[[], bool],
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
        batch: list[HostResult] = []
        for line in lines:
            try:
                message = json.loads(line)
                if message.get("kind") == "result":
                    batch.append(HostResult(**message["result"]))
                    continue
                _deliver(deliver, batch)  # results first: the order is the run's
                _apply(message, outcome)
            except Exception as exc:  # noqa: BLE001 - re-raised once the run has stopped
                failure.append(exc)
        try:
            _deliver(deliver, batch)
        except Exception as exc:  # noqa: BLE001 - re-raised once the run has stopped
            failure.append(exc)


def _deliver(deliver: Callable[[list[HostResult]], None], batch: list[HostResult]) -> None:
    if batch:
        taken = list(batch)
        batch.clear()
        deliver(taken)


def _apply(message: Mapping[str, Any], outcome: RunOutcome) -> None:
    kind = message.get("kind")
    if kind == "stats":
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


def _hardening(project_dir: Path, tmp: Path) -> dict[str, str]:
    """What autoops sets for every run, over the allowlisted environment."""
    return {
        "ANSIBLE_CONFIG": str(project_dir / "ansible.cfg"),
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
    _warm_up()  # while autoops still decides the run
    try:
        order = json.loads(sys.stdin.buffer.read())
    except ValueError:  # its run was refused: autoops closed the pipe without one
        return 0
    os.environ.update(order.get("environ") or {})  # ansible-runner passes it on
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


def _warm_up() -> None:
    """Load ansible-runner before the run arrives: its import is off the run's critical path."""
    import ansible_runner  # noqa: F401, PLC0415 - only the worker loads ansible-runner

    _prompt_close()


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


def _prompt_close() -> None:
    """Let ansible-runner's end of a finished ansible-playbook close without a fixed wait.

    ptyprocess sleeps 0.1 s after closing the pty "to give the kernel time" before it
    looks whether the child is gone, on every run; this waits for it instead, as briefly
    as it takes (at most that 0.1 s), then does as before (terminate what is left).
    """
    from ptyprocess import ptyprocess  # type: ignore[import-untyped]  # noqa: PLC0415

    def close(self: Any, force: bool = True) -> None:
        if self.closed:
            return
        self.flush()
        self.fileobj.close()
        deadline = time.monotonic() + self.delayafterclose
        while self.isalive() and time.monotonic() < deadline:
            time.sleep(0.002)
        if self.isalive() and not self.terminate(force):
            raise ptyprocess.PtyProcessError("Could not terminate the child.")
        self.fd = -1
        self.closed = True

    ptyprocess.PtyProcess.close = close


def _run_playbook(order: Mapping[str, Any], channel: _Channel,
                  stop: threading.Event) -> tuple[str, int]:
    import ansible_runner  # noqa: PLC0415 - only the worker loads ansible-runner (warm)

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


def stage_project(files: Sequence[Sequence[str]], dest: Path) -> Path:
    """Copy what a run reads (``(name, real path)``: what the plan's digest covers) to ``dest``.

    Exactly those bytes under those names, so the digest the node computes of what it
    received is the plan's; only the run's own environment's inventory is among them.
    """
    for name, real in files:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(real, target)
    return dest


def _run_on_node(order: Mapping[str, Any], channel: _Channel,
                 stop: threading.Event) -> tuple[str, int]:
    """transmit → ``ssh NODE … serve`` → the worker's events back; a stop ends the session.

    The node's stream is read here, not by ansible-runner's ``process``: it would unpack
    an artifacts zip the node sends, and a node must not be able to write files here.
    """
    import ansible_runner  # noqa: PLC0415 - only the worker loads ansible-runner

    node = NodeJob.from_order(order["node"])
    data_dir, project_dir = Path(order["data_dir"]), Path(order["project_dir"])
    staged = stage_project(node.content, data_dir / "project")
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
    ended = threading.Event()

    def watch() -> None:  # a stop (cancel, halt, autoops gone) ends the session
        while not ended.wait(_POLL):
            if stop.is_set():
                link.end()  # the node's end cancels the run and kills what it started
                if not ended.wait(_STOP_GRACE):
                    link.close(0)  # no answer: drop the session (the deadman follows)
                return

    threading.Thread(target=watch, daemon=True).start()
    try:
        link.send(remote.header(order["run_id"], len(job.getvalue()), node.loan), job.getvalue())
        stream = _NodeStream(channel)
        stream.read(link)
    finally:
        ended.set()
        link.close(_STOP_GRACE)
    if stream.result is None or stop.is_set() or stream.status not in {"successful", "failed"}:
        _make_sure(node, link)
    if stop.is_set():
        return "canceled", stream.rc
    if stream.result is None or stream.status == "error":
        ssh = link.stderr_tail()
        channel.send({"kind": "crash", "node": node.name,
                      "text": f"{stream.problem or 'no answer'}"
                              f"{f' (ssh: {ssh})' if ssh else ''}"[:2000]})
        return "error", stream.rc
    return stream.status, stream.rc


def _make_sure(node: NodeJob, link: remote.Link) -> None:
    """After a run that did not end cleanly, nothing of it may still run on the node.

    ``node-cancel`` kills whatever carries the run's mark there. If the node does not
    answer, this waits until its deadman must have ended the run (its silence limit and
    kill grace from the last word heard), so that the run's locks are not released while
    something of it could still run.
    """
    if link.never_connected():
        return
    said = remote.cancel_on_node(node.cancel_argv, os.environ)
    if '"killed"' in said:
        return
    give_up = link.last_heard + remote.DEADMAN + remote.KILL_GRACE + 5
    while time.monotonic() < give_up:
        time.sleep(min(1.0, max(0.0, give_up - time.monotonic())))


class _NodeStream:
    """Reads what a node sends: statuses and events of its worker, then its own result."""

    def __init__(self, channel: _Channel) -> None:
        self.channel = channel
        self.status = "error"
        self.rc = -1
        self.problem: str | None = None
        self.result: dict[str, Any] | None = None

    def read(self, link: remote.Link) -> None:
        stream = link.stdout
        while True:
            line = stream.readline(_NODE_LINE_LIMIT)
            if not line:
                self.problem = self.problem or "the node ended the session without a result"
                return
            link.last_heard = time.monotonic()
            if not line.endswith(b"\n"):
                self.problem = "the node sent a line longer than autoops reads; stopped"
                return
            try:
                data = json.loads(line)
            except ValueError:
                self.problem = "the node sent something that is not its worker's stream"
                return
            if not isinstance(data, dict) or not self._take(data):
                return

    def _take(self, data: dict[str, Any]) -> bool:
        """One message; False when the stream is over (or broken)."""
        if "autoops_node" in data:
            result = data["autoops_node"] if isinstance(data["autoops_node"], dict) else {}
            self.result = result
            self.status = str(result.get("status", "error"))
            rc = result.get("rc")
            self.rc = rc if isinstance(rc, int) else -1
            return False
        if "zipfile" in data:  # the node's artifacts: never unpacked here
            self.problem = "the node sent files; autoops takes only events"
            return False
        if "status" in data:
            if data.get("job_explanation"):
                self.problem = str(data["job_explanation"])[:1000]
            return True
        if data.get("event") in (None, "keepalive") or "eof" in data:
            return True
        _collect(data, self.channel)
        return True


class _JobBuffer(io.BytesIO):
    """Where transmit writes the job (its zip writer asks the stream for a name)."""

    name = "<autoops job>"


def _rc(data_dir: Path) -> int:
    """ansible-playbook's exit status as the node's artifacts say (process gives no rc)."""
    try:
        return int((data_dir / "artifacts" / "run" / "rc").read_text().strip())
    except (OSError, ValueError):
        return -1


# -- the node's end: the worker, once autoops.node has checked the job ------------------


def work(kwargs: Mapping[str, Any], data_dir: Path, environ: Mapping[str, str],
         output: IO[bytes], stop: threading.Event) -> tuple[str, int]:
    """Run a checked job with ansible-runner's worker; its events go to ``output``.

    ``kwargs`` are the job's, as :mod:`autoops.node` rebuilt them from what it checked;
    the project is unpacked in ``data_dir`` already; ``environ`` is the run's whole
    environment (ansible-runner hands this process's to ansible-playbook, so it replaces
    it). The worker streams statuses and events, never the artifacts (the controller has
    no use for them, and would have to unpack files a node chose).
    """
    from ansible_runner.streaming import Worker  # noqa: PLC0415 - only on a node

    _prompt_close()
    os.environ.clear()
    os.environ.update(environ)

    class _Worker(Worker):  # type: ignore[misc] # untyped base
        def artifacts_handler(self, _artifact_dir: str) -> None:
            return None

    job = io.BytesIO(json.dumps({"kwargs": dict(kwargs)}).encode() + b"\n"
                     + json.dumps({"eof": True}).encode() + b"\n")
    worker = _Worker(_input=job, _output=output, private_data_dir=str(data_dir),
                     cancel_callback=stop.is_set)
    status, rc = worker.run()
    return str(status), int(rc) if rc is not None else -1


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


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
