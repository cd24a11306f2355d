"""Packaging, for real: the sdist and the wheel built here, installed, and the collection.

What the checks compare against is computed from the source tree (every module under
autoops/, the skeleton's selection), never listed by hand, so a new package, playbook
or plugin cannot be left out without a test failing. The builds run on a copy of the
tree with an environment's secrets, keys, caches and the lab planted in it, so their
exclusion is exercised, not assumed. ``python -m build --no-isolation`` (the dev
extras install build and setuptools): nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from autoops import __version__
from autoops.setup import init
from tests.conftest import REPO, VENV_BIN, needs
from tests.unit.test_init import PLANTED, plant

pytestmark = [pytest.mark.integration,
              needs(importlib.util.find_spec("build") is not None,
                    "`python -m build` is not installed (pip install -e '.[dev]')")]

COLLECTION = REPO / "collections" / "ansible_collections" / "autoops" / "ops"
SKELETON = f"autoops/{init.SKELETON_DIR}/"
# What a copy of the tree leaves behind: version control, virtualenvs, earlier builds, caches.
TREE_IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                                     ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis")
# Split so that this file itself holds none of them.
# Key material and encrypted values themselves, not code that names their format.
SECRET_CONTENT = re.compile("|".join((
    "-----BEGIN [A-Z0-9 ]*" + "PRIVATE KEY-----\r?\n[A-Za-z0-9+/=]",
    "AGE-" + "SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}",
    re.escape("ENC[AES256_GCM," + "data:") + "[A-Za-z0-9+/=]*,iv:",
    re.escape("$ANSIBLE_" + "VAULT;") + "1\\.[12];AES256")).encode())


@dataclass(frozen=True)
class Dists:
    source: Path  # the copy of the tree both were built from
    wheel: Path
    sdist: Path
    rebuilt: Path  # the wheel built from the unpacked sdist


def _build(src: Path, out: Path, *kinds: str) -> list[Path]:
    proc = subprocess.run([sys.executable, "-m", "build", "--no-isolation", *kinds,
                           "--outdir", str(out), str(src)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return sorted(out.iterdir())


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    base = tmp_path_factory.mktemp("packaging")
    src = base / "src"
    shutil.copytree(REPO, src, ignore=TREE_IGNORE, symlinks=True)
    plant(src)
    built = _build(src, base / "dist", "--sdist", "--wheel")
    sdist = next(p for p in built if p.name.endswith(".tar.gz"))
    wheel = next(p for p in built if p.suffix == ".whl")
    with tarfile.open(sdist) as tar:
        tar.extractall(base / "unpacked", filter="data")
    (rebuilt,) = _build(base / "unpacked" / f"autoops-{__version__}", base / "rebuilt", "--wheel")
    return Dists(src, wheel, sdist, rebuilt)


def _members(archive: Path) -> dict[str, bytes]:
    """Every file in a wheel or an sdist (without the sdist's top directory) and its bytes."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as whl:
            return {name: whl.read(name) for name in whl.namelist() if not name.endswith("/")}
    with tarfile.open(archive) as tar:
        return {m.name.split("/", 1)[1]: tar.extractfile(m).read()  # type: ignore[union-attr]
                for m in tar.getmembers() if m.isfile()}


def _tree_modules(src: Path) -> set[str]:
    return {p.relative_to(src).as_posix() for p in (src / "autoops").rglob("*.py")
            if "__pycache__" not in p.parts}


def test_the_wheel_has_every_module_of_the_tree_and_nothing_else(dists: Dists) -> None:
    members = _members(dists.wheel)
    shipped = {n for n in members if n.endswith(".py") and not n.startswith(SKELETON)}
    tree = _tree_modules(dists.source)
    assert tree - shipped == set(), "modules the wheel drops"
    assert shipped - tree == set(), "modules the wheel has that the tree does not"
    assert "autoops/py.typed" in members
    entry_points = members[f"autoops-{__version__}.dist-info/entry_points.txt"].decode()
    assert "autoops = autoops.cli.main:main" in entry_points
    assert "vm-safe = autoops.cli.main:vm_safe_main" in entry_points


def test_the_wheel_ships_the_skeleton_and_only_it(dists: Dists) -> None:
    members = _members(dists.wheel)
    shipped = {n.removeprefix(SKELETON): data for n, data in members.items()
               if n.startswith(SKELETON)}
    expected = init.skeleton(dists.source)
    assert set(shipped) == set(expected)
    assert {n for n, data in shipped.items() if data != expected[n]} == set()
    for name in ("catalog.yml", "policy.yml", "ansible.cfg", "sops-rules.yaml",
                 "playbooks/health.yml", "roles/health/tasks/main.yml",
                 "filter_plugins/autoops_filters.py", "inventories/local/hosts.yml",
                 "collections/ansible_collections/autoops/ops/plugins/modules/health_facts.py"):
        assert name in shipped, name


@pytest.mark.parametrize("which", ["wheel", "sdist", "rebuilt"])
def test_no_secret_key_cache_or_bytecode_is_shipped(dists: Dists, which: str) -> None:
    members = _members(getattr(dists, which))
    inside = {n.removeprefix(SKELETON) for n in members}
    assert set(PLANTED) & inside == set()
    for name, data in members.items():
        assert not name.endswith((".pyc", ".pyo")), name
        assert "__pycache__" not in name, name
        assert ".sops." not in name, name
        assert not re.search(r"(^|/)(inventories/lab|grant-keys|molecule)/", name), name
        assert not SECRET_CONTENT.search(data), name


def test_the_sdist_has_what_the_wheel_is_built_from(dists: Dists) -> None:
    members = _members(dists.sdist)
    assert {"pyproject.toml", "setup.py", "README.md"} <= set(members)
    assert _tree_modules(dists.source) <= set(members)
    expected = set(init.skeleton(dists.source)) - {init.SOPS_RULES}  # that one is generated
    assert expected - set(members) == set()


def test_a_wheel_built_from_the_sdist_is_the_same_wheel(dists: Dists) -> None:
    original, rebuilt = _members(dists.wheel), _members(dists.rebuilt)
    assert set(rebuilt) == set(original)
    record = f"autoops-{__version__}.dist-info/RECORD"
    assert {n for n in original if n != record and original[n] != rebuilt[n]} == set()


def _run(argv: list[str | Path], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run from / : `python -c` puts the working directory first on sys.path."""
    return subprocess.run([str(a) for a in argv], env=env, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL, check=False, cwd="/")


def test_the_installed_wheel_lays_out_a_working_repository(dists: Dists, tmp_path: Path) -> None:
    """Install the wheel alone into a fresh venv (dependencies from this venv, on PYTHONPATH)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-index", "--disable-pip-version-check", dists.wheel],
                   check=True, timeout=300, capture_output=True)
    env = {"PATH": f"{venv / 'bin'}{os.pathsep}{VENV_BIN}{os.pathsep}/usr/bin:/bin",
           "PYTHONPATH": sysconfig.get_paths()["purelib"], "HOME": str(Path.home()),
           "LANG": "C.UTF-8", "AUTOOPS_STATE_DIR": str(tmp_path / "state")}
    where = _run([venv / "bin" / "python", "-c", ("import json, autoops.setup.init as i; "
                  "print(json.dumps([i.__file__, str(i.shipped_source())]))")], env)
    assert where.returncode == 0, where.stderr
    module, source = json.loads(where.stdout)
    assert Path(module).is_relative_to(venv), f"imported {module}, not the installed copy"
    assert Path(source).name == init.SKELETON_DIR
    assert Path(source).is_relative_to(venv)

    dest = tmp_path / "ops"
    laid = _run([venv / "bin" / "autoops", "init", dest, "--json"], env)
    assert laid.returncode == 0, laid.stdout + laid.stderr
    doc = json.loads(laid.stdout)
    assert doc["source"] == source
    assert doc["files"] == list(init.skeleton(dists.source))
    assert doc["next"] == f"export AUTOOPS_PROJECT_DIR={dest}"
    assert not [p for p in dest.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc"]
    again = _run([venv / "bin" / "autoops", "init", dest], env)
    assert again.returncode == 2
    assert "AUTOOPS-INIT-DESTINATION" in again.stderr

    env["AUTOOPS_PROJECT_DIR"] = str(dest)
    listed = _run([venv / "bin" / "autoops", "--json", "list"], env)
    assert listed.returncode == 0, listed.stderr
    catalog = yaml.safe_load((REPO / "catalog.yml").read_text())
    assert sorted(a["name"] for a in json.loads(listed.stdout)["actions"]) \
        == sorted(catalog["actions"])
    plan = _run([venv / "bin" / "autoops", "--json", "plan", "health", "--env", "local"], env)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert json.loads(plan.stdout)["plan"]["hosts"] == ["localhost"]
    # The playbook, its role, the collection's module and the filters all from DEST.
    del env["PYTHONPATH"]
    ran = _run([VENV_BIN / "autoops", "--json", "run", "health", "--env", "local"], env)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]


def test_the_collection_builds_with_its_plugins(tmp_path: Path) -> None:
    galaxy = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())
    proc = _run([VENV_BIN / "ansible-galaxy", "collection", "build", COLLECTION,
                 "--output-path", tmp_path], dict(os.environ))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tarball = tmp_path / f"autoops-ops-{galaxy['version']}.tar.gz"
    with tarfile.open(tarball) as tar:
        names = {m.name for m in tar.getmembers() if m.isfile()}
        manifest = json.load(tar.extractfile("MANIFEST.json"))  # type: ignore[arg-type]
    plugins = {p.relative_to(COLLECTION).as_posix() for p in (COLLECTION / "plugins").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert plugins
    assert plugins <= names
    assert {"README.md", "CHANGELOG.md", "meta/runtime.yml"} <= names
    assert not [n for n in names if n.endswith((".pyc", ".tar.gz"))]
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == ("autoops", "ops",
                                                                  galaxy["version"])
    license_ = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"]["text"]
    assert info["license"] == [license_]
    changelog = (COLLECTION / "CHANGELOG.md").read_text()
    assert f"## {galaxy['version']}" in changelog.splitlines(), "no changelog entry"
    assert not list(COLLECTION.glob("*.tar.gz")), "the build wrote into the collection"

