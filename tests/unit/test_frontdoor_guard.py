"""The guard's checks that need no engine: options, extra variables, environment, origin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoops.core.catalog import Catalog
from autoops.errors import ExtraVarRefusedError, GuardRefusedError
from autoops.frontdoors import guard
from autoops.frontdoors.guard import Launch

REPO = Path(__file__).resolve().parents[2]
CATALOG = Catalog.load(REPO / "catalog.yml", REPO)


def launch(**kw: Any) -> Launch:
    base: dict[str, Any] = {"action": "health", "playbooks": ("playbooks/health.yml",),
                            "inventories": (), "extra_vars": {}, "hosts": ("web1",),
                            "hostvars": {"web1": {"autoops_env": "staging"}},
                            "check_mode": False}
    return Launch(**{**base, **kw})


@pytest.mark.parametrize("options", [
    {"tags": ("deploy",)}, {"skip_tags": ("always",)}, {"start_at_task": "Restart"},
    {"step": True}, {"tags": ("all", "x")}, {"connection": "local"},
    {"ssh_common_args": "-o ProxyCommand=x"}, {"ssh_extra_args": "-p 2222"},
    {"become_user": "daemon"},
])
def test_options_that_pick_tasks_or_reach_hosts_otherwise_are_refused(
        options: dict[str, Any]) -> None:
    with pytest.raises(GuardRefusedError, match="launch option"):
        guard.check_options(options)


def test_default_options_pass() -> None:
    guard.check_options({"tags": ("all",), "skip_tags": (), "start_at_task": None,
                         "step": False, "connection": "ssh", "become_user": None,
                         "ssh_common_args": ""})
    guard.check_options({})


def test_only_the_actions_own_playbook_passes(tmp_path: Path) -> None:
    action = CATALOG.get("health")
    guard.check_playbook(action, [str(REPO / "playbooks/health.yml")], REPO)
    link = tmp_path / "health.yml"
    link.symlink_to(REPO / "playbooks/health.yml")
    guard.check_playbook(action, [str(REPO / "playbooks/../playbooks/health.yml")], REPO)
    for given_books in ([str(REPO / "playbooks/watch.yml")], [], [str(link)],
                        [str(REPO / "playbooks/health.yml")] * 2):
        with pytest.raises(GuardRefusedError):
            guard.check_playbook(action, given_books, REPO)


def test_parameters_grant_and_front_end_identity_pass() -> None:
    guard.check_extra_vars(CATALOG.get("health"), {
        "disk_max_percent": 80, "autoops_grant": "aog1.x", "autoops_approval": "r1",
        "awx_job_id": 1, "tower_user_name": "bob", "semaphore_vars": {"task_details": {}}})


@given(st.from_regex(r"\Aansible_[a-z_]{1,20}\Z"))
def test_every_ansible_variable_is_refused(name: str) -> None:
    with pytest.raises(ExtraVarRefusedError, match="connection overrides"):
        guard.check_extra_vars(CATALOG.get("health"), {name: "x"})


@pytest.mark.parametrize("name", ["autoops_env", "autoops_run_id", "autoops_ticket",
                                  "health_disk_max_percent", "hosts", "awx-job", "AWX_JOB_ID"])
def test_undeclared_variables_are_refused(name: str) -> None:
    with pytest.raises(ExtraVarRefusedError) as err:
        guard.check_extra_vars(CATALOG.get("health"), {name: 1, "disk_max_percent": 80})
    assert err.value.details["refused"] == [name]


def test_the_environment_comes_from_a_project_inventory(tmp_path: Path) -> None:
    inventories = tmp_path / "inventories"
    (inventories / "staging").mkdir(parents=True)
    hostile = {"web1": {"autoops_env": "production"}}
    assert guard.env_of(launch(inventories=(str(inventories / "staging"),), hostvars=hostile),
                        inventories) == ("staging", False)
    assert guard.env_of(launch(inventories=(str(inventories / "staging" / "hosts.yml"),)),
                        inventories) == ("staging", False)
    with pytest.raises(GuardRefusedError, match="2 inventory sources"):
        guard.env_of(launch(inventories=(str(inventories / "staging"), "/tmp/add.yml")),
                     inventories)


def test_elsewhere_every_host_must_say_the_same_environment(tmp_path: Path) -> None:
    inventories = tmp_path / "inventories"
    awx = ("/runner/inventory/hosts",)
    assert guard.env_of(launch(inventories=awx), inventories) == ("staging", True)
    mixed = launch(inventories=awx, hosts=("web1", "db1"),
                   hostvars={"web1": {"autoops_env": "staging"},
                             "db1": {"autoops_env": "production"}})
    silent = launch(inventories=awx, hostvars={"web1": {}})
    for bad in (mixed, silent):
        with pytest.raises(GuardRefusedError, match="one environment"):
            guard.env_of(bad, inventories)


@pytest.mark.parametrize(("extra", "origin", "actor"), [
    ({"awx_job_id": 5, "awx_user_name": "alice", "awx_job_template_name": "t"},
     {"frontend": "awx", "user": "alice", "job_id": 5, "template": "t"}, "alice@awx"),
    ({"tower_job_id": 5, "tower_user_name": "Bob Smith"},
     {"frontend": "awx", "user": "Bob Smith", "job_id": 5}, "Bob-Smith@awx"),
    ({"semaphore_vars": {"task_details": {"id": 9, "username": "carol"}}},
     {"frontend": "semaphore", "user": "carol", "job_id": 9}, "carol@semaphore"),
    ({"awx_job_id": 5, "awx_user_name": "../../$(id)"},
     {"frontend": "awx", "user": "../../$(id)"}, "id@awx"),
    ({}, {"frontend": "ansible-playbook", "user": None}, None),
])
def test_origin_and_actor(extra: dict[str, Any], origin: dict[str, Any],
                          actor: str | None) -> None:
    seen = guard.origin_of(extra)
    assert {k: seen[k] for k in origin} == origin
    assert guard.actor_of(seen) == actor


@pytest.mark.parametrize("value", ["{{ lookup('pipe', 'id') }}", "{% if 1 %}x{% endif %}",
                                   {"task_details": {"username": "{{ 7*7 }}"}}, ["{# c #}"]])
def test_templates_in_extra_vars_are_refused(value: Any) -> None:
    name = "semaphore_vars" if isinstance(value, dict) else "disk_max_percent"
    with pytest.raises(ExtraVarRefusedError, match="template"):
        guard.check_extra_vars(CATALOG.get("health"), {name: value})


PROJECT_VARS = {"web1": {"ansible_host": "192.0.2.11", "ansible_user": "autoops",
                         "ansible_become": True, "autoops_env": "staging",
                         "autoops_backup_dir": "/var/backups/autoops"}}


def test_a_faithful_copy_of_the_inventory_passes() -> None:
    copy = launch(hostvars={"web1": {**PROJECT_VARS["web1"], "db_password": "x"}})
    guard.check_inventory("staging", copy, PROJECT_VARS, frozenset({"db_password"}))


@pytest.mark.parametrize(("change", "message"), [
    ({"ansible_host": "192.0.2.99"}, "reaches 192.0.2.99:22"),
    ({"ansible_ssh_host": "127.0.0.1"}, "differ from inventories/staging: ansible_ssh_host"),
    ({"ansible_become_flags": "-n true; id; sudo -n"}, "ansible_become_flags"),
    ({"ansible_become_user": "daemon"}, "ansible_become_user"),
    ({"autoops_backup_dir": "/"}, "autoops_backup_dir"),
    ({"health_disk_max_percent": 100}, "health_disk_max_percent"),
])
def test_a_copy_that_says_anything_else_is_refused(change: dict[str, Any], message: str) -> None:
    copy = launch(hostvars={"web1": {**PROJECT_VARS["web1"], **change}})
    with pytest.raises(GuardRefusedError, match=message):
        guard.check_inventory("staging", copy, PROJECT_VARS)


def test_a_host_the_project_does_not_have_is_refused() -> None:
    with pytest.raises(GuardRefusedError, match="not in inventories/staging"):
        guard.check_inventory("staging", launch(hosts=("web9",)), PROJECT_VARS)


def test_a_launch_on_many_hosts_is_planned_with_its_own_limit() -> None:
    """Named host by host while that fits a limit; past that, the launch's own pattern (the
    plan's hosts must then equal the launch's, which the gate checks)."""
    from autoops.frontdoors.guard import _limit_of

    few = launch(hosts=("web2", "web1"), limit="web")
    assert _limit_of(few) == "web1,web2"
    many = launch(hosts=tuple(f"host-{i:03d}.staging.example.com" for i in range(200)),
                  limit="all[0:199]")
    assert _limit_of(many) == "all[0:199]"
    assert _limit_of(launch(hosts=many.hosts, limit=None)) is None
