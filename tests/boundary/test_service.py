"""Service mode as a privilege boundary: every attack tried as real users through sudo.

Operators (alice, bob), an agent account and an outsider (eve) reach autoops only as
``sudo -u SERVICE LAUNCHER …``. Whatever they control — their environment, the
spelling of their name, `--actor`, signals, the project and state directories — must
not widen what policy allows.
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import time
from pathlib import Path

import pytest

from autoops.common.procs import descendants
from autoops.exits import ExitStatus
from tests.boundary.conftest import Service
from tests.conftest import VENV_BIN
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def test_install_is_idempotent_and_the_sudoers_entry_validates(service: Service) -> None:
    check = subprocess.run(["visudo", "-c", "-q", "-f", str(service.sudoers)],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    text = service.sudoers.read_text()
    assert f"%{service.group} ALL=({service.user}) NOPASSWD:" in text
    assert "env_reset, !setenv" in text
    assert oct(service.sudoers.stat().st_mode & 0o777) == "0o440"
    status = subprocess.run([str(service.python), "-I", "-m", "autoops", "service", "status",
                             "--config", str(service.config), "--json"],
                            capture_output=True, text=True, check=False)
    assert json.loads(status.stdout)["ok"] is True, status.stdout
    assert (service.state.stat().st_mode & 0o777) == 0o700
    again = subprocess.run(service.install_argv, capture_output=True, text=True, timeout=300,
                           check=False, env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8"})
    assert again.returncode == 0, again.stdout + again.stderr
    changes = json.loads(again.stdout)["changes"]
    assert set(changes.values()) <= {"present", "unchanged"}, changes


def test_an_operator_runs_health_and_is_the_actor(service: Service) -> None:
    result = service.sudo(service.alice, "run", "health", "--env", "local", "--actor", "root",
                          "--json")
    assert result.returncode == ExitStatus.OK, result.stdout + result.stderr
    requested = [r for r in service.audit() if r["type"] == "run.requested"][-1]
    assert requested["actor"] == service.alice, "--actor is only a label in service mode"
    data = requested["data"]
    assert isinstance(data, dict)
    assert data["actor_label"] == "root"
    assert data["mode"] == "service"
    assert data["account"] == service.user


def test_an_outsider_is_refused_by_sudo_and_by_autoops(service: Service) -> None:
    by_sudo = service.sudo(service.eve, "list")
    assert by_sudo.returncode != 0
    assert "autoops" not in by_sudo.stdout
    direct = service.as_user(service.eve, str(service.launcher), "list")
    assert direct.returncode == ExitStatus.DENIED
    assert "AUTOOPS-SERVICE-CALLER" in direct.stderr
    assert f"sudo -u {service.user}" in direct.stderr


def test_the_callers_environment_cannot_reach_the_service(service: Service,
                                                         tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    hostile = {"AUTOOPS_PROJECT_DIR": str(copy), "AUTOOPS_STATE_DIR": str(copy),
               "ANSIBLE_ROLES_PATH": str(copy), "ANSIBLE_LOG_PATH": str(copy / "log"),
               "PYTHONPATH": str(copy), "PYTHONTZPATH": str(copy), "LD_PRELOAD": "/nonexistent.so",
               "SOPS_AGE_KEY_FILE": str(copy / "key"), "AUTOOPS_SERVICE_CONFIG": str(copy / "c")}
    plain = service.sudo(service.alice, "run", "health", "--env", "local", env=hostile)
    assert plain.returncode == ExitStatus.OK, plain.stderr
    assert list(copy.iterdir()) == [], "nothing of the caller's environment was used"
    keep = service.sudo(service.alice, "list", env=hostile, sudo_args=("-E",))
    assert keep.returncode != 0, "sudo -E must be refused (no setenv)"
    assigned = service.as_user(service.alice, "sudo", "-n", "-u", service.user,
                               "ANSIBLE_ROLES_PATH=/tmp", str(service.launcher), "list")
    assert assigned.returncode != 0, "VAR=value through sudo must be refused"


def test_the_project_and_state_are_out_of_the_callers_reach(service: Service) -> None:
    for target in (service.project / "roles" / "health" / "tasks" / "main.yml",
                   service.project / "policy.yml", service.state / "audit" / "audit.jsonl",
                   service.state / "state.db"):
        tried = service.as_user(service.alice, "sh", "-c", f'echo x >> "{target}"')
        assert tried.returncode != 0, f"{target} is writable by an operator"
    link = service.as_user(service.alice, "ln", "-s", "production",
                           str(service.project / "inventories" / "staging2"))
    assert link.returncode != 0


def test_approval_cannot_be_spelled_around_and_the_label_is_no_identity(
        service: Service) -> None:
    asked = service.sudo(service.alice, "run", "deploy-rollback", "--env", "local", "-p",
                         "app=demo", "--json")
    assert asked.returncode == ExitStatus.APPROVAL_REQUIRED, asked.stdout + asked.stderr
    request_id = json.loads(asked.stdout)["approval_request"]
    for label in (service.bob, service.alice.upper()):
        own = service.sudo(service.alice, "approve", request_id, "--actor", label)
        assert own.returncode == ExitStatus.DENIED, own.stderr
        assert "AUTOOPS-APPROVAL-SELF" in own.stderr
    outsider = service.sudo(service.eve, "approve", request_id)
    assert outsider.returncode != 0
    approved = service.sudo(service.bob, "approve", request_id)
    assert approved.returncode == ExitStatus.OK, approved.stderr
    by_approver = service.sudo(service.bob, "run", "deploy-rollback", "--env", "local", "-p",
                               "app=demo", "--approval", request_id, "--actor", service.alice)
    assert by_approver.returncode == ExitStatus.DENIED
    assert "AUTOOPS-APPROVAL-SELF" in by_approver.stderr


def test_the_agent_cannot_lift_the_halt_meant_to_stop_it(service: Service) -> None:
    halted = service.sudo(service.alice, "halt", "--env", "local", "--against", service.agent,
                          "--reason", "the agent loops")
    assert halted.returncode == ExitStatus.OK, halted.stderr
    blocked = service.sudo(service.agent, "run", "health", "--env", "local")
    assert blocked.returncode == ExitStatus.HALTED
    for label in (None, service.alice):
        extra = ("--actor", label) if label else ()
        lift = service.sudo(service.agent, "resume", "--env", "local", "--against",
                            service.agent, "--reason", "all good", *extra)
        assert lift.returncode == ExitStatus.DENIED, lift.stderr
        assert "AUTOOPS-APPROVER-NOT-ALLOWED" in lift.stderr
    assert service.sudo(service.alice, "run", "health", "--env", "local").returncode == 0
    lifted = service.sudo(service.bob, "resume", "--env", "local", "--against", service.agent,
                          "--reason", "reviewed the agent")
    assert lifted.returncode == ExitStatus.OK, lifted.stderr
    assert service.sudo(service.agent, "run", "health", "--env", "local").returncode == 0


def test_no_typed_confirmation_from_a_script(service: Service) -> None:
    """Without a terminal (and above MEDIUM even with one) nobody types a run through."""
    prune = service.sudo(service.alice, "run", "backup-prune", "--env", "local", "-p", "keep=1",
                         stdin="local\n")
    assert prune.returncode == ExitStatus.APPROVAL_REQUIRED, prune.stderr
    assert "second person" in prune.stderr
    assert not [r for r in service.audit() if r["type"] == "run.started"
                and r["action"] == "backup-prune"]


def test_secrets_edit_and_the_lab_are_refused_in_service_mode(service: Service) -> None:
    for argv in (["secrets", "edit", "--env", "local"], ["lab", "status"]):
        result = service.sudo(service.alice, *argv, env={"EDITOR": "/bin/sh"})
        assert result.returncode == ExitStatus.DENIED, result.stderr
        assert "AUTOOPS-SERVICE-REFUSED" in result.stderr


def test_an_operator_cannot_kill_the_run_out_of_its_supervision(service: Service) -> None:
    proc = service.popen(service.alice, "run", "test-hold", "--env", "local", "-p",
                         "seconds=383")
    try:
        wait_for(lambda: subprocess.run(["pgrep", "-u", service.user, "-fx", "sleep 383"],
                                        check=False, capture_output=True).returncode == 0,
                 what="the run's sleep")
        autoops = [int(p) for p in subprocess.run(
            ["pgrep", "-u", service.user, "-f", "--", "-m autoops run test-hold"],
            capture_output=True, text=True, check=False).stdout.split()]
        assert autoops
        tried = service.as_user(service.alice, "kill", "-9", *map(str, autoops))
        assert tried.returncode != 0, "an operator signalled the service's processes"
        stopped = service.sudo(service.bob, "halt", "--env", "local", "--reason", "stop it")
        assert stopped.returncode == ExitStatus.OK, stopped.stderr
        proc.communicate(timeout=60)
        assert proc.returncode == ExitStatus.HALTED
        time.sleep(0.2)
        assert not [p for p in autoops if descendants(p)]
        assert subprocess.run(["pgrep", "-u", service.user, "-fx", "sleep 383"],
                              check=False).returncode == 1
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        service.sudo(service.bob, "resume", "--env", "local", "--reason", "done")


def test_uninstall_closes_the_entry_and_keeps_the_account_and_the_audit(service: Service) -> None:
    """Last in this module: it takes the entry away from the tests above."""
    audit_before = service.audit()
    done = subprocess.run([str(VENV_BIN / "autoops"), "service", "uninstall", "--config",
                           str(service.config), "--json"],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(json.loads(done.stdout)["removed"]) == sorted(
        map(str, (service.sudoers, service.launcher, service.config)))
    for gone in (service.sudoers, service.launcher, service.config):
        assert not gone.exists()
    refused = service.sudo(service.alice, "list")
    assert refused.returncode != 0, "no sudoers entry: the operators have no way in"
    assert pwd.getpwnam(service.user).pw_name == service.user, "the account stays"
    assert service.audit() == audit_before, "the audit log stays, untouched"
