"""A lab of real SSH hosts (Docker containers) shared by the fleet tests of one session.

Under CI=true a missing Docker engine or debootstrap is a failure, never a skip;
elsewhere the tests are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from autoops.exits import ExitStatus
from autoops.lab import manager
from autoops.settings import Settings
from tests.conftest import CACHE_DIR, make_project, run_cli

pytestmark = pytest.mark.fleet


def _missing() -> str | None:
    for tool in ("dockerd", "debootstrap", "ssh", "ssh-keyscan"):
        if not (shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()):
            return f"{tool} is not installed (apt-get install docker.io debootstrap openssh-client)"
    if os.geteuid() != 0:
        return "the lab needs root to run dockerd"
    return None


@dataclass(frozen=True)
class Lab:
    settings: Settings
    paths: manager.LabPaths

    def docker(self, *args: str, check: bool = True) -> str:
        record = manager.load_record(self.paths)
        assert record is not None
        return manager.engine_of(record).docker(*args, check=check).stdout

    def on_host(self, host: str, *argv: str) -> str:
        return self.docker("exec", f"autoops-lab-{host}", *argv)


def lab_secrets(lab: Lab) -> None:
    """The lab's SOPS secrets file and age key, made once whichever test module needs them."""
    if (lab.settings.project_dir / "inventories" / "lab" / "group_vars" / "all"
            / "secrets.sops.yml").exists():
        return
    done = run_cli(lab.settings, "secrets", "init", "--env", "lab")
    assert done.status == ExitStatus.OK, done.err


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    reason = _missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"fleet tests need the lab under CI: {reason}")
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("fleet")
    project = make_project(base / "project")
    settings = Settings(project_dir=project, state_dir=base / "state", os_user="tester",
                        python=Path(sys.executable),
                        search_path=os.environ.get("PATH", os.defpath), cache_dir=CACHE_DIR,
                        config_dir=base / "config" / "autoops")
    paths = manager.LabPaths.of(settings)
    try:
        manager.up(paths, manager.parse_groups(None, "web=2,db=1"), print)
        yield Lab(settings, paths)
    finally:
        manager.down(paths, print)
