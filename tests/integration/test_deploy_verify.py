"""Verified deploys on this machine: releases, the probe, restart loops, rollback, migrations.

The app is the lab's demo app (the same code) under a real supervisord, answering on a
loopback port; each revision's files decide how it behaves (HEALTH, CRASH), so a bad
revision is a real one, deployed and probed over HTTP.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoops.engine import Autoops, RunRequest
from autoops.errors import DeployRolledBackError, PromotionRefusedError
from autoops.exits import ExitStatus
from autoops.lab import image
from autoops.settings import Settings
from tests.conftest import VENV_BIN, cli_env, localise, run_cli, start_supervisord
from tests.integration.conftest import commit_revision, git, records, set_vars, wait_for
from tests.integration.receivers import Receiver

pytestmark = pytest.mark.integration


@dataclass
class Demo:
    source: Path
    dest: Path
    state: Path
    port: int
    supervisor: Path
    port_b: int

    def commit(self, version: str, **files: str) -> str:
        """A new revision: VERSION, plus HEALTH/CRASH/… files (others removed)."""
        commit_revision(self.source, version, files)
        git("push", "-q", "origin", "HEAD:main", cwd=self.source)
        return git("rev-parse", "HEAD", cwd=self.source)

    def answer(self, port: int | None = None) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port or self.port}/",
                                    timeout=5) as reply:
            return str(reply.read().decode())

    def record(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((self.state / "demo.json").read_text())
        return doc


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _app_config(dest: Path, service: str, port: int, tmp_path: Path) -> dict[str, Any]:
    return {"repo": str(tmp_path / "demo.git"), "dest": str(dest), "service": service,
            "settle": 4, "watch": False, "keep_releases": 3,
            "probe": {"url": f"http://127.0.0.1:{port}/up", "deadline": 6, "interval": 0.5},
            "migration": {"command": ["sh", "-c", (f"cat MIGRATE > {tmp_path}/schema "
                                                   "2>/dev/null || true")],
                          "marker": str(tmp_path / "schema")}}


@pytest.fixture
def demo(project: Path, tmp_path: Path) -> Iterator[Demo]:
    """The demo app from a bare repository, deployed to tmp/apps/demo, probed at /up.

    A second instance (autoops-demo-b, tmp/apps/demo-b) is what a test's production runs.
    """
    dest, dest_b = tmp_path / "apps" / "demo", tmp_path / "apps" / "demo-b"
    port, port_b = _free_port(), _free_port()
    programs = ""
    for name, where, on in (("autoops-demo", dest, port), ("autoops-demo-b", dest_b, port_b)):
        app_file = tmp_path / f"{name}.py"
        app_file.write_text(image.DEMO_APP.replace('"/srv/apps/demo"', repr(str(where))))
        programs += (f"[program:{name}]\ncommand={sys.executable} {app_file} {on}\n"
                     "startsecs=1\nautorestart=true\n")
    bare = tmp_path / "demo.git"
    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    source = tmp_path / "src"
    git("clone", "-q", str(bare), str(source), cwd=tmp_path)
    conf = start_supervisord(tmp_path / "sup", programs)
    (project / "inventories" / "local" / "host_vars" / "localhost.yml").write_text(
        f"---\nautoops_supervisor_config: {conf}\n")
    state = tmp_path / "deploy-state"
    set_vars(project, "local", autoops_deploy_state_dir=str(state), autoops_apps={
        "demo": _app_config(dest, "autoops-demo", port, tmp_path)})
    try:
        yield Demo(source, dest, state, port, conf, port_b)
    finally:
        subprocess.run([str(VENV_BIN / "supervisorctl"), "-c", str(conf), "shutdown"],
                       capture_output=True, check=False)


def deploy(app: Autoops, commit: str, env: str = "local") -> Any:
    return app.run(RunRequest("deploy", env, {"app": "demo", "revision": commit}))


def test_a_good_revision_is_a_verified_release_and_a_bad_one_goes_back(
        app: Autoops, settings: Settings, demo: Demo, receiver: Receiver) -> None:
    assert run_cli(settings, "secrets", "init", "--env", "local").status == ExitStatus.OK
    for name, value in (("notify_telegram_token", "555:deploy-token"),
                        ("notify_telegram_chat_id", "9"),
                        ("notify_telegram_base_url", receiver.url)):
        assert run_cli(settings, "secrets", "set", "--env", "local", name,
                       stdin=value).status == ExitStatus.OK
    good = demo.commit("v1")
    first = deploy(app, good)
    assert first.status is ExitStatus.OK, first.results
    assert "version v1" in demo.answer()
    assert demo.dest.is_symlink(), "a release, linked"
    assert demo.dest.resolve().name == good
    report = [r for r in first.reports["localhost"] if r["kind"] == "deploy"][-1]
    assert str(report["verified"]["probe"]) == "200"

    bad = demo.commit("v2", HEALTH="500")
    preview = app.run(RunRequest("deploy", "local", {"app": "demo", "revision": bad},
                                 check_mode=True))
    assert preview.status is ExitStatus.OK, [r for r in preview.results
                                             if r["status"] == "failed"]
    assert demo.dest.resolve().name == good, "check mode switched nothing"
    assert not (demo.dest.parent / "demo.releases" / bad).exists(), "and built nothing"
    assert demo.record()["pending"] is None
    second = deploy(app, bad)
    assert second.status is ExitStatus.PLAYBOOK_FAILED
    assert isinstance(second.error, DeployRolledBackError)
    message = second.error.message
    assert "probe GET" in message
    assert "last got 500" in message
    assert "version v2" in message
    assert f"returned localhost to {good[:12]}" in message
    assert "version v1" in demo.answer(), "the old release answers again"
    assert demo.dest.resolve().name == good
    record = demo.record()
    assert record["current"]["commit"] == good
    assert record["pending"] is None
    assert record["failed"]["commit"] == bad

    types = [r["type"] for r in records(settings, second.run_id)]
    assert types[-2:] == ["run.finished", "deploy.rolled_back"]
    finished = next(r for r in records(settings, second.run_id) if r["type"] == "run.finished")
    assert finished["data"]["error"]["code"] == "AUTOOPS-DEPLOY-ROLLED-BACK"
    texts = [t for t in receiver.texts() if "deploy rolled back" in t]
    assert len(texts) == 1
    assert "last got 500" in texts[0]
    assert "555:deploy-token" not in "".join(receiver.texts())
    rows = app.context.db.deploys.of_app("local", "demo")
    assert [(r.commit, r.outcome) for r in rows] == [(bad, "rolled_back"), (good, "verified")]


def test_a_revision_that_crash_loops_after_its_probe_passed_is_rolled_back(
        app: Autoops, demo: Demo) -> None:
    good = demo.commit("v1")
    assert deploy(app, good).status is ExitStatus.OK
    looping = demo.commit("v2", CRASH="2")
    result = deploy(app, looping)
    assert isinstance(result.error, DeployRolledBackError), result.results
    assert "restart loop" in result.error.message
    assert "version v1" in demo.answer()


def test_releases_are_kept_to_their_count_and_a_manual_rollback_is_verified(
        app: Autoops, demo: Demo) -> None:
    commits = [demo.commit(f"v{i}") for i in range(1, 5)]
    for commit in commits:
        assert deploy(app, commit).status is ExitStatus.OK
    releases = sorted(p.name for p in demo.dest.parent.glob("demo.releases/*")
                      if not p.name.startswith("."))
    assert len(releases) == 3, releases
    assert commits[0] not in releases
    back = app.run(RunRequest("deploy-rollback", "local", {"app": "demo"}))
    assert back.status is ExitStatus.OK, back.results
    assert "version v3" in demo.answer()
    assert demo.record()["current"]["commit"] == commits[2]


def test_a_rollback_across_a_forward_migration_needs_to_be_allowed(
        app: Autoops, demo: Demo, tmp_path: Path) -> None:
    first = demo.commit("v1", MIGRATE="1")
    assert deploy(app, first).status is ExitStatus.OK
    second = demo.commit("v2", MIGRATE="2", HEALTH="503")
    result = deploy(app, second)
    assert result.status is ExitStatus.PLAYBOOK_FAILED
    assert isinstance(result.error, DeployRolledBackError)
    assert "NOT returned" in result.error.message
    assert "migration marker went from" in (result.error.message + str(result.results))
    assert (tmp_path / "schema").read_text().strip() == "2"
    assert "version v2" in demo.answer(), "left on the new release, not silently returned"
    refused = app.run(RunRequest("deploy-rollback", "local", {"app": "demo"}))
    assert refused.status is ExitStatus.PLAYBOOK_FAILED
    allowed = app.run(RunRequest("deploy-rollback", "local",
                                 {"app": "demo", "allow_migration_rollback": "true"}))
    assert allowed.status is ExitStatus.OK, [r for r in allowed.results if r["status"] == "failed"]
    assert "version v1" in demo.answer()


def test_kill_9_mid_deploy_then_the_next_deploy_finds_a_verified_release(
        settings: Settings, app: Autoops, demo: Demo) -> None:
    good = demo.commit("v1")
    assert deploy(app, good).status is ExitStatus.OK
    bad = demo.commit("v2", HEALTH="500")
    proc = subprocess.Popen([str(VENV_BIN / "autoops"), "run", "deploy", "--env", "local",
                             "-p", "app=demo", "-p", f"revision={bad}"], env=cli_env(settings),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: demo.dest.resolve().name == bad, 120, "the switch to the bad release")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1)
    assert demo.record()["pending"]["target"] == bad, "killed before it could return"

    after = deploy(app, good)
    assert after.status is ExitStatus.OK, after.results
    record = demo.record()
    assert record["pending"] is None
    assert record["current"]["commit"] == good
    assert record["recovered"]["commit"] == bad
    assert "version v1" in demo.answer()


def test_promotion_is_refused_before_the_soak_and_allowed_after(
        settings: Settings, project: Path, demo: Demo, tmp_path: Path) -> None:
    """staging proves a commit; production takes it only after the soak and a watch."""
    policy = yaml.safe_load((project / "policy.yml").read_text())
    production = policy["environments"]["production"]
    production["promotion"] = {"from": "staging", "soak": "8s"}
    (project / "policy.yml").write_text(yaml.safe_dump(policy))
    app = Autoops(settings)
    for env, dest, service, port in (
            ("staging", demo.dest, "autoops-demo", demo.port),
            ("production", tmp_path / "apps" / "demo-b", "autoops-demo-b", demo.port_b)):
        localise(project, env)
        set_vars(project, env, autoops_supervisor_config=str(demo.supervisor),
                 autoops_deploy_state_dir=str(tmp_path / f"state-{env}"),
                 autoops_apps={"app": _app_config(dest, service, port, tmp_path)},
                 watch_disk_warning_percent=99, watch_disk_critical_percent=100,
                 watch_inode_warning_percent=99, watch_inode_critical_percent=100,
                 watch_load_warning_per_cpu=1000, watch_load_critical_per_cpu=2000,
                 watch_mem_warning_percent=100, watch_mem_critical_percent=100)
    good = demo.commit("v1")

    with pytest.raises(PromotionRefusedError, match="never deployed in staging"):
        app.deploys.promote("app", "staging", "production", None)
    staged = app.run(RunRequest("deploy", "staging", {"app": "app", "revision": good}),
                     confirm=lambda _p, _d: "staging")
    assert staged.status is ExitStatus.OK, staged.results
    with pytest.raises(PromotionRefusedError, match="soaked in staging for") as early:
        app.deploys.promote("app", "staging", "production", good,
                            confirm=lambda _p, _d: "production")
    assert early.value.details["promotion"]["deploy_run_id"] == staged.run_id
    run_id = early.value.details["run_id"]
    assert [r["type"] for r in records(settings, run_id)] == ["run.requested", "run.finished"]

    time.sleep(9)
    with pytest.raises(PromotionRefusedError, match="no watch of staging ran since"):
        app.deploys.promote("app", "staging", "production", None)
    refused = run_cli(settings, "promote", "app", "--from", "staging", "--to", "production",
                      "--revision", "main", "--evidence")
    assert refused.status == ExitStatus.DENIED, refused.out + refused.err
    assert "\n  refused: no watch of staging ran since the soak ended" in refused.out
    watched = run_cli(settings, "watch", "--env", "staging", "--json")
    assert json.loads(watched.out)["firing"] == [], watched.out
    evidence = run_cli(settings, "promote", "app", "--from", "staging", "--to", "production",
                       "--evidence", "--json")
    assert evidence.status == ExitStatus.OK, evidence.out
    assert json.loads(evidence.out)["promotion"]["commit"] == good

    promoted = app.deploys.promote("app", "staging", "production", None,
                                   confirm=lambda _p, _d: "production")
    assert promoted.status is ExitStatus.OK, promoted.results
    assert "version v1" in demo.answer(demo.port_b)
    assert promoted.to_dict()["promotion"]["deploy_run_id"] == staged.run_id
    kinds = [r["type"] for r in records(settings, promoted.run_id)]
    assert kinds.index("run.promotion") < kinds.index("run.decision") < kinds.index("run.started")
    proof = next(r for r in records(settings, promoted.run_id) if r["type"] == "run.promotion")
    assert proof["data"]["deploy_run_id"] == staged.run_id
    assert proof["data"]["from"] == "staging"
