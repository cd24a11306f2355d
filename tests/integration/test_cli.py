"""The installed console scripts, run as a user would: exit statuses, JSON, terminals, signals."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from autoops.exits import ExitStatus
from autoops.settings import Settings
from tests.conftest import VENV_BIN, cli_env, localise, run_script
from tests.integration.conftest import Terminal, kill_matching, records, set_vars, wait_for

pytestmark = pytest.mark.integration


def one_json(proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    doc = json.loads(proc.stdout)  # fails unless stdout is exactly one JSON document
    assert isinstance(doc, dict)
    return doc


def test_health_ok_and_every_command_prints_one_json_document(settings: Settings) -> None:
    run = run_script(settings, "run", "health", "--env", "local", "--json")
    assert run.returncode == 0, run.stderr
    doc = one_json(run)
    assert doc["status"] == "ok"
    run_id = str(doc["run_id"])
    for argv in (["list"], ["show", "deploy"], ["plan", "health", "--env", "local"],
                 ["audit", "tail"], ["audit", "query", "--since", "1h", "--action", "health"],
                 ["audit", "show", run_id], ["audit", "verify"]):
        proc = run_script(settings, *argv, "--json")
        assert proc.returncode == 0, (argv, proc.stderr)
        one_json(proc)


def test_text_output_is_a_readable_summary(settings: Settings) -> None:
    proc = run_script(settings, "run", "health", "--env", "local")
    assert proc.returncode == 0, proc.stderr
    assert "HOST" in proc.stdout
    assert "disk /" in proc.stdout
    assert "load" in proc.stdout
    assert ": OK (exit 0)" in proc.stdout


@pytest.mark.parametrize(("argv", "status", "code"), [
    (["run", "nope", "--env", "local"], 2, "AUTOOPS-ACTION-UNKNOWN"),
    (["run", "backup-prune", "--env", "local", "-p", "keep=0"], 2, "AUTOOPS-PARAM-INVALID"),
    (["run", "health", "--env", "local", "-p", "autoops_actor=mallory"], 2,
     "AUTOOPS-PARAM-INVALID"),
    (["run", "health", "--env", "../production"], 2, "AUTOOPS-ENV-UNKNOWN"),
    (["run", "health", "--env", "qa"], 2, "AUTOOPS-ENV-UNKNOWN"),
    (["run", "health"], 2, "AUTOOPS-BAD-INPUT"),
    (["run", "health", "--env", "local", "--limit", "@/etc/passwd"], 2,
     "AUTOOPS-LIMIT-NO-HOSTS"),
    (["run", "test-echo", "--env", "local", "--check", "-p", "text=x", "-p", "dest=/tmp/x"], 2,
     "AUTOOPS-CHECK-UNSUPPORTED"),
    (["run", "backup-prune", "--env", "production", "-p", "keep=2"], 4,
     "AUTOOPS-APPROVAL-REQUIRED"),  # DESTRUCTIVE in production: a second person
    (["run", "test-echo", "--env", "production", "-p", "text=x", "-p", "dest=/tmp/x"], 3,
     "AUTOOPS-POLICY-DENIED"),
    (["run", "deploy", "--env", "production", "-p", "app=app", "-p",
      "revision=0123456789abcdef0123456789abcdef01234567"], 3,  # pragma: allowlist secret
     "AUTOOPS-PROMOTION-REQUIRED"),  # production takes deploys only through `promote`
    (["run", "deploy-rollback", "--env", "production", "-p", "app=app"], 4,
     "AUTOOPS-APPROVAL-REQUIRED"),
    (["run", "deploy", "--env", "production", "-p", "app=app", "-p", "revision=v1"], 2,
     "AUTOOPS-PARAM-INVALID"),  # a tag of a repository only the hosts can read
    (["run", "health", "--env", "local", "-p", "disk_max_percent=1"], 5,
     "AUTOOPS-PLAYBOOK-FAILED"),
])
def test_exit_statuses_and_error_codes(settings: Settings, argv: list[str], status: int,
                                       code: str) -> None:
    proc = run_script(settings, *argv, "--json")
    assert proc.returncode == status, proc.stdout + proc.stderr
    doc = one_json(proc)
    error = doc["error"]
    assert isinstance(error, dict)
    assert error["code"] == code
    assert error["remedy"]
    text = run_script(settings, *argv)
    assert f"error[{code}]" in text.stderr
    assert "remedy:" in text.stderr


def test_bad_input_writes_nothing(settings: Settings) -> None:
    (settings.project_dir / "catalog.yml").write_text("version: 1\nactions:\n  x: {colour: red}\n")
    proc = run_script(settings, "run", "health", "--env", "local")
    assert proc.returncode == 2
    assert "AUTOOPS-CATALOG-INVALID" in proc.stderr
    assert "catalog.yml:3:" in proc.stderr
    assert not settings.audit_path.exists()


def test_unreachable_is_status_6(settings: Settings, project: Path) -> None:
    localise(project, "staging")
    hosts = project / "inventories" / "staging" / "hosts.yml"
    hosts.write_text(hosts.read_text() + (
        "    ghost:\n      ansible_connection: ssh\n      ansible_host: 127.0.0.1\n"
        "      ansible_port: 1\n"))
    proc = run_script(settings, "run", "health", "--env", "staging")
    assert proc.returncode == ExitStatus.UNREACHABLE, proc.stdout + proc.stderr
    assert "UNREACHABLE" in proc.stdout
    assert "AUTOOPS-HOSTS-UNREACHABLE" in proc.stderr


def test_tampered_audit_fails_verify_naming_the_seq(settings: Settings) -> None:
    assert run_script(settings, "run", "health", "--env", "local").returncode == 0
    lines = settings.audit_path.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"actor":"', '"actor":"x', 1)
    settings.audit_path.write_text("".join(lines))
    proc = run_script(settings, "audit", "verify", "--json")
    assert proc.returncode == ExitStatus.INTERNAL_ERROR
    assert one_json(proc)["first_bad_seq"] == 2


def test_vm_safe_runs_one_host(settings: Settings) -> None:
    proc = run_script(settings, "health", "localhost", "--json", script="vm-safe")
    assert proc.returncode == 0, proc.stderr
    assert one_json(proc)["plan"]["hosts"] == ["localhost"]  # type: ignore[index]
    proc = run_script(settings, "health", "nohost", script="vm-safe")
    assert proc.returncode == 2


# -- a human at a terminal ---------------------------------------------------------------

def _run_on_terminal(settings: Settings, argv: list[str], typed: str) -> tuple[int, str]:
    terminal = Terminal([str(VENV_BIN / "autoops"), *argv], cli_env(settings))
    terminal.type(typed)
    return terminal.finish()


@pytest.mark.parametrize(("typed", "status"), [("production\n", 0), ("prod\n", 4),
                                                ("yes\n", 4)])
def test_typed_confirmation_on_a_terminal(settings: Settings, project: Path, tmp_path: Path,
                                          typed: str, status: int) -> None:
    localise(project, "production")
    backups = tmp_path / "prod-backups"
    set_vars(project, "production", autoops_backup_dir=str(backups))
    code, output = _run_on_terminal(settings, ["run", "backup", "--env", "production"], typed)
    assert code == status, output
    assert "Type the environment name (production)" in output
    assert "decision: APPROVAL_REQUIRED" in output
    made = list(backups.glob("*.tar.gz")) if backups.exists() else []
    assert len(made) == (1 if status == 0 else 0)
    decision = [r for r in records(settings) if r["type"] == "run.decision"][-1]
    assert decision["data"]["approval"]["satisfied"] is (status == 0)
    if status:
        assert "AUTOOPS-CONFIRMATION-MISMATCH" in output


def test_ctrl_c_at_the_prompt_leaves_and_is_audited(settings: Settings, project: Path) -> None:
    localise(project, "production")
    terminal = Terminal([str(VENV_BIN / "autoops"), "run", "backup", "--env", "production"],
                        cli_env(settings))
    proc = terminal.proc
    try:
        wait_for(lambda: b"Type the environment name" in terminal.seen, 60, "the prompt")
        proc.send_signal(signal.SIGINT)
    finally:
        terminal.finish(timeout=30)
    assert proc.returncode == ExitStatus.INTERRUPTED
    assert [r["type"] for r in records(settings)] == ["run.requested", "run.interrupted"]


# -- signals ---------------------------------------------------------------------------

def _start_sleep(settings: Settings, seconds: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([str(VENV_BIN / "autoops"), "run", "test-sleep", "--env", "local",
                             "-p", f"seconds={seconds}"], env=cli_env(settings),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for(lambda: any(r["type"] == "run.started" for r in records(settings)), 60,
             "run.started")
    run_id = next(r["run_id"] for r in records(settings) if r["type"] == "run.started")
    wait_for(lambda: subprocess.run(["pgrep", "-f", f"sleep {seconds}$"], check=False,
                                    capture_output=True).returncode == 0, 60, "the sleep task")
    return proc, run_id


def test_sigint_cancels_the_run_with_status_130(settings: Settings) -> None:
    proc, run_id = _start_sleep(settings, 413)
    try:
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == ExitStatus.INTERRUPTED, out + err
        assert time.monotonic() - started < 30
        types = [r["type"] for r in records(settings, run_id)]
        assert "run.interrupted" in types
        assert types[-1] == "run.finished"
        time.sleep(0.5)
        survivors = subprocess.run(["pgrep", "-f", "sleep 413$"], check=False,
                                   capture_output=True, text=True).stdout.split()
        assert survivors == [], "a worker of the cancelled run survived"
        assert run_script(settings, "audit", "verify").returncode == 0
        assert list(settings.runs_dir.iterdir()) == []
    finally:
        kill_matching("sleep 413$")


def test_kill_9_leaves_a_verifiable_log_and_is_recorded_next_start(settings: Settings) -> None:
    proc, run_id = _start_sleep(settings, 417)
    try:
        proc.kill()
        proc.communicate(timeout=30)
        verify = run_script(settings, "audit", "verify", "--json")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert one_json(verify)["ok"] is True
        recs = records(settings, run_id)
        assert recs[-1]["type"] == "run.interrupted"
        assert "ended without recording run.finished" in recs[-1]["data"]["reason"]
        assert list(settings.runs_dir.iterdir()) == []
        again = run_script(settings, "audit", "show", run_id)
        assert again.returncode == 0
        assert sum(r["type"] == "run.interrupted" for r in records(settings, run_id)) == 1
    finally:
        kill_matching("sleep 417$")


def test_audit_prune_reindex_and_verify_from_the_command_line(settings: Settings,
                                                               tmp_path: Path) -> None:
    """An old log in segments: prune archives and drops them, verify says from where."""
    import gzip

    from autoops.audit.log import AuditLog
    from autoops.state.db import StateDB

    old = AuditLog(settings.audit_path, StateDB(settings.db_path), segment_bytes=2000,
                   clock=lambda: "2026-01-05T10:00:00.000000Z")
    for i in range(40):
        old.append(run_id=f"old{i % 3}", type_="task.result", actor="a", env="local",
                   action="health", data={"i": i}, durable=i % 10 == 0)
    archive = tmp_path / "audit-2026-01.jsonl.gz"
    pruned = one_json(run_script(settings, "audit", "prune", "--before", "2026-02-01",
                                 "--archive", str(archive), "--json"))
    count = int(str(pruned["pruned"]))
    assert count > 0
    assert gzip.decompress(archive.read_bytes()).count(b"\n") == count
    again = run_script(settings, "audit", "prune", "--before", "2026-02-01",
                       "--archive", str(archive))
    assert again.returncode == ExitStatus.BAD_INPUT
    assert "exists already" in again.stderr
    verify = run_script(settings, "audit", "verify")
    assert verify.returncode == 0, verify.stderr
    assert f"from seq {int(str(pruned['through_seq'])) + 1}" in verify.stdout
    (settings.state_dir / "audit" / "index.sqlite").unlink()
    assert int(str(one_json(run_script(settings, "audit", "reindex", "--json"))["indexed"])) > 0
    shown = one_json(run_script(settings, "audit", "query", "--type", "audit.pruned", "--json"))
    assert len(shown["records"]) == 1  # type: ignore[arg-type]
