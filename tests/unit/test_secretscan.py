"""secrets check without sops: the findings come from reading files, not decrypting."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from autoops.secrets import agekeys
from autoops.secrets import scan as secretscan
from autoops.secrets.rules import SopsConfig

STAGING = agekeys.generate()[1]
PRODUCTION = agekeys.generate()[1]
ENC = "ENC[AES256_GCM,data:AAAA,iv:BBBB,tag:CCCC,type:str]"


def sops_doc(recipients: list[str], **values: object) -> str:
    meta = {"age": [{"recipient": r, "enc": "x"} for r in recipients], "mac": ENC,
            "unencrypted_suffix": "_unencrypted", "version": "3.11.0"}
    return yaml.safe_dump({**values, "sops": meta})


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for env in ("staging", "production"):
        (root / "inventories" / env / "group_vars" / "all").mkdir(parents=True)
    root.mkdir(exist_ok=True)
    (SopsConfig.load(root / "sops-rules.yaml").with_env("staging", [STAGING])
     .with_env("production", [PRODUCTION]).save())
    return root


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def codes(root: Path) -> set[tuple[str, str]]:
    return {(f.file, f.code) for f in secretscan.check(root)}


def test_a_clean_repository_passes(repo: Path) -> None:
    write(repo, "inventories/staging/group_vars/all/secrets.sops.yml",
          sops_doc([STAGING], db_password=ENC, port_unencrypted=5432))
    write(repo, "inventories/staging/group_vars/all/main.yml", "db_password: '{{ vault_x }}'\n")
    assert secretscan.check(repo) == []


def test_plaintext_in_a_sops_file_is_found(repo: Path) -> None:
    write(repo, "inventories/staging/group_vars/all/secrets.sops.yml", "db_password: hunter22\n")
    write(repo, "inventories/staging/group_vars/all/partly.sops.yml",
          sops_doc([STAGING], a=ENC, b="plain-text-value"))
    found = secretscan.check(repo)
    assert {(f.file.split("/")[-1], f.code) for f in found} == {
        ("secrets.sops.yml", "NOT-ENCRYPTED"), ("partly.sops.yml", "NOT-ENCRYPTED")}
    assert any("'b'" in f.message for f in found)


def test_files_encrypted_for_another_environment_are_found(repo: Path) -> None:
    write(repo, "inventories/staging/group_vars/all/a.sops.yml", sops_doc([PRODUCTION], a=ENC))
    write(repo, "inventories/staging/group_vars/all/b.sops.yml",
          sops_doc([STAGING, PRODUCTION], a=ENC))
    write(repo, "inventories/staging/group_vars/all/c.sops.yml",
          sops_doc([agekeys.generate()[1]], a=ENC))
    write(repo, "inventories/lab/group_vars/all/d.sops.yml", sops_doc([STAGING], a=ENC))
    write(repo, "secrets/e.sops.yml", sops_doc([STAGING], a=ENC))
    found = secretscan.check(repo)
    messages = {f.file.split("/")[-1]: f.message for f in found}
    assert {(f.file.split("/")[-1], f.code) for f in found} == {
        ("a.sops.yml", "CROSS-ENV"), ("b.sops.yml", "CROSS-ENV"), ("c.sops.yml", "CROSS-ENV"),
        ("d.sops.yml", "CROSS-ENV"), ("e.sops.yml", "UNSCOPED")}
    assert "production's" in messages["a.sops.yml"]
    assert "unknown" in messages["c.sops.yml"]


def test_environments_sharing_a_key_are_found(repo: Path) -> None:
    SopsConfig.load(repo / "sops-rules.yaml").with_env("production", [STAGING]).save()
    assert codes(repo) == {("sops-rules.yaml", "SHARED-KEY")}


@pytest.mark.parametrize(("name", "text"), [
    ("vars.yml", "db_password: Sup3rS3cr3tValue!\n"),
    ("notes.txt", "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"),
    ("key.txt", f"{agekeys.generate()[0]}\n"),
    ("aws.cfg", "aws_access_key_id = " + "AKIA" + "IOSFODNN7EXAMPLE\n"),
])
def test_plaintext_secrets_in_other_files_are_found(repo: Path, name: str, text: str) -> None:
    write(repo, name, text)
    assert (name, "PLAINTEXT") in codes(repo)


def test_an_allowlisted_line_is_not_a_finding(repo: Path) -> None:
    write(repo, "vars.yml", "db_password: Sup3rS3cr3tValue!  # pragma: allowlist secret\n")
    write(repo, "key.txt", f"{agekeys.generate()[0]}  # pragma: allowlist secret\n")
    assert codes(repo) == set()


def test_only_files_git_would_commit_are_scanned(repo: Path) -> None:
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    write(repo, ".gitignore", "local/\n")
    write(repo, "local/key.txt", f"{agekeys.generate()[0]}\n")
    write(repo, "new.txt", f"{agekeys.generate()[0]}\n")
    files = {p.name for p in secretscan.repository_files(repo)}
    assert "new.txt" in files
    assert "key.txt" not in files
    assert codes(repo) == {("new.txt", "PLAINTEXT")}


def test_hidden_sops_files_are_checked_too(repo: Path) -> None:
    write(repo, "inventories/staging/group_vars/all/.old.sops.yml", "db_password: hunter22\n")
    assert codes(repo) == {("inventories/staging/group_vars/all/.old.sops.yml", "NOT-ENCRYPTED")}
