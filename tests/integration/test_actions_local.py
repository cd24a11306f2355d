"""Every catalog action against this machine, acting on real files and processes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from autoops.common.procs import process_start_time
from autoops.engine import Autoops, RunRequest
from autoops.errors import LockedError, ParamInvalidError
from autoops.exits import ExitStatus
from autoops.guard import approvals
from autoops.settings import Settings
from autoops.state.locks import LockHolder
from tests.conftest import localise, supervisor_pid
from tests.integration.conftest import git, records, set_vars

pytestmark = pytest.mark.integration


def confirm_local(_plan: Any, _decision: Any) -> str:
    return "local"


def test_service_status_reports_the_pid(app: Autoops, supervisor: Path) -> None:
    result = app.run(RunRequest("service-status", "local", {"service": "autoops-demo"}))
    assert result.status is ExitStatus.OK, result.results
    report = result.reports["localhost"][-1]
    assert report["state"] == "RUNNING"
    assert int(report["pid"]) == supervisor_pid(supervisor)


def test_restart_service_gives_a_new_pid(app: Autoops, supervisor: Path,
                                         settings: Settings) -> None:
    before = supervisor_pid(supervisor)
    result = app.run(RunRequest("restart-service", "local", {"service": "autoops-demo"}))
    assert result.status is ExitStatus.OK, result.results
    after = supervisor_pid(supervisor)
    assert after != before
    report = result.reports["localhost"][-1]
    assert (int(report["pid_before"]), int(report["pid"])) == (before, after)
    changed = [r for r in records(settings, result.run_id)
               if r["type"] == "task.result" and r["data"]["status"] == "changed"]
    assert [r["data"]["task"] for r in changed] == ["Restart through supervisord"]


def test_restart_in_check_mode_restarts_nothing(app: Autoops, supervisor: Path) -> None:
    before = supervisor_pid(supervisor)
    result = app.run(RunRequest("restart-service", "local", {"service": "autoops-demo"},
                                check_mode=True))
    assert result.status is ExitStatus.OK, result.results
    assert supervisor_pid(supervisor) == before


def test_unknown_service_fails_the_play(app: Autoops, supervisor: Path) -> None:
    result = app.run(RunRequest("service-status", "local", {"service": "nope"}))
    assert result.status is ExitStatus.PLAYBOOK_FAILED
    assert result.error is not None
    assert result.error.code == "AUTOOPS-PLAYBOOK-FAILED"
    assert any("supervisord has no program nope" in (r["msg"] or "") for r in result.results)


def test_a_host_without_supervisord_says_so_in_plain_words(app: Autoops) -> None:
    """Tried as a new user would, before any supervisord is set up on the machine."""
    set_vars(app.settings.project_dir, "local",
             autoops_supervisor_config="/nonexistent/supervisord.conf")
    result = app.run(RunRequest("service-status", "local", {"service": "autoops-demo"}))
    assert result.status is ExitStatus.PLAYBOOK_FAILED
    (failed,) = [r for r in result.results if r["status"] == "failed"]
    assert failed["msg"].startswith(
        "supervisord is not set up on this host: no config file /nonexistent/supervisord.conf")
    assert "non-zero return code" not in failed["msg"]


def test_backup_writes_archive_manifest_and_checksum(app: Autoops, backup_dir: Path) -> None:
    result = app.run(RunRequest("backup", "local", {"label": "nightly"}))
    assert result.status is ExitStatus.OK, result.results
    archives = list(backup_dir.glob("backup-localhost-*-nightly.tar.gz"))
    assert len(archives) == 1
    check = subprocess.run(["sha256sum", "-c", f"{archives[0].name}.sha256"], cwd=backup_dir,
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    manifest = archives[0].with_name(archives[0].name.replace(".tar.gz", ".manifest.json"))
    text = manifest.read_text()
    assert '"etc/hostname"' in text
    assert oct(backup_dir.stat().st_mode & 0o777) == "0o700"
    assert oct(manifest.stat().st_mode & 0o777) == "0o600"
    assert result.reports["localhost"][-1]["kind"] == "backup"


def test_backup_in_check_mode_writes_nothing(app: Autoops, backup_dir: Path) -> None:
    backup_dir.mkdir(mode=0o700)
    result = app.run(RunRequest("backup", "local", check_mode=True))
    assert result.status is ExitStatus.OK, result.results
    assert list(backup_dir.iterdir()) == []


def test_prune_keeps_the_newest_and_needs_confirmation(app: Autoops, backup_dir: Path) -> None:
    for label in ("one", "two", "three"):
        assert app.run(RunRequest("backup", "local", {"label": label})).status is ExitStatus.OK
    newest = max(backup_dir.glob("*.tar.gz"))
    result = app.run(RunRequest("backup-prune", "local", {"keep": "1"}), confirm=confirm_local)
    assert result.status is ExitStatus.OK, result.results
    assert sorted(p.name for p in backup_dir.iterdir()) == sorted([
        newest.name, f"{newest.name}.sha256",
        newest.name.replace(".tar.gz", ".manifest.json")])
    assert result.approval.method == "typed-confirmation"


def demo_app(project: Path, tmp_path: Path, versions: list[str], *, tag_each: bool,
             tags: dict[str, str] | None = None) -> tuple[Path, Path, Path]:
    """A git repository with one commit per version, its bare clone as the demo app's repo."""
    source = tmp_path / "src"
    source.mkdir()
    git("init", "-q", "-b", "main", cwd=source)
    for version in versions:
        (source / "VERSION").write_text(version)
        git("add", "VERSION", cwd=source)
        git("commit", "-q", "-m", version, cwd=source)
        if tag_each:
            git("tag", version, cwd=source)
    for tag, commit in (tags or {}).items():
        git("tag", tag, commit, cwd=source)
    bare = tmp_path / "demo.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(bare)], check=True)
    dest = tmp_path / "apps" / "demo"
    set_vars(project, "local", autoops_deploy_state_dir=str(tmp_path / "deploy-state"),
             autoops_apps={"demo": {"repo": str(bare), "dest": str(dest),
                                    "service": "autoops-demo", "settle": 1,
                                    "watch": False}})
    return source, bare, dest


def test_deploy_and_roll_back(app: Autoops, project: Path, supervisor: Path,
                              tmp_path: Path) -> None:
    source, _bare, dest = demo_app(project, tmp_path, ["v1", "v2"], tag_each=True)
    sha = {v: git("rev-parse", v, cwd=source) for v in ("v1", "v2")}

    first = app.run(RunRequest("deploy", "local", {"app": "demo", "revision": "v1"}))
    assert first.status is ExitStatus.OK, first.results
    assert (dest / "VERSION").read_text() == "v1"
    pid_v1 = supervisor_pid(supervisor)

    second = app.run(RunRequest("deploy", "local", {"app": "demo", "revision": "v2"}))
    assert second.status is ExitStatus.OK, second.results
    assert (dest / "VERSION").read_text() == "v2"
    assert supervisor_pid(supervisor) != pid_v1

    same = app.run(RunRequest("deploy", "local", {"app": "demo", "revision": "v2"}))
    assert not any(r["changed"] for r in same.results), "a no-op deploy must not restart"

    back = app.run(RunRequest("deploy-rollback", "local", {"app": "demo"}))
    assert back.status is ExitStatus.OK, back.results
    assert (dest / "VERSION").read_text() == "v1"
    state = (tmp_path / "deploy-state" / "demo.json").read_text()
    assert sha["v1"] in state
    assert sha["v2"] in state
    deploy_reports = [r for r in back.reports["localhost"] if r["kind"] == "deploy"]
    assert deploy_reports[-1]["revision"] == sha["v1"]


def test_rollback_without_history_fails_clearly(app: Autoops, project: Path,
                                                tmp_path: Path) -> None:
    set_vars(project, "local", autoops_deploy_state_dir=str(tmp_path / "empty-state"))
    result = app.run(RunRequest("deploy-rollback", "local", {"app": "demo"}))
    assert result.status is ExitStatus.PLAYBOOK_FAILED
    assert any("no previous revision" in (r["msg"] or "") for r in result.results)


def test_disk_report_lists_the_largest_directories(app: Autoops, tmp_path: Path) -> None:
    root = tmp_path / "tree"
    (root / "big").mkdir(parents=True)
    (root / "big" / "blob").write_bytes(b"x" * 300_000)
    (root / "small").mkdir()
    (root / "tiny").mkdir()
    result = app.run(RunRequest("disk-report", "local", {"path": str(root), "top": "2"}))
    assert result.status is ExitStatus.OK, result.results
    report = result.reports["localhost"][-1]
    assert report["kind"] == "disk"
    assert report["largest"][0]["path"] == str(root / "big")
    assert len(report["largest"]) == 2


def test_unreachable_host_is_reported_and_the_others_complete(
        app: Autoops, project: Path, settings: Settings) -> None:
    localise(project, "staging")
    hosts = project / "inventories" / "staging" / "hosts.yml"
    # A closed port on loopback: a real connection attempt that fails, nothing leaves the machine.
    hosts.write_text(hosts.read_text() + (
        "    ghost:\n      ansible_connection: ssh\n      ansible_host: 127.0.0.1\n"
        "      ansible_port: 1\n      ansible_user: nobody\n"))
    result = app.run(RunRequest("health", "staging"))
    assert result.status is ExitStatus.UNREACHABLE
    assert result.stats["ghost"]["dark"] == 1
    assert result.stats["staging-box"].get("failures", 0) == 0
    assert result.reports["staging-box"]
    unreachable = [r for r in records(settings, result.run_id)
                   if r["type"] == "task.result" and r["data"]["status"] == "unreachable"]
    assert [r["data"]["host"] for r in unreachable] == ["ghost"]


def test_a_deploy_tag_is_pinned_to_its_commit_when_planned(
        app: Autoops, project: Path, supervisor: Path, tmp_path: Path) -> None:
    """What is approved is a commit: moving the tag afterwards changes the plan."""
    source, bare, dest = demo_app(project, tmp_path, ["one", "two"], tag_each=False,
                                  tags={"release": "HEAD~1"})
    first = git("rev-parse", "release", cwd=source)
    request = RunRequest("deploy", "local", {"app": "demo", "revision": "release"})
    planned, _decision = app.plan(request)
    assert planned.resolved.params["revision"] == first
    assert planned.to_dict()["pinned"] == {"revision": {"given": "release", "commit": first}}
    git("tag", "-f", "release", "main", cwd=bare)  # the tag moves after the plan
    moved, _ = app.plan(request)
    assert moved.resolved.params["revision"] == git("rev-parse", "main", cwd=source)
    assert approvals.plan_digest(moved) != approvals.plan_digest(planned)
    result = app.run(request)
    assert result.status is ExitStatus.OK, result.results
    assert (dest / "VERSION").read_text() == "two"
    unknown = RunRequest("deploy", "local", {"app": "demo", "revision": "no-such-tag"})
    with pytest.raises(ParamInvalidError, match="not a tag or branch"):
        app.plan(unknown)


def test_one_deploy_of_an_app_at_a_time_whatever_hosts_it_targets(
        app: Autoops, project: Path, supervisor: Path, tmp_path: Path) -> None:
    demo_app(project, tmp_path, ["v1"], tag_each=True)
    other = LockHolder(run_id="r-other-deploy", actor="bob", pid=os.getpid(),
                       pid_start=process_start_time(os.getpid()) or "", acquired="now")
    live, _stale = app.context.db.locks.try_lock("local", ["app demo"], other,
                                                 lambda _h: True, addresses=["app:local:demo"])
    assert live == []
    plan, _decision = app.plan(RunRequest("deploy", "local", {"app": "demo", "revision": "v1"}))
    (held,) = app.runs.lock_view(plan)["held_by"]
    assert (held["run_id"], held["hosts"]) == ("r-other-deploy", ["app demo"])
    with pytest.raises(LockedError, match="r-other-deploy"):
        app.run(RunRequest("deploy-rollback", "local", {"app": "demo"}))
    assert not (tmp_path / "deploy-state" / "demo.json").exists(), "nothing ran"
    app.context.db.locks.unlock("r-other-deploy")
    done = app.run(RunRequest("deploy", "local", {"app": "demo", "revision": "v1"}))
    assert done.status is ExitStatus.OK, done.results
    assert app.context.db.locks.held() == [], "the app lock goes with the run"
