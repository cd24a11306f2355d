"""The gate as a boundary, tried as an attacker would, in same-user mode.

Each test is one attack that worked against the first wave (issue 11): an inherited
variable, a path with shell words, a kill -9, a symlinked inventory, a change made
while an approved run waited, another spelling of a name, a halt lifted by the agent
it stopped, a pty typing the environment name. Real runs through the real console
script (or the CLI's program) on this machine; nothing here is mocked.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoops.common import procs
from autoops.exits import ExitStatus
from autoops.settings import Settings
from autoops.state.db import StateDB
from tests.conftest import VENV_BIN, cli_env, localise, make_project, run_cli, run_script
from tests.integration.conftest import Terminal, records, set_vars, wait_for

pytestmark = pytest.mark.integration


def run_env(settings: Settings, extra: dict[str, str], *argv: str,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The console script with a caller's own additions to its environment."""
    return subprocess.run([str(VENV_BIN / "autoops"), *argv], env={**cli_env(settings), **extra},
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)


def start(settings: Settings, *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen([str(VENV_BIN / "autoops"), *argv], env=cli_env(settings),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def edit_policy(project: Path, env: str, **rules: Any) -> None:
    path = project / "policy.yml"
    doc = yaml.safe_load(path.read_text())
    doc["environments"][env].update(rules)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def last_finished(settings: Settings) -> dict[str, Any]:
    return [r for r in records(settings) if r["type"] == "run.finished"][-1]


# -- 2: the environment is an allowlist -------------------------------------------------

def test_an_inherited_roles_path_cannot_replace_an_allowlisted_role(
        settings: Settings, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil-roles" / "health" / "tasks"
    evil.mkdir(parents=True)
    (evil / "main.yml").write_text(textwrap.dedent(f"""\
        ---
        - name: Not the health check
          ansible.builtin.file:
            path: {marker}
            state: touch
            mode: "0600"
        """))
    hostile = {"ANSIBLE_ROLES_PATH": str(evil.parent.parent), "ANSIBLE_LOG_PATH":
               str(tmp_path / "ansible.log"), "ANSIBLE_VERBOSITY": "4",
               "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks",
               "PYTHONWARNINGS": "ignore"}
    result = run_env(settings, hostile, "run", "health", "--env", "local")
    assert result.returncode == ExitStatus.OK, result.stderr
    assert not marker.exists(), "the inherited ANSIBLE_ROLES_PATH chose the role"
    assert not (tmp_path / "ansible.log").exists(), "the inherited log path got output"
    notice = [ln for ln in result.stderr.splitlines() if ln.startswith("autoops: ignoring")]
    assert len(notice) == 1
    for name in hostile:
        assert name in notice[0]
    requested = [r for r in records(settings) if r["type"] == "run.requested"][-1]
    assert set(hostile) <= set(requested["data"]["environ_ignored"])
    assert "Read uptime, load, memory and disks" in result.stdout


def test_a_fake_utc_zone_on_pythontzpath_does_not_open_a_closed_window(
        settings: Settings, project: Path, tmp_path: Path) -> None:
    fake = tmp_path / "zones"
    fake.mkdir()
    shutil.copy("/usr/share/zoneinfo/Etc/GMT-12", fake / "UTC")  # "UTC" that is UTC+12
    later = datetime.now(UTC) + timedelta(hours=12)
    start_at = max(later - timedelta(minutes=30), later.replace(hour=0, minute=0))
    end_at = min(later + timedelta(minutes=30), later.replace(hour=23, minute=59))
    edit_policy(project, "local", windows={
        "timezone": "UTC", "above": "SAFE", "weekly": [{
            "days": [later.strftime("%a").lower()], "start": start_at.strftime("%H:%M"),
            "end": end_at.strftime("%H:%M")}]})
    plan = run_env(settings, {"PYTHONTZPATH": str(fake)}, "plan", "test-hold", "--env", "local",
                   "--json")
    assert plan.returncode == ExitStatus.DENIED, plan.stdout + plan.stderr
    assert json.loads(plan.stdout)["decision"]["rule"] == "window"


# -- 4: what was approved is what runs ----------------------------------------------------

def test_a_task_added_while_a_run_waits_for_its_lock_never_runs(
        settings: Settings, project: Path, tmp_path: Path) -> None:
    marker = tmp_path / "added-task-ran"
    holder = start(settings, "run", "test-hold", "--env", "local", "-p", "seconds=91")
    try:
        wait_for(lambda: bool(StateDB(settings.db_path).locks.held()), what="the first lock")
        waiting = start(settings, "run", "test-hold", "--env", "local", "-p", "seconds=1",
                        "--wait", "120")
        wait_for(lambda: sum(r["type"] == "run.decision" for r in records(settings)) == 2,
                 what="the second run to be approved and wait")
        playbook = project / "playbooks" / "test-sleep.yml"
        playbook.write_text(playbook.read_text() + textwrap.indent(textwrap.dedent(f"""\
            - name: Slipped in while the run waited
              ansible.builtin.file:
                path: {marker}
                state: touch
                mode: "0600"
            """), "    "))
        holder.send_signal(signal.SIGINT)
        holder.communicate(timeout=60)
        _out, err = waiting.communicate(timeout=120)
    finally:
        holder.kill()
    assert waiting.returncode == ExitStatus.APPROVAL_REQUIRED, err
    assert "AUTOOPS-APPROVAL-PLAN-CHANGED" in err
    assert not marker.exists()
    finished = last_finished(settings)
    assert finished["data"]["error"]["code"] == "AUTOOPS-APPROVAL-PLAN-CHANGED"
    started = [r for r in records(settings) if r["type"] == "run.started"]
    assert [r["run_id"] for r in started] != []
    assert finished["run_id"] not in {
        r["run_id"] for r in started}


def test_a_symlink_out_of_the_project_is_refused(settings: Settings, project: Path,
                                                 tmp_path: Path) -> None:
    outside = tmp_path / "outside.yml"
    outside.write_text("---\n- name: From outside\n  ansible.builtin.ping:\n")
    (project / "roles" / "health" / "tasks" / "outside.yml").symlink_to(outside)
    result = run_script(settings, "plan", "health", "--env", "local")
    assert result.returncode == ExitStatus.BAD_INPUT
    assert "AUTOOPS-CONTENT-INVALID" in result.stderr
    inside = project / "roles" / "health" / "tasks" / "alias.yml"
    (project / "roles" / "health" / "tasks" / "outside.yml").unlink()
    inside.symlink_to(project / "roles" / "health" / "tasks" / "main.yml")
    assert run_script(settings, "plan", "health", "--env", "local").returncode == ExitStatus.OK


# -- 5: no run outlives its supervisor ------------------------------------------------------

def _sleeping_run(settings: Settings, seconds: int) -> tuple[subprocess.Popen[str], str]:
    proc = start(settings, "run", "test-hold", "--env", "local", "-p", f"seconds={seconds}")
    wait_for(lambda: any(r["type"] == "run.started" for r in records(settings)),
             what="run.started")
    run_id = next(r["run_id"] for r in records(settings) if r["type"] == "run.started")
    wait_for(lambda: subprocess.run(["pgrep", "-fx", f"sleep {seconds}"], check=False,
                                    capture_output=True).returncode == 0, what="the sleep")
    return proc, run_id


def _sleep_alive(seconds: int) -> bool:
    return subprocess.run(["pgrep", "-fx", f"sleep {seconds}"], check=False,
                          capture_output=True).returncode == 0


def test_kill_9_of_autoops_takes_the_playbook_with_it(settings: Settings) -> None:
    proc, run_id = _sleeping_run(settings, 389)
    proc.kill()
    proc.communicate(timeout=30)
    wait_for(lambda: not _sleep_alive(389), timeout=30, what="the playbook to die with autoops")
    wait_for(lambda: not procs.marked(run_id), timeout=30,  # the worker's children die too
             what="every process of the run to end with it")
    assert StateDB(settings.db_path).locks.held() != [], "the lock waits for the next command"
    status = run_script(settings, "status", "--json")
    assert json.loads(status.stdout)["locks"] == []
    interrupted = [r for r in records(settings, run_id) if r["type"] == "run.interrupted"]
    assert "killed or crashed" in interrupted[-1]["data"]["reason"]


def test_kill_9_of_autoops_and_its_worker_is_cleaned_up_before_the_locks_go(
        settings: Settings) -> None:
    proc, run_id = _sleeping_run(settings, 397)
    row = StateDB(settings.db_path).runs.get(run_id)
    assert row is not None
    assert row.worker_pid is not None
    assert row.worker_start is not None
    assert procs.is_alive(row.worker_pid, row.worker_start)
    os.kill(row.worker_pid, signal.SIGKILL)
    proc.kill()
    proc.communicate(timeout=30)
    wait_for(lambda: not procs.is_alive(row.worker_pid or 0, row.worker_start or ""), 30,
             "the worker to die")
    left = procs.marked(run_id)
    assert left, "ansible's setsid() workers outlive a SIGKILLed worker"
    assert _sleep_alive(397)
    halt = run_script(settings, "halt", "--env", "local", "--reason", "kill it all", "--json")
    assert halt.returncode == ExitStatus.OK, halt.stderr
    doc = json.loads(halt.stdout)
    assert run_id in doc["runs_stopped"]
    assert not procs.marked(run_id), "halt reported the run stopped while its processes lived"
    assert not _sleep_alive(397)
    interrupted = [r for r in records(settings, run_id) if r["type"] == "run.interrupted"]
    assert set(interrupted[-1]["data"]["killed"]) >= {pid for pid, _ in left}
    assert StateDB(settings.db_path).locks.held() == []


# -- 6: arguments, never strings ----------------------------------------------------------

def test_paths_with_spaces_quotes_option_words_and_non_ascii(tmp_path: Path) -> None:
    inject = tmp_path / "inject.yml"
    inject.write_text("text: INJECTED\n")
    weird = f" sp ace 'q' \"dq\" -e @{inject} ü $(id) `id` ;"
    project = make_project(tmp_path / f"project{weird}")
    state = tmp_path / f"state{weird}"
    settings = Settings(project_dir=project, state_dir=state, os_user="tester",
                        python=VENV_BIN / "python", search_path=os.environ["PATH"],
                        cache_dir=tmp_path / "cache", config_dir=tmp_path / f"config{weird}")
    dest = tmp_path / "echo.txt"
    result = run_script(settings, "run", "test-echo", "--env", "local", "-p", "text=plain",
                        "-p", f"dest={dest}")
    assert result.returncode == ExitStatus.OK, result.stdout + result.stderr
    assert dest.read_text() == "plain"
    health = run_script(settings, "run", "health", "--env", "local")
    assert health.returncode == ExitStatus.OK, health.stderr
    assert run_script(settings, "audit", "verify").returncode == ExitStatus.OK


# -- 8: environments cannot overlap -------------------------------------------------------

def test_a_symlinked_inventory_does_not_borrow_another_environments_rules(
        settings: Settings, project: Path) -> None:
    staging = project / "inventories" / "staging"
    shutil.rmtree(staging)
    staging.symlink_to(project / "inventories" / "production")
    result = run_script(settings, "plan", "health", "--env", "staging")
    assert result.returncode == ExitStatus.BAD_INPUT
    assert "AUTOOPS-ENV-UNKNOWN" in result.stderr
    assert "symbolic link" in result.stderr


@pytest.mark.parametrize("how", ["name", "address"])
def test_one_machine_in_two_environments_is_refused(settings: Settings, project: Path,
                                                    how: str) -> None:
    hosts = project / "inventories" / "staging" / "hosts.yml"
    doc = yaml.safe_load(hosts.read_text())
    entry = ({"web1.production.example.com": {"ansible_host": "192.0.2.200"}} if how == "name"
             else {"sneaky.staging.example.com": {"ansible_host": "192.0.2.21"}})
    doc["all"]["children"]["web"]["hosts"].update(entry)
    hosts.write_text(yaml.safe_dump(doc))
    for argv in (["plan", "health", "--env", "local"], ["inventory", "check"]):
        result = run_script(settings, *argv)
        assert result.returncode == ExitStatus.BAD_INPUT, result.stdout + result.stderr
        assert "AUTOOPS-INVENTORY-OVERLAP" in result.stderr


def test_host_locks_are_per_machine_across_environments(settings: Settings, project: Path,
                                                        tmp_path: Path) -> None:
    localise(project, "staging")  # staging-box is this machine too (connection local)
    set_vars(project, "staging", autoops_backup_dir=str(tmp_path / "b"),
             autoops_backup_paths=[str(project / "catalog.yml")])
    holder = start(settings, "run", "test-hold", "--env", "local", "-p", "seconds=87")
    try:
        wait_for(lambda: bool(StateDB(settings.db_path).locks.held()), what="the local lock")
        other = run_script(settings, "run", "backup", "--env", "staging")
        assert other.returncode == ExitStatus.BUSY, other.stderr
        assert "AUTOOPS-LOCKED" in other.stderr
    finally:
        holder.send_signal(signal.SIGINT)
        holder.communicate(timeout=60)


# -- 3: identities and approvals that cannot be spelled around -------------------------------

@pytest.fixture
def second_person_local(settings: Settings, project: Path) -> Settings:
    """local needs a second person, instead of a typed confirmation, from LOW up."""
    edit_policy(project, "local", unattended_max_risk="SAFE", confirm_max_risk="DESTRUCTIVE",
                two_person_min_risk="LOW", typed_confirmation_max_risk="SAFE")
    return settings


def _request(settings: Settings, actor: str) -> str:
    asked = run_cli(settings, "run", "test-hold", "--env", "local", "-p", "seconds=1",
                    "--actor", actor, "--json")
    assert asked.status == ExitStatus.APPROVAL_REQUIRED, asked.out
    return str(json.loads(asked.out)["approval_request"])


def test_a_requester_cannot_approve_under_another_spelling(second_person_local: Settings) -> None:
    settings = second_person_local
    request_id = _request(settings, "alice")
    for spelling in ("ALICE", "Alice", "\uff41lice"):
        own = run_cli(settings, "approve", request_id, "--actor", spelling)
        assert own.status in {ExitStatus.DENIED, ExitStatus.BAD_INPUT}, own.err
    assert run_cli(settings, "approve", request_id, "--actor", "bob").status == ExitStatus.OK
    by_approver = run_cli(settings, "run", "test-hold", "--env", "local", "-p", "seconds=1",
                          "--actor", "BOB", "--approval", request_id)
    assert by_approver.status == ExitStatus.DENIED
    assert "AUTOOPS-APPROVAL-SELF" in by_approver.err
    ran = run_cli(settings, "run", "test-hold", "--env", "local", "-p", "seconds=1",
                  "--actor", "alice", "--approval", request_id)
    assert ran.status == ExitStatus.OK, ran.err  # a second person instead of typing


def test_only_the_policys_approvers_approve(second_person_local: Settings,
                                            project: Path) -> None:
    settings = second_person_local
    edit_policy(project, "local", approvers={"users": ["Carol"], "groups": []})
    request_id = _request(settings, "alice")
    bob = run_cli(settings, "approve", request_id, "--actor", "bob")
    assert bob.status == ExitStatus.DENIED
    assert "AUTOOPS-APPROVER-NOT-ALLOWED" in bob.err
    assert run_cli(settings, "reject", request_id, "--actor", "bob", "--reason",
                   "no").status == ExitStatus.DENIED
    assert run_cli(settings, "approve", request_id, "--actor", "carol").status == ExitStatus.OK


def test_the_agent_a_halt_stops_cannot_lift_it(settings: Settings, project: Path) -> None:
    halted = run_cli(settings, "halt", "--env", "local", "--against", "agent-7", "--reason",
                     "it went rogue", "--actor", "alice")
    assert halted.status == ExitStatus.OK, halted.err
    blocked = run_cli(settings, "run", "health", "--env", "local", "--actor", "Agent-7")
    assert blocked.status == ExitStatus.HALTED
    assert run_cli(settings, "run", "health", "--env", "local",
                   "--actor", "alice").status == ExitStatus.OK
    for spelling in ("agent-7", "AGENT-7"):
        lifted = run_cli(settings, "resume", "--env", "local", "--against", "agent-7",
                         "--reason", "I am fine", "--actor", spelling)
        assert lifted.status == ExitStatus.DENIED
        assert "AUTOOPS-APPROVER-NOT-ALLOWED" in lifted.err
    edit_policy(project, "local", approvers={"users": ["carol"]})
    assert run_cli(settings, "resume", "--env", "local", "--against", "agent-7", "--reason",
                   "ok", "--actor", "bob").status == ExitStatus.DENIED
    assert run_cli(settings, "resume", "--env", "local", "--against", "agent-7", "--reason",
                   "reviewed", "--actor", "carol").status == ExitStatus.OK
    assert run_cli(settings, "run", "health", "--env", "local",
                   "--actor", "agent-7").status == ExitStatus.OK


# -- 11: the typed confirmation is a guard against mistakes -----------------------------------

def test_no_typed_confirmation_for_machine_interfaces(settings: Settings, project: Path) -> None:
    localise(project, "production")
    terminal = Terminal([str(VENV_BIN / "autoops"), "run", "backup", "--env", "production",
                         "--json"], cli_env(settings))
    terminal.type("production\n")
    code, output = terminal.finish()
    assert code == ExitStatus.APPROVAL_REQUIRED, output
    assert "Type the environment name" not in output


def test_a_pty_typing_production_cannot_run_destructive(settings: Settings, project: Path,
                                                       tmp_path: Path) -> None:
    """The shipped production policy takes a second person, not typing, for DESTRUCTIVE."""
    localise(project, "production")
    backups = tmp_path / "backups"
    backups.mkdir()
    for n in range(3):
        (backups / f"autoops-2026010{n}T000000Z.tar.gz").write_bytes(b"x")
    set_vars(project, "production", autoops_backup_dir=str(backups))
    terminal = Terminal([str(VENV_BIN / "autoops"), "run", "backup-prune", "--env",
                         "production", "-p", "keep=1"], cli_env(settings))
    terminal.type("production\n")
    code, output = terminal.finish()
    assert code == ExitStatus.APPROVAL_REQUIRED, output
    assert "AUTOOPS-APPROVAL-REQUIRED" in output
    assert "second person" in output
    assert len(list(backups.iterdir())) == 3
    assert not [r for r in records(settings) if r["type"] == "run.started"]
