"""Each role's molecule scenario, on the lab's image and Docker engine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from autoops.lab import image, manager
from tests.conftest import REPO
from tests.fleet.conftest import Lab

pytestmark = pytest.mark.fleet
ROLES = sorted(p.parent.parent.parent.name for p in REPO.glob("roles/*/molecule/default/molecule.yml"))


def test_every_role_has_a_scenario_with_a_verify() -> None:
    roles = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir())
    assert roles == ROLES
    for role in roles:
        verify = REPO / "roles" / role / "molecule" / "default" / "verify.yml"
        assert "ansible.builtin.assert" in verify.read_text(), role


@pytest.mark.parametrize("role", ROLES)
def test_molecule_scenario(lab: Lab, role: str, tmp_path: Path) -> None:
    record = manager.load_record(lab.paths)
    assert record is not None
    env = {**os.environ, "DOCKER_HOST": record["engine"], "AUTOOPS_LAB_IMAGE": image.image_tag(),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "MOLECULE_EPHEMERAL_DIRECTORY": str(tmp_path / "molecule"), "ANSIBLE_NOCOLOR": "1",
           "NO_COLOR": "1"}
    proc = subprocess.run([str(Path(sys.executable).parent / "molecule"), "test"],
                          cwd=REPO / "roles" / role, env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
