"""The link to an execution node: one SSH session per run, and what crosses it.

The controller's run worker (:mod:`autoops.run.runner`) starts ``ssh NODE python3 -I -m
autoops.run.runner node`` and writes, on its stdin:

1. a **header**, one JSON line: the run id, autoops' version, the length of the job, and
   what the node borrows for this run only — the environment's age key and the SSH
   identities ``nodes/ENV.yml`` lends (the run's ticket, signed by the controller, is in the
   job's extra variables: the guard play on the node checks it against the public key the
   node trusts, see :mod:`autoops.guard.tickets`);
2. the **job**: exactly what ``ansible-runner transmit`` wrote (its kwargs line, the zip of
   the private data dir with the project's content, the eof line);
3. then, until the run ends, a **keepalive** newline every few seconds.

The node answers on stdout with ansible-runner's worker stream, which ``process`` turns
back into events on the controller, where redaction and the audit log are.

Nothing outlives its supervisor: the node's end is a child subreaper; when its stdin ends
(the controller cancelled, a halt, autoops or the SSH link died) or stays silent past
:data:`DEADMAN`, it cancels the run and kills everything the run started. Borrowed
secrets live in memory: the age key in a memfd the run reads through ``/proc``, the
identities in an ssh-agent of the run's own, killed with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from autoops import __version__

KEEPALIVE = 5.0  # seconds between the controller's keepalive newlines
DEADMAN = 30.0  # seconds of silence after which the node stops the run on its own
# What ssh says when it never got as far as running the command.
_NO_SESSION = ("Connection refused", "Could not resolve hostname", "No route to host",
               "Host key verification failed", "Permission denied", "Connection timed out",
               "Network is unreachable")
KILL_GRACE = 10.0  # … and after which it kills what is left if the run did not stop
HEADER_LIMIT = 1 << 20  # a header is a few kilobytes; anything longer is not ours
JOB_LIMIT = 1 << 30  # a job is the project's content, zipped: megabytes, not gigabytes


@dataclass(frozen=True)
class Loan:
    """What a node borrows for one run; never written anywhere."""

    age_key: str | None = field(default=None, repr=False)
    identities: tuple[str, ...] = field(default=(), repr=False)


def header(run_id: str, job_length: int, loan: Loan) -> bytes:
    """The first line the node reads."""
    return json.dumps({"autoops_node": 1, "run_id": run_id, "version": __version__,
                       "length": job_length, "age_key": loan.age_key,
                       "identities": list(loan.identities)}).encode() + b"\n"


class HeaderError(ValueError):
    """The node's stdin did not start with a header of this autoops."""


def parse_header(line: bytes) -> tuple[str, int, Loan]:
    """(run id, job length, loan) from the first line; HeaderError for anything else."""
    try:
        data = json.loads(line)
    except ValueError:
        raise HeaderError("the job does not start with an autoops header") from None
    if not isinstance(data, dict) or data.get("autoops_node") != 1:
        raise HeaderError("the job does not start with an autoops header")
    if data.get("version") != __version__:
        raise HeaderError(f"the controller runs autoops {data.get('version')}, this node "
                          f"{__version__}: install the same version on both")
    identities = data.get("identities") or []
    if not isinstance(identities, list) or not all(isinstance(i, str) for i in identities):
        raise HeaderError("the header's identities are not a list of keys")
    age_key = data.get("age_key")
    length = data.get("length")
    if not isinstance(length, int) or not 0 < length <= JOB_LIMIT:
        raise HeaderError(f"the header's job length is not 1 to {JOB_LIMIT} bytes")
    try:
        return (str(data["run_id"]), length,
                Loan(age_key=str(age_key) if age_key else None, identities=tuple(identities)))
    except (KeyError, TypeError, ValueError):
        raise HeaderError("the header lacks the run id or the job's length") from None


def receive(fd: int, timeout: float = DEADMAN) -> tuple[str, Loan, bytes]:
    """Read the header and the whole job from ``fd``, each read within ``timeout``.

    Raw reads: nothing is buffered past the job, so the keepalives that follow are the
    :class:`Deadman`'s to read.
    """
    buffer = b""
    while b"\n" not in buffer:
        chunk = _read(fd, 65536, timeout)
        if not chunk:
            raise HeaderError("the session ended before the job's header")
        buffer += chunk
        if len(buffer) > HEADER_LIMIT:
            raise HeaderError("the job does not start with an autoops header")
    line, _, job = buffer.partition(b"\n")
    run_id, length, loan = parse_header(line)
    while len(job) < length:
        chunk = _read(fd, min(1 << 20, length - len(job)), timeout)
        if not chunk:
            raise HeaderError(f"the session ended {length - len(job)} bytes before the job's end")
        job += chunk
    return run_id, loan, job[:length]


def _read(fd: int, size: int, timeout: float) -> bytes:
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        raise HeaderError(f"no word from the controller for {timeout:.0f}s")
    return os.read(fd, size)


@dataclass(frozen=True)
class NodeJob:
    """Where a run goes and what the node borrows (crosses to the run worker as JSON)."""

    name: str
    argv: tuple[str, ...]  # ssh … node
    cancel_argv: tuple[str, ...]  # ssh … node-cancel RUN_ID
    content: tuple[tuple[str, str], ...]  # (name, real path): what the plan's digest covers
    loan: Loan = field(default_factory=Loan)
    facts: Mapping[str, Any] = field(default_factory=dict)  # for the audit: where, what lent

    def to_order(self) -> dict[str, Any]:
        return {"name": self.name, "argv": list(self.argv), "cancel_argv": list(self.cancel_argv),
                "content": [list(pair) for pair in self.content], "age_key": self.loan.age_key,
                "identities": list(self.loan.identities)}

    @classmethod
    def from_order(cls, data: Mapping[str, Any]) -> NodeJob:
        return cls(str(data["name"]), tuple(data["argv"]), tuple(data["cancel_argv"]),
                   tuple((str(n), str(p)) for n, p in data["content"]),
                   Loan(data.get("age_key"), tuple(data.get("identities") or ())))


# -- the controller's end -------------------------------------------------------------


class Link:
    """The SSH session to a node: send the job, keep it alive, end it to cancel.

    One writer thread sends the header, the job and then the keepalives, and closes the
    node's stdin when told to end; nothing else writes, so ending never waits on a write
    (a write blocked on a node that stopped reading is undone by killing ssh).
    """

    def __init__(self, argv: Sequence[str], environ: Mapping[str, str]) -> None:
        self.proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=dict(environ), close_fds=True)
        self._ended = threading.Event()
        self._stderr: list[bytes] = []
        self.last_heard = time.monotonic()  # the node's last word (the reader updates it)
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    @property
    def stdout(self) -> IO[bytes]:
        assert self.proc.stdout is not None  # noqa: S101 - a PIPE
        return self.proc.stdout

    def send(self, first: bytes, job: bytes) -> None:
        """Header and job, then keepalives until :meth:`end` (from the writer thread)."""
        threading.Thread(target=self._write, args=(first + job,), daemon=True).start()

    def end(self) -> None:
        """Close the node's stdin: its end stops the run (cancel) or sees it is over."""
        self._ended.set()

    def close(self, grace: float) -> None:
        """End the session; give ssh ``grace`` seconds to leave, then kill it."""
        self.end()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def never_connected(self) -> bool:
        """Whether ssh failed before a session could start (so nothing ran on the node)."""
        text = b"".join(self._stderr).decode(errors="replace")
        return self.proc.poll() == 255 and any(why in text for why in _NO_SESSION)

    def stderr_tail(self) -> str:
        text = b"".join(self._stderr).decode(errors="replace")
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return " | ".join(lines[-3:])[:500]

    def _write(self, data: bytes) -> None:
        stdin = self.proc.stdin
        assert stdin is not None  # noqa: S101 - a PIPE
        try:
            stdin.write(data)
            stdin.flush()
            while not self._ended.wait(KEEPALIVE):
                stdin.write(b"\n")
                stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError, ValueError):
                stdin.close()

    def _drain_stderr(self) -> None:
        stderr = self.proc.stderr
        assert stderr is not None  # noqa: S101 - a PIPE
        for chunk in iter(lambda: os.read(stderr.fileno(), 4096), b""):
            self._stderr.append(chunk)
            del self._stderr[:-16]


def cancel_on_node(argv: Sequence[str], environ: Mapping[str, str], timeout: float = 20.0) -> str:
    """Run ``node-cancel RUN_ID`` on the node (a second session): what it says it killed."""
    try:
        done = subprocess.run(list(argv), env=dict(environ), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"node-cancel failed: {exc}"
    return (done.stdout.strip() or done.stderr.strip())[-300:]


# -- the node's end -------------------------------------------------------------------


class Deadman:
    """Reads the controller's keepalives; stops the run when they end or stop coming.

    ``stop`` asks the run to end (ansible-runner cancels ansible-playbook); if it has not
    ended ``grace`` seconds later — a worker blocked writing to a controller that is gone
    never looks at its cancel flag — ``kill`` ends it outright.
    """

    def __init__(self, fd: int, stop: Callable[[str], None], kill: Callable[[], None],
                 silence: float = DEADMAN, grace: float = KILL_GRACE) -> None:
        self.fd, self.stop, self.kill = fd, stop, kill
        self.silence, self.grace = silence, grace
        self._done = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._watch, daemon=True).start()

    def disarm(self) -> None:
        self._done.set()

    def _watch(self) -> None:
        why = self._wait_for_silence()
        if why is None:
            return
        self.stop(why)
        if not self._done.wait(self.grace):
            self.kill()

    def _wait_for_silence(self) -> str | None:
        last = time.monotonic()
        while not self._done.is_set():
            ready, _, _ = select.select([self.fd], [], [], 1.0)
            if self._done.is_set():
                return None
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    return "the controller closed the session"
                last = time.monotonic()
            elif time.monotonic() - last > self.silence:
                return f"no word from the controller for {self.silence:.0f}s"
        return None


def memfd_path(name: str, data: bytes) -> tuple[int, str]:
    """``data`` in a memfd of this process, and the /proc path children open it by."""
    fd = os.memfd_create(name)
    os.write(fd, data)
    return fd, f"/proc/{os.getpid()}/fd/{fd}"


def lend_identities(identities: Sequence[str], run_dir: Path,
                    environ: Mapping[str, str]) -> tuple[subprocess.Popen[bytes] | None, str]:
    """An ssh-agent of this run's own holding ``identities``: (agent, SSH_AUTH_SOCK)."""
    if not identities:
        return None, ""
    sock = run_dir / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=dict(environ), close_fds=True)
    deadline = time.monotonic() + 10
    while not sock.exists():
        if agent.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the run's ssh-agent did not start")
        time.sleep(0.02)
    for key in identities:  # from stdin: the key is never a file
        added = subprocess.run(["ssh-add", "-q", "-"], input=key.encode() + b"\n",
                               env={**environ, "SSH_AUTH_SOCK": str(sock)},
                               capture_output=True, timeout=20, check=False)
        if added.returncode != 0:
            raise RuntimeError("ssh-add refused a lent identity: "
                               + added.stderr.decode(errors="replace").strip()[-200:])
    return agent, str(sock)


def stream_error(output: IO[bytes], explanation: str) -> None:
    """Tell the controller the job failed before it started (the worker's status format)."""
    output.write(json.dumps({"status": "error", "job_explanation": explanation}).encode()
                 + b"\n" + json.dumps({"eof": True}).encode() + b"\n")
    output.flush()


def stream_result(output: IO[bytes], status: str, rc: int, killed: Sequence[int]) -> None:
    """The node's last line: how the job ended (the worker's own stream carries no rc)."""
    output.write(json.dumps({"autoops_node": {"status": status, "rc": rc,
                                              "killed": list(killed)}}).encode() + b"\n")
    output.flush()


def node_base(home: Path) -> Path:
    """Where a node keeps its runs' private directories (each removed when its run ends)."""
    return home / ".local" / "state" / "autoops-node"
