"""The guarded run path end to end on this machine, through real ansible-runner."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from autoops.common.procs import RUN_MARK
from autoops.engine import Autoops, RunRequest
from autoops.errors import (
    ApprovalRequiredError,
    LimitNoHostsError,
    ParamInvalidError,
    PolicyDeniedError,
    PromotionRequiredError,
)
from autoops.exits import ExitStatus
from autoops.settings import Settings
from tests.integration.conftest import records

pytestmark = pytest.mark.integration


def test_health_records_the_whole_sequence(app: Autoops, settings: Settings) -> None:
    result = app.run(RunRequest("health", "local", actor="alice"))
    assert result.status is ExitStatus.OK
    recs = records(settings, result.run_id)
    types = [r["type"] for r in recs]
    assert types[:3] == ["run.requested", "run.decision", "run.started"]
    assert types[-1] == "run.finished"
    assert set(types[3:-1]) == {"task.result"}
    tasks = [r["data"]["task"] for r in recs if r["type"] == "task.result"]
    assert "Read uptime, load, memory and disks" in tasks
    assert all(r["data"]["host"] == "localhost" for r in recs if r["type"] == "task.result")
    assert {r["actor"] for r in recs} == {"alice"}
    assert recs[0]["data"]["os_user"] == "tester"
    assert recs[1]["data"]["decision"]["rule"] == "risk-unattended"
    assert recs[-1]["data"]["stats"]["localhost"]["ok"] >= 2
    report = result.reports["localhost"][0]
    assert report["kind"] == "health"
    assert report["mounts"]
    assert app.audit.verify().ok
    assert list(settings.runs_dir.iterdir()) == []


FORBIDDEN = {"env/extravars", "env/envvars", "env/cmdline", "env/passwords", "env/ssh_key",
             "artifacts/run/stdout", "artifacts/run/command"}


def test_private_data_dir_leaves_nothing_behind(app: Autoops, settings: Settings) -> None:
    seen: list[dict[str, Any]] = []

    def look(_result: dict[str, Any]) -> None:
        dirs = list(settings.runs_dir.iterdir())
        files = sorted(str(p.relative_to(dirs[0])) for p in dirs[0].rglob("*") if p.is_file())
        seen.append({"dirs": dirs, "mode": stat.S_IMODE(dirs[0].stat().st_mode), "files": files})

    result = app.run(RunRequest("health", "local"), on_result=look)
    assert result.status is ExitStatus.OK
    assert seen
    for snapshot in seen:
        assert len(snapshot["dirs"]) == 1
        assert snapshot["mode"] == 0o700
        # runner's callback plugin hands each event over in a transient *-partial.json that
        # runner reads and deletes; full event files are only written if a handler keeps them
        leaked = [f for f in snapshot["files"] if f in FORBIDDEN or (
            "job_events" in f and not f.endswith(("-partial.json", "-partial.json.tmp")))]
        assert leaked == [], leaked
    assert list(settings.runs_dir.iterdir()) == []


HOSTILE = [
    "{{ lookup('pipe', 'touch MARK1') }}",
    "{% for x in [1] %}{{ lookup('ansible.builtin.pipe', 'touch MARK2') }}{% endfor %}",
    "$(touch MARK3)",
    "'; touch MARK4; echo '",
    "`touch MARK5`",
    "{{ query('pipe', 'touch MARK6') }}\n{# c #}",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_parameters_are_never_templated_or_run_by_a_shell(app: Autoops, tmp_path: Path,
                                                           text: str) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    text = text.replace("MARK", str(marks / "m"))
    dest = tmp_path / "out.txt"
    result = app.run(RunRequest("test-echo", "local", {"text": text, "dest": str(dest)}))
    assert result.status is ExitStatus.OK, result.results
    assert list(marks.iterdir()) == []
    assert dest.read_text() == text
    assert Path(f"{dest}.shell").read_text() == text
    assert Path(f"{dest}.argv").read_text() == text


def test_denied_run_is_audited_and_runs_nothing(app: Autoops, settings: Settings) -> None:
    with pytest.raises(PolicyDeniedError) as err:
        app.run(RunRequest("test-echo", "production", {"text": "x", "dest": "/tmp/x"}))
    run_id = err.value.details["run_id"]
    recs = records(settings, run_id)
    assert [r["type"] for r in recs] == ["run.requested", "run.decision", "run.finished"]
    assert recs[1]["data"]["decision"]["rule"] == "action-env"
    assert recs[2]["data"]["status"] == "denied"


def _run_workers() -> list[int]:
    """This process's children carrying a run's mark: the workers it started."""
    needle, found = f"{RUN_MARK}=".encode(), []
    for entry in Path("/proc").iterdir():
        try:
            stat_line = (entry / "stat").read_text()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        parent = int(stat_line.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and any(v.startswith(needle) for v in environ.split(b"\0")):
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("request_", [
    RunRequest("test-echo", "production", {"text": "x", "dest": "/tmp/x"}),  # denied
    RunRequest("test-echo", "local", {"text": "x", "nope": 1}),  # no plan: a bad parameter
], ids=["denied", "bad-parameter"])
def test_a_refused_run_leaves_no_worker_behind(app: Autoops, settings: Settings,
                                               request_: RunRequest) -> None:
    """The worker starts before the run is decided; a refusal ends it, sent nothing."""
    assert _run_workers() == []
    with pytest.raises((PolicyDeniedError, ParamInvalidError)):
        app.run(request_)
    assert _run_workers() == []
    assert list(settings.runs_dir.iterdir()) == []


def test_approval_without_a_terminal_runs_nothing(app: Autoops, settings: Settings) -> None:
    with pytest.raises(ApprovalRequiredError) as err:
        app.run(RunRequest("deploy-rollback", "production", {"app": "app"}))
    recs = records(settings, err.value.details["run_id"])
    assert [r["type"] for r in recs] == ["run.requested", "run.decision", "run.finished"]
    assert recs[1]["data"]["approval"]["satisfied"] is False


def test_a_direct_deploy_to_production_is_refused_before_any_decision(
        app: Autoops, settings: Settings) -> None:
    # a tag could not be pinned: see below
    commit = "0123456789abcdef0123456789abcdef01234567"  # pragma: allowlist secret
    with pytest.raises(PromotionRequiredError, match="promotion gate from staging") as err:
        app.run(RunRequest("deploy", "production", {"app": "app", "revision": commit}))
    assert "autoops promote APP --from staging --to production" in err.value.remedy
    recs = records(settings, err.value.details["run_id"])
    assert [r["type"] for r in recs] == ["run.requested", "run.finished"]
    assert recs[1]["data"]["error"]["code"] == "AUTOOPS-PROMOTION-REQUIRED"
    with pytest.raises(PromotionRequiredError):
        app.plan(RunRequest("deploy", "production", {"app": "app", "revision": commit}))
    preview, _decision = app.plan(RunRequest("deploy", "production", {
        "app": "app", "revision": commit}, check_mode=True))
    assert preview.check_mode, "a check-mode preview is not a deploy: no gate"


def test_a_tag_for_a_repository_the_controller_cannot_read_is_refused(app: Autoops) -> None:
    """The example production repos live on the hosts: nothing here can pin "v1"."""
    with pytest.raises(ParamInvalidError, match="cannot be pinned") as err:
        app.plan(RunRequest("deploy", "production", {"app": "app", "revision": "v1"}))
    assert "full commit id" in err.value.remedy


def test_confirmation_must_match_exactly(app: Autoops, settings: Settings) -> None:
    asked: list[str] = []

    def confirm(plan: Any, _decision: Any) -> str:
        asked.append(plan.env)
        return "Production"

    with pytest.raises(ApprovalRequiredError) as err:
        app.run(RunRequest("restart-service", "production", {"service": "nginx"}),
                confirm=confirm)
    assert err.value.code == "AUTOOPS-CONFIRMATION-MISMATCH"
    assert asked == ["production"]
    assert "run.started" not in [r["type"] for r in records(settings)]


def test_limit_that_matches_nothing_is_bad_input(app: Autoops, settings: Settings) -> None:
    with pytest.raises(LimitNoHostsError):
        app.run(RunRequest("health", "local", limit="$(id)"))
    assert not settings.audit_path.exists()


def test_interrupted_runs_are_recovered(app: Autoops, settings: Settings) -> None:
    from autoops.state.runs import RunRow

    dead = os.fork()
    if dead == 0:  # pragma: no cover - child
        os._exit(0)
    os.waitpid(dead, 0)
    app.context.db.runs.register(RunRow("ghost-run", dead, "123", "local", "health", "bob", "t",
                               "running", None))
    (settings.runs_dir / "ghost-run.xyz").mkdir(parents=True)
    assert app.recovery.recover() == ["ghost-run"]
    recs = records(settings, "ghost-run")
    assert [r["type"] for r in recs] == ["run.interrupted"]
    assert recs[0]["actor"] == "bob"
    assert not (settings.runs_dir / "ghost-run.xyz").exists()
    assert app.recovery.recover() == []
