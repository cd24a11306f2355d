from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoops.errors import EnvUnknownError, LimitNoHostsError
from autoops.inventory import LIMIT_PATTERN, check_limit, inventory_path, parse_list_hosts
from autoops.plan import content_digest

DECLARED = {"local", "staging", "production"}


def test_parse_list_hosts() -> None:
    out = "  hosts (2):\n    web1\n    web2\n"
    assert parse_list_hosts(out) == ("web1", "web2")
    assert parse_list_hosts("  hosts (0):\n") == ()


@pytest.mark.parametrize("env", ["../production", "prod/../staging", "Production", "", "a b",
                                 "/etc", "qa"])
def test_env_names_are_validated_and_must_be_declared(project: Path, env: str) -> None:
    with pytest.raises(EnvUnknownError):
        inventory_path(project / "inventories", env, DECLARED | {"qa"} - {"qa"})


def test_declared_env_without_directory_is_refused(project: Path) -> None:
    with pytest.raises(EnvUnknownError, match="no inventory directory"):
        inventory_path(project / "inventories", "qa", DECLARED | {"qa"})


def test_symlinked_env_escaping_inventories_is_refused(project: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (project / "inventories" / "qa").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(EnvUnknownError):
        inventory_path(project / "inventories", "qa", DECLARED | {"qa"})


def test_inventory_path_is_derived(project: Path) -> None:
    assert inventory_path(project / "inventories", "staging", DECLARED) == \
        (project / "inventories" / "staging").resolve()


@pytest.mark.parametrize("limit", ["@/etc/passwd", "web1 web2", "a;b", "a\nb", "web1\n", "x" * 600, ""])
def test_hostile_limits_are_refused(limit: str) -> None:
    with pytest.raises(LimitNoHostsError):
        check_limit(limit)


@pytest.mark.parametrize("limit", ["web1", "web:&eu", "web:!web2", "~web[0-9]+", "db*", "web[1:2]"])
def test_ordinary_patterns_pass(limit: str) -> None:
    assert check_limit(limit) == limit


@given(st.text(max_size=40))
def test_no_accepted_limit_reads_a_file_or_has_spaces(limit: str) -> None:
    if LIMIT_PATTERN.fullmatch(limit):
        assert "@" not in limit
        assert not any(c.isspace() for c in limit)


def test_content_digest_changes_with_content(project: Path) -> None:
    inv = project / "inventories" / "local"
    before = content_digest(project, inv)
    assert before == content_digest(project, inv)
    (project / "roles" / "health" / "defaults" / "main.yml").write_text("---\nx: 1\n")
    assert content_digest(project, inv) != before
