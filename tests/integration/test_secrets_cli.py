"""`autoops secrets …` end to end: real sops, real age keys, real editors and git."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from autoops.cli.main import program
from autoops.exits import ExitStatus
from autoops.secrets.sops import AgeKey, Sops
from autoops.settings import Settings
from tests.conftest import VENV_BIN, CliResult, cli_env, run_cli
from tests.integration.conftest import git, records

pytestmark = pytest.mark.integration

SECRETS = "group_vars/all/secrets.sops.yml"  # pragma: allowlist secret


def key_of(settings: Settings, env: str) -> Path:
    return settings.config_dir / "age" / f"{env}.txt"


def decrypt(settings: Settings, env: str, key: Path | None = None) -> dict[str, object]:
    sops = Sops(settings.project_dir / "sops-rules.yaml",
                AgeKey(file=key or key_of(settings, env), origin="test"))
    data: dict[str, object] = json.loads(
        sops.decrypt(settings.inventories_dir / env / SECRETS))
    return data


class _Tty(io.StringIO):
    """A stream that says it is a terminal (``secrets edit`` wants one on all three)."""

    def isatty(self) -> bool:
        return True


def edit_cli(settings: Settings, *argv: str) -> CliResult:
    """``autoops secrets edit …`` as from a terminal (the editors here need none)."""
    out, err = _Tty(), _Tty()
    status = program(["secrets", "edit", *argv], out, err, _Tty(), settings=settings)
    return CliResult(status, out.getvalue(), err.getvalue())


def editor(tmp_path: Path, content: str) -> str:
    """A non-interactive $EDITOR that writes ``content`` into the file sops hands it."""
    script = tmp_path / "editor.sh"
    script.write_text(f"#!/bin/sh\ncat > \"$1\" <<'EOF'\n{content}EOF\n")
    script.chmod(0o700)
    return str(script)


def test_init_creates_a_private_key_a_rule_and_an_encrypted_file(settings: Settings) -> None:
    result = run_cli(settings, "secrets", "init", "--env", "staging", "--json")
    assert result.status is ExitStatus.OK, result.err
    doc = json.loads(result.out)
    key = key_of(settings, "staging")
    assert doc["key_created"]
    assert doc["file_created"]
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert not key.is_relative_to(settings.project_dir)
    rules = yaml.safe_load((settings.project_dir / "sops-rules.yaml").read_text())["creation_rules"]
    assert rules == [{"path_regex": r"^inventories/staging/.*\.sops\.(ya?ml|json)$",
                      "age": doc["recipient"]}]
    encrypted = (settings.inventories_dir / "staging" / SECRETS).read_text()
    assert "sops:" in encrypted
    assert decrypt(settings, "staging") == {"autoops_placeholder": True}
    again = run_cli(settings, "secrets", "init", "--env", "staging", "--json")
    assert json.loads(again.out)["key_created"] is False
    assert json.loads(again.out)["recipient"] == doc["recipient"]
    assert [r["type"] for r in records(settings)] == ["secrets.initialised"] * 2


def test_two_environments_never_share_a_key(settings: Settings, tmp_path: Path) -> None:
    shared = replace(settings, age_key_file=tmp_path / "one-key.txt")
    assert run_cli(shared, "secrets", "init", "--env", "staging").status is ExitStatus.OK
    second = run_cli(shared, "secrets", "init", "--env", "production")
    assert second.status is ExitStatus.BAD_INPUT
    assert "AUTOOPS-SECRETS-CROSS-ENV" in second.err
    assert "share no key" in second.err
    assert not (settings.inventories_dir / "production" / SECRETS).exists()


def test_edit_show_and_the_audit_see_names_never_values(settings: Settings,
                                                        tmp_path: Path) -> None:
    assert run_cli(settings, "secrets", "init", "--env", "staging").status is ExitStatus.OK
    value = "edited-value-5c1e7a"
    editing = replace(settings, editor=editor(tmp_path, f"db_password: {value}\napi: k-7788\n"))
    result = edit_cli(editing, "--env", "staging")
    assert result.status is ExitStatus.OK, result.err
    assert "added api, db_password" in result.out
    assert decrypt(settings, "staging") == {"db_password": value, "api": "k-7788"}
    assert value not in (settings.inventories_dir / "staging" / SECRETS).read_text()
    shown = run_cli(settings, "secrets", "show", "--env", "staging", "--keys")
    assert shown.out.split() == [f"inventories/staging/{SECRETS}:", "db_password", "api"]
    unchanged = edit_cli(replace(settings, editor="true"), "--env", "staging")
    assert "unchanged" in unchanged.out
    log = settings.audit_path.read_text()
    assert value not in log
    edited = [r for r in records(settings) if r["type"] == "secrets.edited"]
    assert len(edited) == 1
    assert edited[0]["data"]["added"] == ["api", "db_password"]
    assert not list(Path("/dev/shm").glob("autoops-sops-*")), "the editor's copy is removed"


def test_rotation_rekeys_retires_the_old_key_and_is_audited(settings: Settings,
                                                            tmp_path: Path) -> None:
    run_cli(settings, "secrets", "init", "--env", "staging")
    edit_cli(replace(settings, editor=editor(tmp_path, "db_password: rot-4411\n")),
             "--env", "staging")
    path = settings.inventories_dir / "staging" / SECRETS
    before = path.read_text()
    old_key = key_of(settings, "staging").read_text()

    data_key = run_cli(settings, "secrets", "rotate", "--env", "staging", "--json")
    assert data_key.status is ExitStatus.OK, data_key.err
    assert path.read_text() != before
    assert decrypt(settings, "staging") == {"db_password": "rot-4411"}  # pragma: allowlist secret

    rekey = run_cli(settings, "secrets", "rotate", "--env", "staging", "--new-recipient", "--json")
    assert rekey.status is ExitStatus.OK, rekey.err
    doc = json.loads(rekey.out)
    retired = Path(doc["retired_key"])
    assert retired.read_text() == old_key
    assert oct(retired.stat().st_mode & 0o777) == "0o600"
    assert key_of(settings, "staging").read_text() != old_key
    assert decrypt(settings, "staging") == {"db_password": "rot-4411"}  # pragma: allowlist secret
    with pytest.raises(Exception, match="cannot decrypt"):
        decrypt(settings, "staging", key=retired)
    rule = yaml.safe_load((settings.project_dir / "sops-rules.yaml").read_text())["creation_rules"]
    assert rule[0]["age"] not in old_key
    assert not list(key_of(settings, "staging").parent.glob("*.new"))

    rotated = [r for r in records(settings) if r["type"] == "secrets.rotated"]
    assert [r["data"]["rekeyed"] for r in rotated] == [False, True]
    assert rotated[1]["data"]["old_recipients"] != rotated[1]["data"]["new_recipients"]
    assert rotated[1]["actor"] == settings.os_user
    log = settings.audit_path.read_text()
    assert "AGE-SECRET-KEY" not in log
    assert "age1" not in log, "recipients are recorded by fingerprint only"


def test_rotation_refuses_another_environments_recipient(settings: Settings) -> None:
    for env in ("staging", "production"):
        run_cli(settings, "secrets", "init", "--env", env)
    production = json.loads(run_cli(settings, "secrets", "init", "--env", "production",
                                    "--json").out)["recipient"]
    before = (settings.inventories_dir / "staging" / SECRETS).read_bytes()
    result = run_cli(settings, "secrets", "rotate", "--env", "staging",
                     "--new-recipient", production)
    assert result.status is ExitStatus.BAD_INPUT
    assert "AUTOOPS-SECRETS-CROSS-ENV" in result.err
    assert (settings.inventories_dir / "staging" / SECRETS).read_bytes() == before


def test_check_passes_on_a_clean_project_and_names_each_bad_file(settings: Settings) -> None:
    for env in ("staging", "production"):
        run_cli(settings, "secrets", "init", "--env", env)
    assert run_cli(settings, "secrets", "check").status is ExitStatus.OK
    inv = settings.inventories_dir
    shutil.copy(inv / "production" / SECRETS, inv / "staging" / "group_vars" / "all" / "p.sops.yml")
    (inv / "staging" / "host_vars" / "h.sops.yml").write_text("db_password: in-the-clear\n")
    (inv / "staging" / "group_vars" / "all" / "main.yml").write_text(
        "---\napi_token: 9f8e7d6c5b4a39281706f5e4d3c2b1a0\n")
    result = run_cli(settings, "secrets", "check", "--json")
    assert result.status is ExitStatus.BAD_INPUT
    found = {(f["file"], f["code"]) for f in json.loads(result.out)["findings"]}
    assert found == {
        ("inventories/staging/group_vars/all/p.sops.yml", "CROSS-ENV"),
        ("inventories/staging/host_vars/h.sops.yml", "NOT-ENCRYPTED"),
        ("inventories/staging/group_vars/all/main.yml", "PLAINTEXT"),
    }
    text = run_cli(settings, "secrets", "check")
    assert "AUTOOPS-SECRETS-CHECK-FAILED" in text.err
    assert "inventories/staging/host_vars/h.sops.yml: NOT-ENCRYPTED" in text.err


def test_the_pre_commit_hook_blocks_a_plaintext_secret(settings: Settings,
                                                       tmp_path: Path) -> None:
    project = settings.project_dir
    (project / "bin").mkdir()
    wrapper = project / "bin" / "autoops"  # the real bin/autoops would build a venv here
    wrapper.write_text(f"#!/bin/sh\nexec {VENV_BIN / 'autoops'} \"$@\"\n")
    wrapper.chmod(0o755)
    git("init", "-q", cwd=project)
    git("add", "-A", cwd=project)
    env = {**cli_env(settings), "PRE_COMMIT_HOME": str(tmp_path / "pre-commit"),
           "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}

    def hook() -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(VENV_BIN / "pre-commit"), "run", "--all-files"], cwd=project,
                              env=env, capture_output=True, text=True, check=False, timeout=300)

    clean = hook()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    (project / "inventories" / "local" / "group_vars" / "all" / "creds.yml").write_text(
        textwrap.dedent("""\
            ---
            db_password: Pl41nT3xtP4ssw0rd!
            """))
    git("add", "-A", cwd=project)
    dirty = hook()
    assert dirty.returncode != 0
    assert "creds.yml" in dirty.stdout + dirty.stderr
