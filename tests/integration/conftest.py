from __future__ import annotations

import fcntl
import os
import pty
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoops.audit.log import AuditLog
from autoops.engine import Autoops
from autoops.settings import Settings
from autoops.state.db import StateDB
from tests.integration.receivers import Receiver, serving

pytestmark = pytest.mark.integration


def set_vars(project: Path, env: str, **values: Any) -> None:
    """Override inventory variables for every host of ``env`` (a later group_vars file)."""
    path = project / "inventories" / env / "group_vars" / "all" / "zz_test.yml"
    current = yaml.safe_load(path.read_text()) if path.exists() else {}
    current.update(values)
    path.write_text("---\n" + yaml.safe_dump(current))


def records(settings: Settings, run_id: str | None = None) -> list[dict[str, Any]]:
    log = AuditLog(settings.audit_path, StateDB(settings.db_path))
    return [r for r in log.records() if run_id is None or r["run_id"] == run_id]


def wait_for(predicate: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def kill_matching(pattern: str) -> None:
    subprocess.run(["pkill", "-9", "-f", pattern], check=False)


@pytest.fixture
def app(settings: Settings) -> Autoops:
    return Autoops(settings)


@pytest.fixture
def backup_dir(project: Path, tmp_path: Path) -> Path:
    path = tmp_path / "backups"
    set_vars(project, "local", autoops_backup_dir=str(path),
             autoops_deploy_state_dir=str(tmp_path / "deploy-state"))
    return path


def commit_revision(source: Path, version: str, files: dict[str, str],
                    clear: tuple[str, ...] = ("HEALTH", "CRASH", "MIGRATE")) -> None:
    """Commit a demo app revision: VERSION, plus ``files`` (the ``clear`` ones removed first)."""
    for name in clear:
        (source / name).unlink(missing_ok=True)
    (source / "VERSION").write_text(version)
    for name, text in files.items():
        (source / name).write_text(text)
    git("add", "-A", cwd=source)
    git("commit", "-q", "-m", version, cwd=source)


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


class Terminal:
    """A process whose stdin and stderr are a pty that is its controlling terminal.

    That is what a person at a terminal gives autoops (the prompt goes to stderr and
    autoops is the terminal's foreground process group); stdout stays a pipe unless
    ``stdout_too`` (an editor draws on stdout).
    """

    def __init__(self, argv: list[str], env: dict[str, str], *, stdout_too: bool = False) -> None:
        self.master, slave = pty.openpty()

        def controlling_terminal() -> None:  # runs in the child, after setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(argv, stdin=slave, stderr=slave,
                                     stdout=slave if stdout_too else subprocess.PIPE,
                                     text=True, env=env, start_new_session=True,
                                     preexec_fn=controlling_terminal)  # noqa: PLW1509 - test only
        os.close(slave)
        self.seen = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            if not chunk:
                return
            self.seen.extend(chunk)

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def finish(self, timeout: float = 300) -> tuple[int, str]:
        out, _ = self.proc.communicate(timeout=timeout)
        out = out or ""
        self._reader.join(10)
        os.close(self.master)
        return self.proc.returncode, out + self.seen.decode(errors="replace")


class ProcessWatch(threading.Thread):
    """Samples every other process's argv and environment while something runs.

    ``hits`` names each ``PID/cmdline`` or ``PID/environ`` that held a needle;
    ``cmdlines_seen`` counts samples whose argv held ``count_argv`` (to prove the
    watch saw the process it is meant to catch).
    """

    def __init__(self, *needles: str | bytes, count_argv: bytes | None = None,
                 interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.needles = [n.encode() if isinstance(n, str) else n for n in needles]
        self.count_argv, self.interval = count_argv, interval
        self.hits: list[str] = []
        self.samples = 0
        self.cmdlines_seen = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit() or int(proc.name) == os.getpid():
                    continue
                for what in ("cmdline", "environ"):
                    try:
                        data = (proc / what).read_bytes()
                    except OSError:
                        continue
                    if what == "cmdline" and self.count_argv and self.count_argv in data:
                        self.cmdlines_seen += 1
                    self.hits.extend(f"{proc.name}/{what}" for n in self.needles if n in data)
            self.samples += 1
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A Telegram-compatible (and webhook) HTTP receiver on loopback."""
    with serving() as server:
        yield server


def sent_specs(monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], Callable[..., Any]]:
    """Keep every RunSpec the engine hands the runner; (the list, the real execute)."""
    from autoops.run import runner

    sent: list[runner.RunSpec] = []
    real = runner.execute

    def keep(spec: runner.RunSpec, *args: Any, **kwargs: Any) -> runner.RunOutcome:
        sent.append(spec)
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(runner, "execute", keep)
    return sent, real
