"""The pre-flight guard and the audit callback, as AWX, Semaphore and ansible-playbook run them.

Real ansible-playbook and real ansible-runner (its CLI, with the private data dir, extra
vars and environment AWX gives it) on the catalog's playbooks: what policy allows runs and
is audited under the front-end's user; what it does not, and every launch that tries to go
around the gate, is refused before any host task — and the refusal is audited.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoops.audit.log import AuditLog
from autoops.core.catalog import Catalog
from autoops.frontdoors import export
from autoops.settings import Settings
from autoops.state.db import StateDB
from tests.conftest import VENV_BIN, cli_env, localise, run_cli
from tests.integration.conftest import records, wait_for

pytestmark = pytest.mark.integration

AWX_VARS = {"awx_job_id": 42, "awx_user_name": "alice", "awx_job_template_name": "touch",
            "awx_inventory_name": "production", "awx_job_launch_type": "manual",
            "awx_user_id": 7, "awx_project_revision": "0" * 40}
TOUCH = {
    "description": "Write a marker file (tests only).", "playbook": "playbooks/test-touch.yml",
    "risk": "HIGH", "environments": ["local", "production"], "check_mode": False,
    "params": {"required": ["dest"], "properties": {
        "dest": {"type": "string", "description": "file", "pattern": "^/[A-Za-z0-9._/-]+$"}}},
}


def guarded(action: str, plays: str) -> str:
    """A test playbook that opens, as every catalog playbook does, with the guard play."""
    return textwrap.dedent(f"""\
        ---
        - name: Pre-flight guard
          hosts: all
          gather_facts: false
          any_errors_fatal: true
          tasks:
            - name: Pre-flight guard
              autoops.ops.guard:
                action: {action}
              delegate_to: localhost
              run_once: true
              tags: [always]

        """) + textwrap.dedent(plays)


TOUCH_PLAYBOOK = guarded("test-touch", """\
    - name: Touch
      hosts: all
      gather_facts: false
      tasks:
        - name: Write the marker
          ansible.builtin.copy:
            content: "touched by {{ inventory_hostname }}"
            dest: "{{ dest }}"
            mode: "0600"
    """)


@pytest.fixture
def front(project: Path, settings: Settings) -> Settings:
    """The test project with a HIGH action in production, pointed at this machine."""
    catalog = yaml.safe_load((project / "catalog.yml").read_text())
    catalog["actions"]["test-touch"] = TOUCH
    (project / "catalog.yml").write_text(yaml.safe_dump(catalog, sort_keys=False))
    (project / "playbooks" / "test-touch.yml").write_text(TOUCH_PLAYBOOK)
    localise(project, "production")
    main = project / "inventories" / "production" / "group_vars" / "all" / "main.yml"
    main.write_text(main.read_text().replace("autoops_env: local", "autoops_env: production"))
    return settings


def environ(settings: Settings) -> dict[str, str]:
    """What a front-end's job sees: autoops located (the credential's injectors), the project's
    ansible.cfg."""
    return {**cli_env(settings), "ANSIBLE_CONFIG": str(settings.project_dir / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', os.defpath)}"}


def playbook(settings: Settings, env: str, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A plain ansible-playbook, from the project directory, on one of its inventories."""
    return subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", f"inventories/{env}", f"playbooks/{name}",
         *args], cwd=settings.project_dir, env=environ(settings), capture_output=True,
        text=True, check=False, timeout=300, stdin=subprocess.DEVNULL)


def awx_job(settings: Settings, tmp_path: Path, env: str, name: str,
            extravars: dict[str, Any], *,
            tamper: Callable[[dict[str, Any]], None] | None = None) -> tuple[int, dict[str, Any]]:
    """Run the playbook as AWX does: ansible-runner over a private data dir whose inventory
    is AWX's own copy (synced from the project: hosts and their variables; ``tamper`` edits
    that copy), with AWX's extra vars and job environment. Returns the exit status and the
    recap's stats."""
    project = settings.project_dir
    pdd = tmp_path / f"awx-{name}-{len(list(tmp_path.glob('awx-*')))}"
    (pdd / "env").mkdir(parents=True)
    (pdd / "inventory").mkdir()
    listing = json.loads(subprocess.run(
        [str(VENV_BIN / "ansible-inventory"), "-i", f"inventories/{env}", "--list"],
        cwd=project, env=environ(settings), capture_output=True, text=True, check=True).stdout)
    hostvars = listing["_meta"]["hostvars"]
    if tamper is not None:
        tamper(hostvars)
    # as AWX writes it: an executable script that prints the inventory as JSON
    script = pdd / "inventory" / "hosts"
    script.write_text("#!/bin/sh\ncat <<'AWX_INVENTORY'\n" + json.dumps(
        {"all": {"hosts": sorted(hostvars), "vars": {}}, "_meta": {"hostvars": hostvars}})
        + "\nAWX_INVENTORY\n")
    script.chmod(0o700)
    (pdd / "env" / "extravars").write_text(yaml.safe_dump({**AWX_VARS, **extravars}))
    (pdd / "env" / "envvars").write_text(yaml.safe_dump(
        {"JOB_ID": "42", "AWX_HOST": "https://awx.example.invalid"}))
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-runner"), "run", str(pdd), "-p", f"playbooks/{name}",
         "--project-dir", str(project)],
        env=environ(settings), capture_output=True, text=True, check=False, timeout=300)
    stats: dict[str, Any] = {}
    for event in sorted((pdd / "artifacts").glob("*/job_events/*.json")):
        doc = json.loads(event.read_text())
        if doc.get("event") == "playbook_on_stats":
            stats = doc["event_data"]
    return proc.returncode, stats


def of_type(settings: Settings, type_: str) -> list[dict[str, Any]]:
    return [r for r in records(settings) if r["type"] == type_]


def verified(settings: Settings) -> None:
    AuditLog(settings.audit_path, StateDB(settings.db_path)).verify()


def test_awx_job_allowed_runs_and_is_audited_under_the_awx_user(
        front: Settings, tmp_path: Path) -> None:
    rc, stats = awx_job(front, tmp_path, "local", "health.yml", {"disk_max_percent": 99})
    assert rc == 0, stats
    started = of_type(front, "run.started")
    assert len(started) == 1
    run_id = started[0]["run_id"]
    run = records(front, run_id)
    assert {r["actor"] for r in run} == {"alice@awx"}
    requested = next(r for r in run if r["type"] == "run.requested")
    assert requested["data"]["origin"] == {
        "frontend": "awx", "user": "alice", "job_id": 42, "template": "touch",
        "inventory": "production", "launch_type": "manual", "workflow_job_id": None}
    assert requested["data"]["plan"]["params"]["disk_max_percent"] == 99
    tasks = [r["data"]["task"] for r in run if r["type"] == "task.result"]
    assert any("Judge the reading" in t for t in tasks), tasks
    finished = next(r for r in run if r["type"] == "run.finished")
    assert finished["data"]["status"] == "ok"
    assert StateDB(front.db_path).runs.get(run_id).status == "finished"  # type: ignore[union-attr]
    verified(front)
    shown = run_cli(front, "audit", "query", "--actor", "alice@awx", "--json")
    assert {r["run_id"] for r in json.loads(shown.out)["records"]} == {run_id}


def test_production_high_without_a_grant_is_refused_before_any_host_task(
        front: Settings, tmp_path: Path) -> None:
    marker = tmp_path / "touched"
    rc, stats = awx_job(front, tmp_path, "production", "test-touch.yml", {"dest": str(marker)})
    assert rc != 0
    assert not marker.exists(), "a host task ran past the guard"
    assert "Touch" not in json.dumps(stats)
    finished = of_type(front, "run.finished")
    assert [r["data"]["error"]["code"] for r in finished] == ["AUTOOPS-APPROVAL-REQUIRED"]
    assert finished[0]["actor"] == "alice@awx"
    assert "autoops_grant" in finished[0]["data"]["error"]["remedy"]
    assert not of_type(front, "run.started")
    verified(front)


def test_a_grant_lets_the_awx_job_through_and_its_use_is_counted(
        front: Settings, tmp_path: Path) -> None:
    assert run_cli(front, "grant", "init-keys", "--env", "production").status == 0
    made = run_cli(front, "grant", "create", "--env", "production", "--actions", "test-touch",
                   "--max-risk", "HIGH", "--expires-in", "30m", "--uses", "1",
                   "--reason", "AWX nightly", "--json")
    assert made.status == 0, made.err
    token = json.loads(made.out)["token"]
    marker = tmp_path / "touched"
    rc, _ = awx_job(front, tmp_path, "production", "test-touch.yml",
                    {"dest": str(marker), "autoops_grant": token})
    assert rc == 0
    assert marker.read_text() == "touched by production-box"
    used = of_type(front, "grant.used")
    assert len(used) == 1
    assert used[0]["actor"] == "alice@awx"
    again, _ = awx_job(front, tmp_path, "production", "test-touch.yml",
                       {"dest": str(tmp_path / "again"), "autoops_grant": token})
    assert again != 0
    assert not (tmp_path / "again").exists(), "a one-use grant ran twice"
    assert "AUTOOPS-GRANT-EXHAUSTED" in [r["data"]["error"]["code"]
                                         for r in of_type(front, "run.finished")
                                         if r["data"].get("error")]
    verified(front)


@pytest.mark.parametrize(("extra", "named"), [
    ({"ansible_connection": "local"}, "connection overrides ansible_connection"),
    ({"ansible_python_interpreter": "/bin/sh"}, "connection overrides ansible_python_interpreter"),
    ({"autoops_env": "local"}, "undeclared extra variables autoops_env"),
    ({"autoops_ticket": "aot1." + "0" * 64, "autoops_run_id": "20261204T000000Z-00000000",
      "autoops_env": "production", "autoops_action": "test-touch"}, "run ticket"),
    ({"become_user": "root"}, "undeclared extra variables become_user"),
])
def test_front_door_extra_vars_cannot_widen_the_run(front: Settings, tmp_path: Path,
                                                    extra: dict[str, Any], named: str) -> None:
    marker = tmp_path / "touched"
    rc, _ = awx_job(front, tmp_path, "production", "test-touch.yml",
                    {"dest": str(marker), **extra})
    assert rc != 0
    assert not marker.exists()
    refused = of_type(front, "guard.refused")
    assert len(refused) == 1, records(front)
    assert named in refused[0]["data"]["error"]["message"]
    assert refused[0]["actor"] == "alice@awx"
    assert refused[0]["action"] == "test-touch"
    verified(front)


@pytest.mark.parametrize("args", [["--skip-tags", "always"], ["--start-at-task", "Write the marker"],
                                  ["--tags", "never"]])
def test_launch_options_that_skip_the_guard_stop_the_playbook(front: Settings, tmp_path: Path,
                                                              args: list[str]) -> None:
    marker = tmp_path / "touched"
    proc = playbook(front, "local", "test-touch.yml", "-e", f"dest={marker}", *args)
    assert proc.returncode != 0, proc.stdout
    assert not marker.exists(), proc.stdout
    assert "AUTOOPS-GUARD-REFUSED" in proc.stdout + proc.stderr
    refused = of_type(front, "guard.refused") + [
        r for r in of_type(front, "run.finished") if r["data"].get("error")]
    assert len(refused) == 1, "the stop (or the guard's refusal) is audited"


def test_plain_ansible_playbook_is_guarded_and_audited_as_its_unix_user(
        front: Settings, tmp_path: Path) -> None:
    marker = tmp_path / "touched"
    refused = playbook(front, "production", "test-touch.yml", "-e", f"dest={marker}")
    assert refused.returncode != 0
    assert not marker.exists()
    assert "AUTOOPS-APPROVAL-REQUIRED" in refused.stdout
    ok = playbook(front, "local", "health.yml")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    run_id = of_type(front, "run.started")[0]["run_id"]
    run = records(front, run_id)
    assert run[0]["data"]["origin"] == {"frontend": "ansible-playbook", "user": None}
    assert run[-1]["type"] == "run.finished"
    assert run[-1]["data"]["status"] == "ok"
    verified(front)


def test_the_guard_refuses_a_playbook_that_is_not_the_actions_own(front: Settings) -> None:
    project = front.project_dir
    copy = project / "playbooks" / "health-copy.yml"
    copy.write_text((project / "playbooks" / "health.yml").read_text())
    proc = playbook(front, "local", "health-copy.yml")
    assert proc.returncode != 0
    assert "AUTOOPS-GUARD-REFUSED" in proc.stdout
    assert "catalog's playbook for health" in proc.stdout


def test_an_awx_inventory_that_moves_a_host_is_refused(front: Settings, tmp_path: Path) -> None:
    """AWX's inventory says the production host is somewhere the project's does not."""
    def move(hostvars: dict[str, Any]) -> None:
        hostvars["production-box"].update(ansible_connection="ssh", ansible_host="192.0.2.10")

    rc, _ = awx_job(front, tmp_path, "production", "test-touch.yml", {"dest": "/tmp/x"}, tamper=move)
    assert rc != 0
    finished = of_type(front, "run.finished")
    assert len(finished) == 1
    assert not of_type(front, "run.started")
    assert finished[0]["data"]["error"]["code"] == "AUTOOPS-GUARD-REFUSED"
    assert "reaches 192.0.2.10:22" in finished[0]["data"]["error"]["message"]

def answers(items: list[dict[str, Any]]) -> dict[str, Any]:
    """What AWX sends for a survey filled in with defaults (or the first choice, the minimum)."""
    chosen: dict[str, Any] = {}
    for item in items:
        if "default" in item:
            chosen[item["variable"]] = item["default"]
        elif item["type"] == "multiplechoice":
            chosen[item["variable"]] = item["choices"][0]
        elif item["type"] == "integer":
            chosen[item["variable"]] = item["min"]
    return chosen


def test_awx_survey_answers_pass_the_guard_and_an_answer_off_the_list_is_refused(
        front: Settings, tmp_path: Path) -> None:
    catalog = Catalog.load(front.catalog_path, front.project_dir)
    templates = {t["name"]: t for t in export.awx(catalog, ["local"])["job_templates"]}
    report = templates["autoops disk-report (local)"]
    rc, _ = awx_job(front, tmp_path, "local", report["playbook"].split("/")[-1],
                    answers(report["survey_spec"]["spec"]))
    assert rc == 0
    started = of_type(front, "run.started")
    assert [(r["action"], r["actor"]) for r in started] == [("disk-report", "alice@awx")]
    restart = templates["autoops restart-service (local)"]["survey_spec"]["spec"]
    assert restart[0]["choices"] == ["autoops-demo"]
    rc, _ = awx_job(front, tmp_path, "local", "restart-service.yml", {"service": "sshd"})
    assert rc != 0
    refused = of_type(front, "guard.refused")
    assert [r["data"]["error"]["code"] for r in refused] == ["AUTOOPS-PARAM-INVALID"]
    assert len(of_type(front, "run.started")) == 1
    verified(front)


def test_a_semaphore_task_is_audited_under_its_user(front: Settings) -> None:
    catalog = Catalog.load(front.catalog_path, front.project_dir)
    template = next(t for t in export.semaphore(catalog, ["local"])["templates"]
                    if t["name"] == "autoops health (local)")
    assert {v["name"]: v["type"] for v in template["survey_vars"]} == {
        "disk_max_percent": "int", "mem_max_percent": "int"}
    extra = {"disk_max_percent": 97, "semaphore_vars": {"task_details": {
        "id": 3, "username": "carol", "url": "https://semaphore.example.invalid/task/3"}}}
    proc = playbook(front, "local", "health.yml", "--extra-vars", json.dumps(extra))
    assert proc.returncode == 0, proc.stdout
    run = records(front, of_type(front, "run.started")[0]["run_id"])
    assert {r["actor"] for r in run} == {"carol@semaphore"}
    assert run[0]["data"]["origin"]["job_id"] == 3


@pytest.mark.parametrize("args", [
    ["-e", "autoops_guard_action={{ lookup('pipe', 'touch MARK') }}"],
    ["-e", "autoops_env={{ lookup('pipe', 'touch MARK') }}"],
    ["-e", '{"disk_max_percent": 80, "mem_max_percent": "{{ lookup(\'pipe\', \'touch MARK\') }}"}'],
])
def test_a_template_in_an_extra_variable_is_never_evaluated(front: Settings, tmp_path: Path,
                                                            args: list[str]) -> None:
    mark = tmp_path / "evaluated"
    proc = playbook(front, "local", "health.yml",
                    *[a.replace("MARK", str(mark)) for a in args])
    assert proc.returncode != 0
    assert not mark.exists(), "the guard (or Ansible before it) evaluated a caller's template"
    assert "AUTOOPS-EXTRAVAR-REFUSED" in proc.stdout


@pytest.mark.parametrize(("change", "named"), [
    ({"ansible_become_flags": "-n true; id > MARK; sudo -n"}, "ansible_become_flags"),
    ({"ansible_ssh_host": "127.0.0.1"}, "ansible_ssh_host"),
    ({"ansible_host": "{{ lookup('pipe', 'touch MARK') }}"}, "ansible_host"),
    ({"autoops_backup_dir": "/"}, "autoops_backup_dir"),
])
def test_an_awx_inventory_copy_that_differs_is_refused_unevaluated(
        front: Settings, tmp_path: Path, change: dict[str, str], named: str) -> None:
    mark = tmp_path / "evaluated"

    def tamper(hostvars: dict[str, Any]) -> None:
        hostvars["production-box"].update(
            {k: v.replace("MARK", str(mark)) for k, v in change.items()})

    rc, _ = awx_job(front, tmp_path, "production", "test-touch.yml",
                    {"dest": str(tmp_path / "touched")}, tamper=tamper)
    assert rc != 0
    assert not mark.exists()
    assert not (tmp_path / "touched").exists()
    finished = of_type(front, "run.finished")
    assert finished[-1]["data"]["error"]["code"] == "AUTOOPS-GUARD-REFUSED"
    assert named in finished[-1]["data"]["error"]["message"]


@pytest.mark.parametrize(("args", "named"), [
    (["-c", "local"], "launch option connection"),
    (["--ssh-common-args", "-o ProxyCommand=none"], "launch option ssh_common_args"),
    (["-i", "inventories/staging"], "2 inventory sources"),
    (["-e", "awx_job_id=1", "-e", "awx_user_name=alice"], "not that AWX job"),
])
def test_plain_launches_that_widen_the_run_are_refused(front: Settings, args: list[str],
                                                       named: str) -> None:
    proc = playbook(front, "local", "health.yml", *args)
    assert proc.returncode != 0
    assert named in proc.stdout
    assert not of_type(front, "run.started")
    assert of_type(front, "guard.refused") or of_type(front, "run.finished")


def test_a_symlinked_playbook_with_roles_of_its_own_is_refused(front: Settings,
                                                               tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "roles").mkdir(parents=True)
    (elsewhere / "health.yml").symlink_to(front.project_dir / "playbooks" / "health.yml")
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", "inventories/local",
         str(elsewhere / "health.yml")], cwd=front.project_dir, env=environ(front),
        capture_output=True, text=True, check=False, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    assert "catalog's playbook for health" in proc.stdout


SLOW_PLAYBOOK = guarded("test-slow", """\
    - name: Slow
      hosts: all
      gather_facts: false
      tasks:
        - name: Take a while
          ansible.builtin.command:
            argv: [sleep, "4"]
          changed_when: false
        - name: Write the marker afterwards
          ansible.builtin.copy:
            content: done
            dest: "{{ dest }}"
            mode: "0600"
    """)


def test_an_emergency_stop_ends_a_front_door_run_before_its_next_task(
        front: Settings, tmp_path: Path) -> None:
    project = front.project_dir
    catalog = yaml.safe_load((project / "catalog.yml").read_text())
    catalog["actions"]["test-slow"] = {**TOUCH, "playbook": "playbooks/test-slow.yml",
                                       "risk": "SAFE", "environments": ["local"]}
    (project / "catalog.yml").write_text(yaml.safe_dump(catalog, sort_keys=False))
    (project / "playbooks" / "test-slow.yml").write_text(SLOW_PLAYBOOK)
    marker = tmp_path / "done"
    proc = subprocess.Popen(
        [str(VENV_BIN / "ansible-playbook"), "-i", "inventories/local", "playbooks/test-slow.yml",
         "-e", f"dest={marker}"], cwd=project, env=environ(front), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    wait_for(lambda: bool(of_type(front, "run.started")), what="the run to start")
    halted = run_cli(front, "halt", "--env", "local", "--reason", "stop the AWX job", "--wait", "0")
    assert halted.status == 0, halted.err
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 7, out
    assert not marker.exists(), "a task started after the halt"
    run = records(front, of_type(front, "run.started")[0]["run_id"])
    assert [r["type"] for r in run][-2:] == ["run.interrupted", "run.finished"]
    assert run[-1]["data"]["error"]["code"] == "AUTOOPS-HALTED"
    assert StateDB(front.db_path).runs.get(run[-1]["run_id"]).status == "finished"  # type: ignore[union-attr]
