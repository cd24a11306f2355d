"""A docker compose project deployed, verified and rolled back on this machine's Docker engine.

Images are built here from the lab's base image (never pulled): each revision of the
app's repository names its image in compose.yml, and the image's files decide how the
app behaves (HEALTH answers its probe, CRASH exits after the probe passed). A deploy
pins each release's images under its own tag, so a rollback starts exactly the images
that release ran, even after their original tags are gone.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import textwrap
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from autoops.engine import Autoops, RunRequest
from autoops.errors import DeployRolledBackError
from autoops.exits import ExitStatus
from autoops.lab import docker, image
from tests.conftest import CACHE_DIR, needs
from tests.integration.conftest import git, set_vars

COMPOSE = Path("/usr/local/lib/docker/cli-plugins/docker-compose")
pytestmark = [pytest.mark.integration,
              needs(bool(shutil.which("dockerd")) and COMPOSE.exists() and os.geteuid() == 0,
                    "needs root, dockerd and docker compose v2 (./bin/test installs them)")]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[docker.Engine, str]]:
    """A Docker engine (the system's, else a private one) holding the lab's base image."""
    found = docker.find_or_start(tmp_path_factory.mktemp("compose-engine"))
    try:
        yield found, image.ensure_image(found, CACHE_DIR / "lab", print)
    finally:
        ids = found.docker("ps", "-aq", "--filter", "label=com.docker.compose.project=demo",
                           check=False).stdout.split()
        if ids:
            found.docker("rm", "-f", *ids, check=False)
        if docker.stop_private(found) and found.private_dir is not None:
            docker.remove_private(found.private_dir)


@dataclass
class Project:
    engine: docker.Engine
    base: str
    source: Path
    work: Path
    port: int

    def revision(self, version: str, **files: str) -> str:
        """Build image demo-web:VERSION, commit a compose.yml naming it: the new commit."""
        context = self.work / f"image-{version}"
        (context / "release").mkdir(parents=True)
        (context / "release" / "VERSION").write_text(version)
        for name, text in files.items():
            (context / "release" / name).write_text(text)
        (context / "Dockerfile").write_text(f"FROM {self.base}\nCOPY release/ /srv/apps/demo/\n")
        built = subprocess.run([docker.docker_cli(), "build", "-q", "-t", f"demo-web:{version}",
                                str(context)], env={**self.engine.env(), "DOCKER_BUILDKIT": "0"},
                               capture_output=True, text=True, check=False)
        assert built.returncode == 0, built.stderr
        (self.source / "compose.yml").write_text(textwrap.dedent(f"""\
            services:
              web:
                image: demo-web:{version}
                network_mode: host
                restart: unless-stopped
                command: ["/usr/local/bin/autoops-demo", "{self.port}"]
            """))
        git("add", "-A", cwd=self.source)
        git("commit", "-q", "-m", version, cwd=self.source)
        git("push", "-q", "origin", "HEAD:main", cwd=self.source)
        return git("rev-parse", "HEAD", cwd=self.source)

    def answer(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=5) as reply:
            return str(reply.read().decode())

    def running_image(self) -> str:
        ids = self.engine.docker("ps", "-q", "--filter",
                                 "label=com.docker.compose.project=demo").stdout.split()
        assert len(ids) == 1, ids
        return self.engine.docker("inspect", "--format", "{{.Image}}", ids[0]).stdout.strip()

    def image_id(self, ref: str) -> str:
        return self.engine.docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


@pytest.fixture
def compose_app(engine: tuple[docker.Engine, str], project: Path, tmp_path: Path) -> Project:
    found, base = engine
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    bare = tmp_path / "demo.git"
    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    source = tmp_path / "src"
    git("clone", "-q", str(bare), str(source), cwd=tmp_path)
    set_vars(project, "local", autoops_deploy_state_dir=str(tmp_path / "deploy-state"),
             autoops_apps={"demo": {
                 "repo": str(bare), "dest": str(tmp_path / "apps" / "demo"), "settle": 4,
                 "watch": False, "compose": {"project": "demo", "file": "compose.yml",
                                             "docker_host": found.host},
                 "probe": {"url": f"http://127.0.0.1:{port}/up", "deadline": 20,
                           "interval": 0.5}}})
    return Project(found, base, source, tmp_path, port)


def deploy(app: Autoops, commit: str) -> Any:
    return app.run(RunRequest("deploy", "local", {"app": "demo", "revision": commit}))


def test_a_compose_project_is_verified_rolled_back_and_returns_to_its_pinned_images(
        app: Autoops, compose_app: Project) -> None:
    project = compose_app
    v1 = project.revision("v1")
    first = deploy(app, v1)
    assert first.status is ExitStatus.OK, [r for r in first.results if r["status"] == "failed"]
    assert "version v1" in project.answer()
    pinned_v1 = project.image_id(f"autoops-pin/demo-web:{v1[:12]}")
    assert project.running_image() == pinned_v1 == project.image_id("demo-web:v1")

    bad = project.revision("v2", HEALTH="500")
    second = deploy(app, bad)
    assert isinstance(second.error, DeployRolledBackError), second.results
    assert "last got 500" in second.error.message
    assert "version v1" in project.answer()
    assert project.running_image() == pinned_v1, "the rollback started v1's own image"

    looping = project.revision("v3", CRASH="2")
    third = deploy(app, looping)
    assert isinstance(third.error, DeployRolledBackError), third.results
    assert "restart loop" in third.error.message
    assert project.running_image() == pinned_v1

    v4 = project.revision("v4")
    assert deploy(app, v4).status is ExitStatus.OK
    assert "version v4" in project.answer()
    project.engine.docker("rmi", "demo-web:v1")  # the original tag is gone; the pin keeps it
    back = app.run(RunRequest("deploy-rollback", "local", {"app": "demo"}))
    assert back.status is ExitStatus.OK, [r for r in back.results if r["status"] == "failed"]
    assert "version v1" in project.answer()
    assert project.running_image() == pinned_v1
    pins = json.loads(project.engine.docker(
        "images", "--format", "{{json .Tag}}", "autoops-pin/demo-web").stdout.replace(
            "\n", ",").rstrip(",").join("[]"))
    assert v1[:12] in pins
    assert v4[:12] in pins
