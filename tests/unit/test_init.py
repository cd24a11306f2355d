"""``autoops init``: the skeleton's selection, and laying it out without overwriting anything.

The selection runs on a copy of this repository's content with hostile files planted
in it (an environment's secrets, keys, caches, the lab, a stale build), so what it
must leave out is really there to leave out.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from autoops.cli.main import program
from autoops.core.plan import CONTENT_ROOTS
from autoops.errors import AutoopsError, ContentInvalidError, InitDestinationError
from autoops.exits import ExitStatus
from autoops.secrets.rules import HEADER, SopsConfig
from autoops.settings import ServiceConfig, Settings
from autoops.setup import init
from tests.conftest import REPO

# Built by concatenation so that the repository's own secrets check does not see a key.
PRIVATE_KEY = "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
AGE_KEY = "AGE-" + "SECRET-KEY-1" + "Q" * 58 + "\n"
SOPS_VALUE = "password: ENC[AES256_GCM," + "data:q83v,iv:AAAA,tag:BBBB,type:str]\n"
VAULT = "$ANSIBLE_" + "VAULT;1.1;AES256\n3338623431\n"

# Relative path → content: each must stay out of the skeleton, a wheel and a new repository.
PLANTED = {
    "inventories/staging/group_vars/all/secrets.sops.yml": f"---\n{SOPS_VALUE}sops:\n  mac: x\n",
    "inventories/production/host_vars/db1.sops.json": '{"sops": {}}\n',
    "inventories/production/group_vars/all/vault.yml": VAULT,
    "inventories/staging/group_vars/db_creds.yml": f"---\n{SOPS_VALUE}",
    "inventories/staging/group_vars/all/secrets.yml": "---\ndb_password: plain\n",
    "inventories/staging/id_ed25519": PRIVATE_KEY,
    "inventories/lab/hosts.yml": "---\nall: {hosts: {lab-1: {ansible_port: 2201}}}\n",
    "inventories/customer/hosts.yml": "---\nall: {hosts: {real.example.net: {}}}\n",
    "grant-keys/staging.pub": "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n",
    "roles/health/molecule/default/.molecule/state.yml": "---\nconverged: true\n",
    "roles/health/tasks/.main.yml.swp": "swap",
    "roles/health/tasks/main.yml.orig": "---\n",
    "filter_plugins/__pycache__/autoops_filters.cpython-311.pyc": "\0bytecode",
    "playbooks/health.retry": "localhost\n",
    "playbooks/.ansible/cache.json": "{}\n",
    "collections/ansible_collections/autoops/ops/autoops-ops-1.0.0.tar.gz": "\x1f\x8b",
    "collections/ansible_collections/community/sops/README.md": "# a vendored collection\n",
    "certs/server.pem": PRIVATE_KEY,
}


def plant(source: Path) -> None:
    for name, text in PLANTED.items():
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A copy of this repository's operations content, with hostile files planted in it."""
    src = tmp_path / "source"
    src.mkdir()
    for name in (*CONTENT_ROOTS, "inventories", "runbooks"):
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "lab"))
        elif path.is_file():
            shutil.copy2(path, src / name)
    plant(src)
    return src


@pytest.fixture
def umask_077() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def test_the_skeleton_covers_what_a_run_reads() -> None:
    """Every content root (core.plan) but grant-keys (one repository's own keys) is in it."""
    covered = {name.split("/")[0] for name in init.skeleton(REPO)}
    assert set(CONTENT_ROOTS) - {"grant-keys"} <= covered
    assert {"inventories", "runbooks"} <= covered


def test_the_skeleton_leaves_out_secrets_keys_caches_and_the_lab(source: Path) -> None:
    files = init.skeleton(source)
    assert not set(PLANTED) & set(files)
    for name, data in files.items():
        assert b"PRIVATE KEY" not in data, name
        assert b"AES256_GCM,data:" not in data, name
        assert not name.startswith(("inventories/lab/", "grant-keys/")), name
        assert "/molecule/" not in name, name
        assert "__pycache__" not in name, name


def test_the_skeleton_keeps_the_content(source: Path) -> None:
    files = init.skeleton(source)
    for name in ("catalog.yml", "policy.yml", "ansible.cfg", "playbooks/health.yml",
                 "roles/health/tasks/main.yml", "filter_plugins/autoops_filters.py",
                 "collections/requirements.yml",
                 "collections/ansible_collections/autoops/ops/plugins/modules/health_facts.py",
                 "collections/ansible_collections/autoops/ops/galaxy.yml",
                 "inventories/README.md", "inventories/local/hosts.yml",
                 "inventories/local/host_vars/.gitkeep", "inventories/staging/hosts.yml",
                 "inventories/production/group_vars/all/main.yml"):
        assert files[name] == (REPO / name).read_bytes(), name
    for path in (REPO / "playbooks").glob("*.yml"):
        assert f"playbooks/{path.name}" in files


def test_sops_rules_start_empty_whatever_the_source_holds(source: Path) -> None:
    """A new repository's environments share no recipient with the one it came from."""
    (source / "sops-rules.yaml").write_text(HEADER + "creation_rules:\n  - path_regex: x\n"
                                            "    age: age1someoneelse\n")
    text = init.skeleton(source)["sops-rules.yaml"].decode()
    assert text.startswith(HEADER)
    path = source / "fresh.yaml"
    path.write_text(text)
    assert SopsConfig.load(path).rules == ()


@pytest.mark.parametrize("where", ["roles/health/tasks/key.yml", "inventories/local/notes.txt",
                                   "playbooks/age.txt"])
def test_a_plaintext_private_key_is_refused_not_shipped(source: Path, where: str) -> None:
    (source / where).write_text(PRIVATE_KEY if "age" not in where else AGE_KEY)
    with pytest.raises(ContentInvalidError, match="private key"):
        init.skeleton(source)


@pytest.mark.parametrize(("link", "target"), [("playbooks/linked.yml", "playbooks/health.yml"),
                                            ("roles/linked", "roles/health"),
                                            ("inventories/local/hosts.yml", "/etc/hosts")])
def test_a_symbolic_link_is_refused(source: Path, link: str, target: str) -> None:
    (source / link).unlink(missing_ok=True)
    (source / link).symlink_to(source / target)
    with pytest.raises(ContentInvalidError, match="symbolic link"):
        init.skeleton(source)


def test_a_missing_root_is_a_broken_source_not_a_smaller_skeleton(source: Path) -> None:
    shutil.rmtree(source / "roles")
    with pytest.raises(AutoopsError, match="roles is missing"):
        init.skeleton(source)


@pytest.mark.usefixtures("umask_077")
def test_lay_out_writes_the_skeleton_world_readable(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "new" / "ops"
    written = init.lay_out(dest, source=source)
    expected = init.skeleton(source)
    assert [p.relative_to(dest).as_posix() for p in written] == list(expected)
    for path in written:
        assert path.read_bytes() == expected[path.relative_to(dest).as_posix()]
        assert path.stat().st_mode & 0o777 == 0o644, path
    for here, dirs, _ in os.walk(tmp_path / "new"):
        for name in dirs:
            assert (Path(here) / name).stat().st_mode & 0o777 == 0o755, name
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o755
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) \
        == sorted(expected)


def test_lay_out_into_an_existing_empty_directory(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "empty"
    dest.mkdir(mode=0o700)
    init.lay_out(dest, source=source)
    assert (dest / "catalog.yml").is_file()
    assert dest.stat().st_mode & 0o777 == 0o700  # the user's own directory: left as it was


def test_lay_out_refuses_a_non_empty_directory_and_writes_nothing(source: Path,
                                                                   tmp_path: Path) -> None:
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "notes.md").write_text("mine\n")
    with pytest.raises(InitDestinationError, match="not empty") as caught:
        init.lay_out(dest, source=source)
    assert caught.value.status == ExitStatus.BAD_INPUT
    assert [p.name for p in dest.iterdir()] == ["notes.md"]
    assert (dest / "notes.md").read_text() == "mine\n"


def test_lay_out_refuses_a_file_and_a_link(source: Path, tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(InitDestinationError, match="not a directory"):
        init.lay_out(file, source=source)
    assert file.read_text() == "x"
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(InitDestinationError, match="not a directory"):
        init.lay_out(tmp_path / "link", source=source)
    assert not any((tmp_path / "target").iterdir())


def test_lay_out_refuses_a_bad_source_before_creating_dest(source: Path, tmp_path: Path) -> None:
    (source / "playbooks" / "leak.yml").write_text(PRIVATE_KEY)
    with pytest.raises(ContentInvalidError):
        init.lay_out(tmp_path / "dest", source=source)
    assert not (tmp_path / "dest").exists()


def test_a_checkout_is_its_own_source() -> None:
    assert init.shipped_source() == REPO


def _cli(settings: Settings, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = program(list(argv), out, err, io.StringIO(), settings=settings)
    return status, out.getvalue(), err.getvalue()


def test_cli_init_then_the_repository_is_usable(settings: Settings, tmp_path: Path) -> None:
    dest = tmp_path / "ops"
    status, out, _ = _cli(settings, "init", str(dest), "--json")
    assert status == ExitStatus.OK
    doc = json.loads(out)
    assert doc["files"] == list(init.skeleton(REPO))
    assert doc["next"] == f"export AUTOOPS_PROJECT_DIR={dest}"
    status, out, _ = _cli(dataclasses.replace(settings, project_dir=dest), "list", "--json")
    assert status == ExitStatus.OK
    catalog = yaml.safe_load((REPO / "catalog.yml").read_text())
    assert sorted(a["name"] for a in json.loads(out)["actions"]) == sorted(catalog["actions"])


def test_cli_init_text_names_the_next_step(settings: Settings, tmp_path: Path) -> None:
    status, out, _ = _cli(settings, "init", str(tmp_path / "my ops"))
    assert status == ExitStatus.OK
    assert f"export AUTOOPS_PROJECT_DIR='{tmp_path / 'my ops'}'" in out


def test_cli_init_refuses_a_non_empty_directory(settings: Settings, tmp_path: Path) -> None:
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "catalog.yml").write_text("mine\n")
    status, out, _ = _cli(settings, "--json", "init", str(dest))
    assert status == ExitStatus.BAD_INPUT
    assert json.loads(out)["error"]["code"] == "AUTOOPS-INIT-DESTINATION"
    assert [p.name for p in dest.iterdir()] == ["catalog.yml"]
    assert (dest / "catalog.yml").read_text() == "mine\n"


def test_cli_init_is_refused_in_service_mode(settings: Settings, tmp_path: Path) -> None:
    service = ServiceConfig(path=tmp_path / "service.yml", user="autoops",
                            operators="autoops-operators", project_dir=settings.project_dir,
                            state_dir=settings.state_dir, config_dir=settings.config_dir)
    status, _, err = _cli(dataclasses.replace(settings, service=service), "init",
                          str(tmp_path / "ops"))
    assert status == ExitStatus.DENIED
    assert "AUTOOPS-SERVICE-REFUSED" in err
    assert not (tmp_path / "ops").exists()
