from __future__ import annotations

import fcntl
import os
import pty
import subprocess
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoops.audit import AuditLog
from autoops.engine import Autoops
from autoops.settings import Settings
from autoops.state import StateDB

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


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


class Terminal:
    """A process whose stdin and stderr are a pty that is its controlling terminal.

    That is what a person at a terminal gives autoops (the prompt goes to stderr and
    autoops is the terminal's foreground process group); stdout stays a pipe.
    """

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()

        def controlling_terminal() -> None:  # runs in the child, after setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(argv, stdin=slave, stdout=subprocess.PIPE, stderr=slave,
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
        self._reader.join(10)
        os.close(self.master)
        return self.proc.returncode, out + self.seen.decode(errors="replace")
