"""Grants, two-person approval, change windows and the emergency stop, end to end.

Real ansible-runner runs of the test playbooks; times are injected through the
engine's clock (never the system clock), and the halt test stops a real playbook
and checks that no process of it survives.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoops.common.procs import descendants
from autoops.engine import Autoops, RunRequest
from autoops.errors import (
    ApprovalExpiredError,
    ApprovalPlanChangedError,
    ApprovalRejectedError,
    ApprovalRequiredError,
    ApprovalSelfError,
    ApprovalUsedError,
    AutoopsError,
    HaltedError,
    WindowClosedError,
)
from autoops.exits import ExitStatus
from autoops.settings import Settings
from autoops.state.db import StateDB
from tests.conftest import VENV_BIN, cli_env, run_cli, run_script
from tests.integration.conftest import records, wait_for

pytestmark = pytest.mark.integration

MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def strict_local(project: Path, **extra: Any) -> None:
    """local as production-like: LOW and up need a confirmation (and maybe more)."""
    path = project / "policy.yml"
    doc = yaml.safe_load(path.read_text())
    doc["environments"]["local"] = {"unattended_max_risk": "SAFE",
                                    "confirm_max_risk": "DESTRUCTIVE", **extra}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


class Clock:
    """A settable clock for the engine."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def hold(seconds: int = 1, **kw: Any) -> RunRequest:
    return RunRequest("test-hold", "local", {"seconds": str(seconds)}, **kw)


def refused(app: Autoops, request: RunRequest, kind: type[AutoopsError],
            confirm: Callable[..., str | None] | None = None) -> AutoopsError:
    with pytest.raises(kind) as err:
        app.run(request, confirm=confirm)
    return err.value


def typed(_plan: object, _decision: object) -> str:
    return "local"


# -- grants ---------------------------------------------------------------------------


def new_grant(settings: Settings, *extra: str, actions: str = "test-hold",
              expires: str = "1h") -> tuple[str, str]:
    made = run_cli(settings, "grant", "create", "--env", "local", "--actions", actions,
                   "--max-risk", "LOW", "--expires-in", expires, "--reason", "nightly job",
                   "--json", *extra)
    assert made.status == ExitStatus.OK, made.out + made.err
    doc = json.loads(made.out)
    return doc["grant"]["id"], doc["token"]


@pytest.fixture
def keyed(settings: Settings, project: Path) -> Settings:
    strict_local(project)
    keys = run_cli(settings, "grant", "init-keys", "--json")
    assert keys.status == ExitStatus.OK, keys.err
    return settings


def test_grant_keys_private_outside_the_repo_public_in_it(keyed: Settings) -> None:
    private = keyed.config_dir / "grants" / "local.key"
    assert private.stat().st_mode & 0o777 == 0o600
    assert private.parent.stat().st_mode & 0o777 == 0o700
    assert not private.is_relative_to(keyed.project_dir)
    assert (keyed.project_dir / "grant-keys" / "local.pub").read_text().startswith(
        "-----BEGIN PUBLIC KEY-----")
    again = run_cli(keyed, "grant", "init-keys", "--env", "local", "--json")
    assert json.loads(again.out)["keys"][0]["created"] is False  # idempotent
    private.unlink()  # a public key whose private key is elsewhere is never replaced
    lost = run_cli(keyed, "grant", "init-keys", "--env", "local")
    assert lost.status == ExitStatus.BAD_INPUT
    assert "AUTOOPS-GRANT-KEY" in lost.err


def test_a_grant_lets_a_confirmed_action_run_unattended_within_its_uses(keyed: Settings) -> None:
    assert run_script(keyed, "run", "test-hold", "--env", "local", "-p", "seconds=1"
                      ).returncode == ExitStatus.APPROVAL_REQUIRED
    grant_id, token = new_grant(keyed, "--uses", "2")
    for _ in range(2):
        ran = run_script(keyed, "run", "test-hold", "--env", "local", "-p", "seconds=1",
                         "--grant", token)
        assert ran.returncode == ExitStatus.OK, ran.stderr
    used = [r for r in records(keyed) if r["type"] == "grant.used"]
    assert [u["data"]["use"] for u in used] == [1, 2]
    assert {u["data"]["grant_id"] for u in used} == {grant_id}
    decision = [r for r in records(keyed) if r["type"] == "run.decision"][-1]
    assert decision["data"]["approval"]["method"] == f"grant:{grant_id}"
    assert token not in keyed.audit_path.read_text(), "the log names the grant, not its token"
    third = run_script(keyed, "run", "test-hold", "--env", "local", "-p", "seconds=1",
                       "--grant", grant_id)
    assert third.returncode == ExitStatus.DENIED
    assert "AUTOOPS-GRANT-EXHAUSTED" in third.stderr


@pytest.mark.parametrize(("argv", "code", "status"), [
    (["-p", "seconds=2"], "AUTOOPS-GRANT-SCOPE", ExitStatus.DENIED),  # seconds allowed: 1
    (["--limit", "localhost"], None, ExitStatus.OK),
])
def test_a_grant_covers_only_its_parameters(keyed: Settings, argv: list[str], code: str | None,
                                            status: ExitStatus) -> None:
    _gid, token = new_grant(keyed, "--param", "seconds=1", "--hosts", "local*")
    params = argv if "-p" in argv else ["-p", "seconds=1", *argv]
    ran = run_script(keyed, "run", "test-hold", "--env", "local", *params, "--grant", token)
    assert ran.returncode == status, ran.stderr
    if code:
        assert code in ran.stderr
        assert not [r for r in records(keyed) if r["type"] == "run.started"]


def test_forged_altered_revoked_and_out_of_scope_grants_are_refused(keyed: Settings) -> None:
    grant_id, token = new_grant(keyed)
    head, payload, sig = token.split(".")
    flipped = sig[:5] + ("A" if sig[5] != "A" else "B") + sig[6:]
    other_id, other = new_grant(keyed, actions="test-secret")
    cases = {
        f"{head}.{payload}.{flipped}": "AUTOOPS-GRANT-FORGED",
        f"{head}.{payload[:-4]}.{sig}": "AUTOOPS-GRANT-",
        "aog1.garbage": "AUTOOPS-GRANT-MALFORMED",
        "g-ffffffffffff": "AUTOOPS-GRANT-UNKNOWN",
        other: "AUTOOPS-GRANT-SCOPE",
    }
    for presented, code in cases.items():
        ran = run_cli(keyed, "run", "test-hold", "--env", "local", "-p", "seconds=1",
                      "--grant", presented)
        assert ran.status in {ExitStatus.DENIED, ExitStatus.BAD_INPUT}, presented
        assert code in ran.err, (presented, ran.err)
    revoked = run_cli(keyed, "grant", "revoke", grant_id, "--reason", "key leaked")
    assert revoked.status == ExitStatus.OK, revoked.err
    replay = run_cli(keyed, "run", "test-hold", "--env", "local", "-p", "seconds=1",
                     "--grant", token)
    assert replay.status == ExitStatus.DENIED
    assert "AUTOOPS-GRANT-REVOKED" in replay.err
    assert "key leaked" in replay.err
    listed = json.loads(run_cli(keyed, "grant", "list", "--json").out)["grants"]
    assert {g["id"]: g["state"] for g in listed} == {grant_id: "revoked", other_id: "active"}
    active = json.loads(run_cli(keyed, "grant", "list", "--active", "--json").out)["grants"]
    assert [g["id"] for g in active] == [other_id]
    assert not [r for r in records(keyed) if r["type"] == "run.started"], "nothing ran"
    assert {r["type"] for r in records(keyed)} >= {"grant.created", "grant.revoked"}


def test_an_expired_grant_is_refused(keyed: Settings) -> None:
    _gid, token = new_grant(keyed, expires="30m")
    later = Autoops(keyed, clock=lambda: datetime.now(UTC) + timedelta(minutes=31))
    err = refused(later, hold(grant=token), AutoopsError)
    assert err.code == "AUTOOPS-GRANT-EXPIRED"


@pytest.mark.parametrize(("option", "value"), [
    ("--expires-in", "2x"), ("--param", "service"), ("--hosts", "all:!db"),
    ("--max-risk", "EXTREME"), ("--reason", " "),
])
def test_bad_grant_options_are_bad_input_and_create_nothing(keyed: Settings, option: str,
                                                           value: str) -> None:
    args = {"--expires-in": "1h", "--max-risk": "LOW", "--reason": "x", option: value}
    bad = run_cli(keyed, "grant", "create", "--env", "local", "--actions", "test-hold",
                  *[part for pair in args.items() for part in pair])
    assert bad.status == ExitStatus.BAD_INPUT, bad.err
    assert "AUTOOPS-BAD-INPUT" in bad.err
    assert json.loads(run_cli(keyed, "grant", "list", "--json").out)["grants"] == []


def test_grant_lifetime_ceiling_shrinks_with_risk(keyed: Settings) -> None:
    too_long = run_cli(keyed, "grant", "create", "--env", "local", "--actions", "backup-prune",
                       "--max-risk", "DESTRUCTIVE", "--expires-in", "3h", "--reason", "x")
    assert too_long.status == ExitStatus.BAD_INPUT
    assert "AUTOOPS-GRANT-TTL" in too_long.err
    glass = run_cli(keyed, "grant", "create", "--env", "local", "--actions", "test-hold",
                    "--max-risk", "LOW", "--expires-in", "3h", "--break-glass", "--reason", "x")
    assert glass.status == ExitStatus.BAD_INPUT, "break-glass grants last at most 2 hours"
    assert run_cli(keyed, "grant", "create", "--env", "local", "--actions", "test-hold",
                   "--max-risk", "LOW", "--expires-in", "3h", "--reason", "x").status == 0


def test_revoking_a_grant_stops_a_run_waiting_for_a_lock(keyed: Settings) -> None:
    grant_id, token = new_grant(keyed, "--uses", "5")
    first = start(keyed, "run", "test-hold", "--env", "local", "-p", "seconds=60",
                  "--grant", token)
    db = StateDB(keyed.db_path)
    try:
        wait_for(lambda: bool(db.locks.held()), what="the first run to lock its hosts")
        second = start(keyed, "run", "test-hold", "--env", "local", "-p", "seconds=1",
                       "--grant", token, "--wait", "120")
        wait_for(lambda: sum(r["type"] == "run.requested" for r in records(keyed)) == 2,
                 what="the second run to queue")
        time.sleep(0.5)
        assert second.poll() is None, "it is waiting for the lock"
        assert run_cli(keyed, "grant", "revoke", grant_id, "--reason", "stop").status == 0
        _out, err = second.communicate(timeout=15)
        assert second.returncode == ExitStatus.DENIED, err
        assert "AUTOOPS-GRANT-REVOKED" in err
        assert first.poll() is None, "the run that already started is not affected"
    finally:
        first.terminate()
        first.communicate(timeout=60)


# -- two-person approval --------------------------------------------------------------


@pytest.fixture
def two_person(settings: Settings, project: Path) -> Settings:
    strict_local(project, two_person_min_risk="LOW", approval_expires_in="1h")
    return settings


def request_approval(app: Autoops, **kw: Any) -> str:
    err = refused(app, hold(actor="alice", **kw), ApprovalRequiredError)
    assert err.status == ExitStatus.APPROVAL_REQUIRED
    request_id = str(err.details["approval_request"])
    assert request_id in err.message
    return request_id


def test_two_person_approval_end_to_end(two_person: Settings) -> None:
    app = Autoops(two_person)
    request_id = request_approval(app)
    assert not [r for r in records(two_person) if r["type"] == "run.started"]
    pending = run_cli(two_person, "approvals", "list", "--pending", "--json")
    assert [r["id"] for r in json.loads(pending.out)["requests"]] == [request_id]
    own = run_cli(two_person, "approve", request_id, "--actor", "alice")
    assert own.status == ExitStatus.DENIED
    assert "AUTOOPS-APPROVAL-SELF" in own.err
    early = refused(app, hold(actor="alice", approval=request_id), AutoopsError, typed)
    assert early.code == "AUTOOPS-APPROVAL-PENDING"
    ok = run_cli(two_person, "approve", request_id, "--actor", "bob")
    assert ok.status == ExitStatus.OK, ok.err
    assert "APPROVED by bob" in ok.out
    changed = refused(app, hold(2, actor="alice", approval=request_id), ApprovalPlanChangedError,
                      typed)
    assert "params" in changed.message
    refused(app, hold(actor="bob", approval=request_id), ApprovalSelfError, typed)
    result = app.run(hold(actor="alice", approval=request_id), confirm=typed)
    assert result.status is ExitStatus.OK
    assert result.approval.method == f"second-person:{request_id}+typed-confirmation"
    refused(app, hold(actor="alice", approval=request_id), ApprovalUsedError, typed)
    kinds = [r["type"] for r in records(two_person)]
    assert "approval.requested" in kinds
    assert "approval.approved" in kinds


def test_a_rejected_or_expired_request_cannot_run(two_person: Settings) -> None:
    clock = Clock(datetime.now(UTC))
    app = Autoops(two_person, clock=clock)
    rejected = request_approval(app)
    no_reason = run_cli(two_person, "reject", rejected, "--actor", "bob")
    assert no_reason.status == ExitStatus.BAD_INPUT
    assert run_cli(two_person, "reject", rejected, "--actor", "bob", "--reason",
                   "not during the sale").status == 0
    err = refused(app, hold(actor="alice", approval=rejected), ApprovalRejectedError, typed)
    assert "not during the sale" in err.message
    expiring = request_approval(app)
    assert run_cli(two_person, "approve", expiring, "--actor", "bob").status == 0
    clock.now += timedelta(hours=1, seconds=1)
    refused(app, hold(actor="alice", approval=expiring), ApprovalExpiredError, typed)


def test_a_content_change_invalidates_the_approval(two_person: Settings, project: Path) -> None:
    app = Autoops(two_person)
    request_id = request_approval(app)
    assert run_cli(two_person, "approve", request_id, "--actor", "bob").status == 0
    playbook = project / "playbooks" / "test-sleep.yml"
    playbook.write_text(playbook.read_text() + "\n")
    err = refused(Autoops(two_person), hold(actor="alice", approval=request_id),
                  ApprovalPlanChangedError, typed)
    assert "content_digest" in err.message


# -- change windows -------------------------------------------------------------------


@pytest.fixture
def windowed(settings: Settings, project: Path) -> Settings:
    strict_local(project, windows={"timezone": "Europe/Berlin", "above": "SAFE", "weekly": [
        {"days": ["mon"], "start": "10:00", "end": "11:00"}]})
    run_cli(settings, "grant", "init-keys", "--env", "local")
    return settings


def test_outside_a_window_the_run_is_denied_with_the_next_opening(windowed: Settings) -> None:
    app = Autoops(windowed, clock=Clock(datetime(2026, 11, 22, 12, 0, tzinfo=UTC)))
    err = refused(app, hold(), WindowClosedError, typed)
    assert err.status == ExitStatus.DENIED
    assert "Mon 2026-11-23 10:00 Europe/Berlin" in err.message
    assert not [r for r in records(windowed) if r["type"] == "run.started"]


def test_a_window_closing_while_waiting_is_caught_before_execution(windowed: Settings) -> None:
    clock = Clock(datetime(2026, 11, 23, 9, 59, 59, tzinfo=UTC))  # 10:59:59 in Berlin

    def slow_operator(_plan: object, _decision: object) -> str:
        clock.now += timedelta(seconds=2)
        return "local"

    app = Autoops(windowed, clock=clock)
    err = refused(app, hold(), WindowClosedError, slow_operator)
    assert "before execution" in err.message
    assert not [r for r in records(windowed) if r["type"] == "run.started"]


def test_a_break_glass_grant_overrides_the_window_and_is_audited(windowed: Settings) -> None:
    app = Autoops(windowed, clock=Clock(datetime(2026, 11, 22, 12, 0, tzinfo=UTC)))  # Sunday
    made = app.grants.create(env="local", actions=["test-hold"], max_risk="LOW", hosts=None,
                            params=[], expires_in="1h", uses=1, break_glass=True,
                            reason="INC-42 disk full")
    grant_id = made["grant"]["id"]
    plain = app.grants.create(env="local", actions=["test-hold"], max_risk="LOW", hosts=None,
                             params=[], expires_in="1h", uses=1, break_glass=False,
                             reason="routine")
    refused(app, hold(grant=plain["token"]), WindowClosedError)
    result = app.run(hold(grant=made["token"]))
    assert result.status is ExitStatus.OK
    assert result.approval.method == f"break-glass:{grant_id}+grant:{grant_id}"
    decision = [r for r in records(windowed) if r["type"] == "run.decision"][-1]["data"]
    window = next(r for r in decision["decision"]["rules"] if r["rule"] == "window")
    assert "overridden by break-glass grant" in window["reason"]
    assert "INC-42" in window["reason"]
    assert decision["grant"]["break_glass"] is True


# -- emergency stop -------------------------------------------------------------------


def start(settings: Settings, *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen([str(VENV_BIN / "autoops"), *argv], env=cli_env(settings),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def sleepers(seconds: int) -> set[int]:
    """Processes running ``sleep SECONDS`` (the test playbook's long task)."""
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes() == \
                    f"sleep\0{seconds}\0".encode():
                found.add(int(proc.name))
        except OSError:
            continue
    return found


def test_halt_stops_a_running_playbook_and_blocks_new_runs(settings: Settings) -> None:
    run = start(settings, "run", "test-hold", "--env", "local", "-p", "seconds=87")
    wait_for(lambda: bool(sleepers(87)), what="the playbook's long task")
    seen = descendants(run.pid)
    assert sleepers(87) <= seen, "the task runs below the autoops process"
    halt = run_cli(settings, "halt", "--env", "local", "--reason", "INC-7 bad deploy", "--json")
    _out, err = run.communicate(timeout=30)
    assert halt.status == ExitStatus.OK, halt.err
    assert run.returncode == ExitStatus.HALTED, err
    assert "AUTOOPS-HALTED" in err
    doc = json.loads(halt.out)
    assert doc["runs_still_running"] == []  # halt waits for them (bench/halt.py measures it)
    assert len(doc["runs_stopped"]) == 1
    survivors = {pid for pid in seen if Path(f"/proc/{pid}").exists()
                 and (Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z")}
    assert not survivors, f"processes of the halted run survived: {survivors}"
    assert not sleepers(87)
    stopped = [r for r in records(settings) if r["type"] == "run.interrupted"]
    assert "INC-7 bad deploy" in stopped[-1]["data"]["reason"]
    assert stopped[-1]["data"]["halt"]["scope"] == "local"
    finished = [r for r in records(settings) if r["type"] == "run.finished"][-1]
    assert finished["data"]["exit_status"] == ExitStatus.HALTED

    blocked = run_script(settings, "run", "health", "--env", "local")
    assert blocked.returncode == ExitStatus.HALTED
    assert "INC-7 bad deploy" in blocked.stderr
    status = json.loads(run_cli(settings, "status", "--json").out)
    assert [h["scope"] for h in status["halts"]] == ["local"]
    assert "HALTED: local" in run_cli(settings, "status").out
    plan = run_cli(settings, "plan", "health", "--env", "local")
    assert plan.status == ExitStatus.DENIED
    assert "autoops resume --env local" in plan.out

    assert run_cli(settings, "resume", "--env", "local", "--reason", "fixed").status == 0
    assert run_script(settings, "run", "health", "--env", "local").returncode == ExitStatus.OK
    kinds = [r["type"] for r in records(settings)]
    assert kinds.count("halt.engaged") == 1
    assert kinds.count("halt.lifted") == 1


def test_a_global_halt_stops_every_environment_until_lifted_globally(settings: Settings) -> None:
    assert run_cli(settings, "halt", "--reason", "all stop").status == 0
    err = refused(Autoops(settings), RunRequest("health", "local"), HaltedError)
    assert "every environment" in err.message
    wrong = run_cli(settings, "resume", "--env", "local", "--reason", "x")
    assert wrong.status == ExitStatus.BAD_INPUT, "lifting local does not lift the global halt"
    assert run_cli(settings, "resume", "--reason", "ok").status == 0
    assert Autoops(settings).run(RunRequest("health", "local")).status is ExitStatus.OK


# -- visibility -----------------------------------------------------------------------


def test_policy_show_prints_the_effective_policy(settings: Settings) -> None:
    shown = run_cli(settings, "policy", "show", "--env", "production", "--json")
    doc = json.loads(shown.out)["environments"]
    assert list(doc) == ["production"]
    assert doc["production"]["two_person_min_risk"] == "CRITICAL"
    assert doc["production"]["grants"]["break_glass_max_expires_in"] == "2h"
    assert doc["production"]["origins"]["grants"] == "defaults"
    text = run_cli(settings, "policy", "show").out
    assert "second person from:   CRITICAL" in text
    assert run_cli(settings, "policy", "show", "--env", "nope").status == ExitStatus.BAD_INPUT


def test_plan_names_every_rule_and_what_would_satisfy_it(settings: Settings) -> None:
    planned = run_cli(settings, "plan", "backup-prune", "--env", "production", "-p", "keep=2")
    assert planned.status == ExitStatus.APPROVAL_REQUIRED
    for rule in ("halt", "freeze", "window", "risk-confirm", "two-person"):
        assert f"  - {rule}: " in planned.out
    assert "to satisfy: `autoops run` records a request" in planned.out
    assert "takes no typed confirmation above HIGH" in planned.out  # DESTRUCTIVE: a person
    typed = run_cli(settings, "plan", "backup", "--env", "production")
    assert typed.status == ExitStatus.APPROVAL_REQUIRED
    assert "to satisfy: type 'production' at the prompt, or --grant TOKEN" in typed.out
