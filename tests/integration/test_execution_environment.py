"""The execution environment: ansible-builder makes its context offline, and the image builds
on this machine's Docker from a local Debian base (nothing pulled) and runs the guard."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible_builder import ee_schema

from autoops.lab import docker, ee
from tests.conftest import CACHE_DIR, REPO, VENV_BIN, needs

pytestmark = pytest.mark.integration


def offline(cmd: list[str]) -> list[str]:
    """Without a network namespace of its own where that is possible (root)."""
    return ["unshare", "--net", *cmd] if os.geteuid() == 0 and shutil.which("unshare") else cmd


def test_the_definition_is_valid_for_ansible_builder_3() -> None:
    doc = yaml.safe_load(ee.definition(REPO).read_text())
    assert doc["version"] == 3
    ee_schema.validate_schema(doc)


def test_ansible_builder_create_makes_the_context_offline(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy2(ee.definition(REPO), project)
    shutil.copytree(REPO / "collections", project / "collections",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (project / "ee" / "wheels").mkdir(parents=True)
    context = tmp_path / "context"
    proc = subprocess.run(offline([str(VENV_BIN / "ansible-builder"), "create", "-f",
                                   str(ee.definition(project)), "-c", str(context),
                                   "--output-filename", "Containerfile"]),
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    containerfile = (context / "Containerfile").read_text()
    assert f'EE_BASE_IMAGE="{ee.BASE_TAG}"' in containerfile
    assert "ENV PIP_NO_INDEX=1 PIP_FIND_LINKS=/build/wheels" in containerfile
    assert "ansible-core>=2.19,<2.20 ansible-runner==2.4.3" in containerfile
    built = context / "_build" / "collections" / "autoops" / "ops"
    for part in ("plugins/modules/guard.py", "plugins/action/guard.py",
                 "plugins/callback/audit.py", "plugins/vars/sops_data.py"):
        assert (built / part).is_file(), part
    assert (context / "_build" / "requirements.txt").read_text().split() == ["autoops"]


@needs(bool(shutil.which("dockerd")) and bool(shutil.which("debootstrap")) and os.geteuid() == 0,
       "needs root, dockerd and debootstrap (./bin/test installs them)")
def test_the_image_builds_from_a_local_base_and_its_guard_runs(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    # a short directory: containerd's socket path must fit a sockaddr_un
    engine = docker.find_or_start(tmp_path_factory.mktemp("ee"))
    try:
        image_id = ee.build(engine, REPO, CACHE_DIR / "lab", "localhost/autoops-ee:test")
        assert image_id.startswith("sha256:")
        state = tmp_path / "state"
        state.mkdir(mode=0o777)
        state.chmod(0o777)  # the EE runs as uid 1000
        inside = engine.docker(
            "run", "--rm", "--network", "none", "-v", f"{REPO}:/runner/project:ro",
            "-v", f"{state}:/var/lib/autoops", "-e", "AUTOOPS_STATE_DIR=/var/lib/autoops/s",
            "-e", "HOME=/tmp", "-w", "/runner/project", "localhost/autoops-ee:test",
            "sh", "-c", "sops --version --disable-version-check && "
            "ansible-playbook -i inventories/local playbooks/health.yml", check=False)
        assert inside.returncode == 0, inside.stdout + inside.stderr
        assert "sops 3.11" in inside.stdout
        assert "Pre-flight guard" in inside.stdout
        assert "failed=0" in inside.stdout
        audit = (state / "s" / "audit" / "audit.jsonl").read_text()
        assert '"type":"run.finished"' in audit
        assert '"frontend":"ansible-playbook"' in audit
    finally:
        engine.docker("image", "rm", "-f", "localhost/autoops-ee:test", check=False)
        if docker.stop_private(engine) and engine.private_dir is not None:
            docker.remove_private(engine.private_dir)
