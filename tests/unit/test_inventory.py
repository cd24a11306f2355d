from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoops.core import plan as plan_module
from autoops.core.inventory import (
    LIMIT_PATTERN,
    LOCAL,
    address_of,
    check_limit,
    check_overlaps,
    groups_of,
    inventory_path,
    overlaps,
    parse_list_hosts,
)
from autoops.core.plan import content_digest
from autoops.errors import (
    ContentInvalidError,
    EnvUnknownError,
    InventoryOverlapError,
    LimitNoHostsError,
)

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


@pytest.mark.parametrize("name", ["sops-rules.yaml", "grant-keys/production.pub",
                                  "inventories/local/group_vars/all/secrets.sops.yml",
                                  "collections/ansible_collections/autoops/ops/x.py"])
def test_the_digest_covers_what_decides_behaviour(project: Path, name: str) -> None:
    inv = project / "inventories" / "local"
    before = content_digest(project, inv)
    path = project / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(path.read_text() + "# changed\n" if path.exists() else "new\n")
    assert content_digest(project, inv) != before


def test_the_digest_covers_autoops_own_version(project: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    inv = project / "inventories" / "local"
    before = content_digest(project, inv)
    monkeypatch.setattr(plan_module, "__version__", "9.9.9")
    assert content_digest(project, inv) != before


def test_a_symlink_out_of_the_project_is_refused(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "main.yml").write_text("---\n")
    (project / "roles" / "evil").symlink_to(outside)
    with pytest.raises(ContentInvalidError, match="out of the project"):
        content_digest(project, project / "inventories" / "local")


def test_a_symlink_inside_the_project_is_followed(project: Path) -> None:
    inv = project / "inventories" / "local"
    (project / "roles" / "alias").symlink_to(project / "roles" / "health")
    before = content_digest(project, inv)
    (project / "roles" / "health" / "defaults" / "main.yml").write_text("---\ny: 2\n")
    assert content_digest(project, inv) != before


def test_a_symlinked_inventory_is_not_an_environment(project: Path) -> None:
    root = project / "inventories"
    (root / "qa").symlink_to(root / "production")
    with pytest.raises(EnvUnknownError, match="symbolic link"):
        inventory_path(root, "qa", {"qa", "production"})


@pytest.mark.parametrize(("host", "hostvars", "address"), [
    ("web1", {}, "web1:22"),
    ("WEB1.Example.COM.", {}, "web1.example.com:22"),
    ("a", {"ansible_host": "192.0.2.11", "ansible_port": 2222}, "192.0.2.11:2222"),
    ("a", {"ansible_host": "localhost", "ansible_port": 2201}, "127.0.0.1:2201"),
    ("a", {"ansible_host": "::1"}, "127.0.0.1:22"),
    ("a", {"ansible_host": "2001:DB8:0:0::1"}, "2001:db8::1:22"),
    ("a", {"ansible_connection": "local"}, LOCAL),
    ("a", {"ansible_connection": "ansible.builtin.local", "ansible_host": "10.0.0.1"}, LOCAL),
])
def test_addresses_are_normalised(host: str, hostvars: dict[str, object], address: str) -> None:
    assert address_of(host, hostvars) == address


def test_overlaps_by_name_and_by_address_but_not_for_this_controller() -> None:
    fleet = {"staging": {"web1": "192.0.2.11:22", "box": LOCAL},
             "production": {"Web1": "192.0.2.99:22", "app": "192.0.2.11:22", "box2": LOCAL}}
    problems = overlaps(fleet)
    assert any("host web1 is in production and staging" in p for p in problems)
    assert any("192.0.2.11:22 is one machine" in p for p in problems)
    assert not any("local" in p for p in problems)
    with pytest.raises(InventoryOverlapError):
        check_overlaps(fleet)
    assert overlaps({"staging": {"w": "10.0.0.1:22"}, "production": {"p": "10.0.0.1:2222"}}) == []


@given(st.dictionaries(st.sampled_from(["staging", "production", "lab"]),
                       st.dictionaries(st.text("abc", min_size=1, max_size=3),
                                       st.sampled_from(["10.0.0.1:22", "10.0.0.2:22", LOCAL]),
                                       max_size=4), max_size=3))
def test_no_overlap_means_every_machine_is_in_one_environment(
        fleet: dict[str, dict[str, str]]) -> None:
    owners: dict[str, set[str]] = {}
    for env, hosts in fleet.items():
        for host, address in hosts.items():
            if address != LOCAL:
                owners.setdefault(address, set()).add(env)
                owners.setdefault("name:" + host.lower(), set()).add(env)
    assert (overlaps(fleet) == []) is all(len(envs) == 1 for envs in owners.values())


def test_groups_of_a_host_include_the_parents_of_its_groups() -> None:
    listing = {
        "_meta": {"hostvars": {}},
        "all": {"children": ["ungrouped", "web", "db"]},
        "ungrouped": {"hosts": ["lonely"]},
        "web": {"children": ["canary"], "hosts": ["web1", "web2"]},
        "canary": {"hosts": ["web1"], "children": ["web"]},  # a cycle: visited once
        "db": {"hosts": ["db1"]},
    }
    assert groups_of(listing) == {
        "db1": ("db",), "lonely": ("ungrouped",), "web1": ("canary", "web"), "web2": ("web",)}
    assert groups_of({}) == {}
