"""The execution environment image (``execution-environment.yml``), built here, never pulled.

AWX runs playbooks in an execution environment; autoops' must carry ansible-core and
ansible-runner as autoops pins them, the autoops package (the guard and the audit callback
import it) and the autoops.ops collection. Built on this machine with nothing from a
registry and no network inside the build:

1. a Debian root filesystem (debootstrap: python3, pip, git, ssh client; cached) imported
   as the base image;
2. every wheel the build installs, made on the host (``pip wheel``: autoops and its
   dependencies, ansible-builder's bindep, dumb-init), so pip in the build uses no index;
3. ``ansible-builder create`` (offline) and ``docker build`` of its context.

``python -m autoops.lab.ee [TAG]`` (``bin/build-ee``) does all three.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from autoops.lab import image
from autoops.lab.docker import Engine, LabError, find_or_start
from autoops.settings import SYSTEM_PATH, Settings

BASE_TAG = "localhost/autoops-ee-base:bookworm"
TAG = "localhost/autoops-ee:latest"
PACKAGES = ("python3", "python3-pip", "git", "openssh-client", "ca-certificates")
# pip in the build finds everything here and nowhere else.
_SETUP = "rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb"
# What ansible-builder's own steps install besides the EE file's dependencies.
BUILDER_WHEELS = ("bindep", "pyyaml", "packaging", "dumb-init==1.2.5")


def definition(project_dir: Path) -> Path:
    return project_dir / "execution-environment.yml"


def base_tarball(cache_dir: Path) -> Path:
    recipe = "\0".join([image.SUITE, image.MIRROR, *PACKAGES, _SETUP])
    return cache_dir / f"ee-rootfs-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}.tar"


def _say(line: str) -> None:
    sys.stderr.write(f"{line}\n")


def ensure_base(engine: Engine, cache_dir: Path, progress: image.Progress = _say) -> str:
    """The base image in ``engine``, imported from the cached root filesystem (built once)."""
    if engine.docker("image", "inspect", BASE_TAG, check=False).returncode == 0:
        return BASE_TAG
    tarball = base_tarball(cache_dir)
    if not tarball.exists():
        image.build_rootfs(tarball, progress, packages=PACKAGES, files={}, setup=_SETUP)
    progress(f"ee: importing {tarball.name} as {BASE_TAG} …")
    engine.docker("import", str(tarball), BASE_TAG)
    return BASE_TAG


def wheels(project_dir: Path, dest: Path, extra: tuple[str, ...] = BUILDER_WHEELS) -> None:
    """Every wheel the image installs (autoops and all it needs, and ``extra``), into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-build-isolation", "-w",
          str(dest), str(project_dir), *extra], "pip wheel")


def create_context(project_dir: Path, context: Path) -> Path:
    """``ansible-builder create``: the build context (its Containerfile), offline."""
    builder = Path(sys.executable).with_name("ansible-builder")
    _run([str(builder), "create", "-f", str(definition(project_dir)), "-c", str(context),
          "--output-filename", "Containerfile"], "ansible-builder create")
    return context / "Containerfile"


def build(engine: Engine, project_dir: Path, cache_dir: Path, tag: str = TAG,
          progress: image.Progress = _say) -> str:
    """The whole build, from a scratch copy of what the image takes; the image id."""
    ensure_base(engine, cache_dir, progress)
    with tempfile.TemporaryDirectory(prefix="autoops-ee-") as tmp:
        work = Path(tmp)
        shutil.copy2(definition(project_dir), work)
        shutil.copytree(project_dir / "collections", work / "collections",
                        ignore=shutil.ignore_patterns("__pycache__"))
        progress("ee: building every wheel the image installs …")
        wheels(project_dir, work / "ee" / "wheels")
        containerfile = create_context(work, work / "context")
        progress(f"ee: docker build -t {tag} …")
        engine.docker("build", "--network", "none", "-t", tag, "-f", str(containerfile),
                      str(containerfile.parent), timeout=3600)
    return engine.docker("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL,
                          env={"PATH": f"{Path(sys.executable).parent}:{SYSTEM_PATH}",
                               "LANG": "C.UTF-8", "HOME": str(Path.home())})
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise LabError(f"{what} failed (exit {proc.returncode}): {' | '.join(tail)}")


def main(argv: list[str]) -> int:
    settings = Settings.from_environ()
    engine = find_or_start(settings.lab_dir)
    image_id = build(engine, settings.project_dir, settings.cache_dir / "lab",
                     argv[0] if argv else TAG)
    sys.stdout.write(f"{image_id}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
