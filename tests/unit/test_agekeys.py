from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from autoops.errors import SecretsInvalidError, SecretsKeyMissingError
from autoops.secrets import agekeys
from autoops.settings import Settings

NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)


def test_generated_keys_round_trip_and_fingerprints_hide_the_recipient() -> None:
    secret, recipient = agekeys.generate()
    assert agekeys.SECRET_KEY_PATTERN.fullmatch(secret)
    assert agekeys.RECIPIENT_PATTERN.fullmatch(recipient)
    assert agekeys.recipients_of(f"# comment\n{secret}\n") == [recipient]
    assert agekeys.fingerprint(recipient).startswith("sha256:")
    assert recipient not in agekeys.fingerprint(recipient)
    assert agekeys.generate()[1] != recipient


def test_garbage_holds_no_recipient() -> None:
    assert agekeys.recipients_of("AGE-SECRET-KEY-1" + "Q" * 58) == []
    assert agekeys.recipients_of("nothing here") == []


def test_key_files_are_private_and_never_overwritten(tmp_path: Path) -> None:
    secret, recipient = agekeys.generate()
    path = tmp_path / "age" / "staging.txt"
    agekeys.write_private(path, secret, recipient, NOW)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    assert f"# public key: {recipient}" in path.read_text()
    with pytest.raises(FileExistsError):
        agekeys.write_private(path, *agekeys.generate(), NOW)
    assert secret in path.read_text()
    retired = agekeys.retire(path, NOW)
    assert retired.name == "staging.retired-20261122T093000Z.txt"
    assert not path.exists()
    assert oct(retired.stat().st_mode & 0o777) == "0o600"


def test_key_sources_in_order_of_precedence(settings: Settings, tmp_path: Path) -> None:
    default = agekeys.KeyRef.of(settings, "staging")
    assert default.path == settings.config_dir / "age" / "staging.txt"
    assert default.source == "default"
    with pytest.raises(SecretsKeyMissingError):
        default.for_sops()
    inline = agekeys.KeyRef.of(replace(settings, age_key="AGE-SECRET-KEY-1X"), "staging")
    assert inline.path is None
    assert "AGE-SECRET-KEY" not in repr(inline)
    with pytest.raises(SecretsInvalidError):
        inline.recipients()
    from_file = agekeys.KeyRef.of(replace(settings, age_key="x", age_key_file=tmp_path / "k"),
                                  "production")
    assert from_file.source == "SOPS_AGE_KEY_FILE"
    assert os.fspath(from_file.path or "") == str(tmp_path / "k")
    with pytest.raises(SecretsKeyMissingError):
        from_file.for_sops()


def test_settings_read_the_sops_variables(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "SOPS_AGE_KEY_FILE": "~/keys.txt", "SOPS_AGE_KEY": "AGE-X",
           "EDITOR": "vi", "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    settings = Settings.from_environ(env)
    assert settings.config_dir == tmp_path / "cfg" / "autoops"
    assert settings.age_key == "AGE-X"
    assert "AGE-X" not in repr(settings)
    assert settings.editor == "vi"
    assert Settings.from_environ({"HOME": str(tmp_path)}).age_key_file is None
