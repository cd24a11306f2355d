from __future__ import annotations

import os
import subprocess
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
