from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoops.errors import SecretsInvalidError
from autoops.secrets.rules import SopsConfig, env_rule_regex

STAGING = "age1" + "q" * 58
PRODUCTION = "age1" + "p" * 58
ENV_NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)


def test_a_missing_file_is_an_empty_config(tmp_path: Path) -> None:
    config = SopsConfig.load(tmp_path / "sops-rules.yaml")
    assert config.rules == ()
    assert config.recipients("staging") == []


@pytest.mark.parametrize("text", ["creation_rules: 3\n", "- a\n", "creation_rules: [1]\n",
                                  "creation_rules: [{path_regex: [x]}]\n", "a: [\n"])
def test_malformed_configs_are_refused(tmp_path: Path, text: str) -> None:
    (tmp_path / "sops-rules.yaml").write_text(text)
    with pytest.raises(SecretsInvalidError):
        SopsConfig.load(tmp_path / "sops-rules.yaml")


def test_rules_match_only_their_own_environment(tmp_path: Path) -> None:
    config = (SopsConfig.load(tmp_path / "sops-rules.yaml")
              .with_env("staging", [STAGING]).with_env("production", [PRODUCTION]))
    assert config.rule_env_for("inventories/staging/group_vars/all/secrets.sops.yml") == "staging"
    assert config.rule_env_for("inventories/production/host_vars/web1.sops.json") == "production"
    assert config.rule_env_for("inventories/staging-old/group_vars/x.sops.yml") is None
    assert config.rule_env_for("other/inventories/staging/x.sops.yml") is None
    assert config.rule_env_for("inventories/staging/group_vars/all/main.yml") is None
    assert config.owner_of(STAGING) == ["staging"]
    assert config.environments() == ["production", "staging"]


def test_with_env_replaces_only_that_environment_and_keeps_other_rules(tmp_path: Path) -> None:
    path = tmp_path / "sops-rules.yaml"
    path.write_text("creation_rules:\n  - path_regex: ^docs/.*\\.sops\\.yml$\n    age: age1x\n")
    config = SopsConfig.load(path).with_env("staging", [STAGING])
    config.with_env("staging", [PRODUCTION]).with_env("production", [STAGING]).save()
    again = SopsConfig.load(path)
    assert again.recipients("staging") == [PRODUCTION]
    assert again.recipients("production") == [STAGING]
    assert again.rules[-1]["path_regex"] == "^docs/.*\\.sops\\.yml$"
    assert again.rule_env_for("docs/a.sops.yml") == "(another rule)"
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == ["sops-rules.yaml"], "no temporary file is left"


@given(ENV_NAMES)
def test_the_rule_of_an_environment_names_it_back(env: str) -> None:
    config = SopsConfig(Path("sops-rules.yaml"), ()).with_env(env, [STAGING])
    assert config.env_of(config.rules[0]) == env
    assert re.search(env_rule_regex(env), f"inventories/{env}/group_vars/all/secrets.sops.yml")
    assert not re.search(env_rule_regex(env), f"inventories/{env}x/group_vars/secrets.sops.yml")
