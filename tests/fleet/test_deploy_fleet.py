"""Deploys on the lab's hosts behind their Caddy: canary first, verified, rolled back for real.

Each host gets the demo app's repository (its own copy: separate filesystems); a
revision's files decide how the app behaves (HEALTH answers its probe, CRASH makes it
exit after its probe passed), so every bad revision is deployed, started and probed
through the proxy like a real one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoops.engine import Autoops, RunRequest
from autoops.errors import DeployRolledBackError
from autoops.exits import ExitStatus
from autoops.lab import manager
from autoops.settings import Settings
from tests.conftest import run_cli
from tests.fleet.conftest import Lab, lab_secrets
from tests.fleet.test_watch_fleet import get, ports
from tests.integration.conftest import commit_revision, git, wait_for
from tests.integration.receivers import Receiver, serving

pytestmark = pytest.mark.fleet
HOSTS = ("db1", "web1", "web2")


class Repo:
    """The demo app's source on the controller, copied to every lab host after each commit."""

    def __init__(self, lab: Lab, base: Path) -> None:
        self.lab, self.base = lab, base
        self.source = base / "src"
        self.good = ""
        self.source.mkdir()
        git("init", "-q", "-b", "main", cwd=self.source)

    def commit(self, version: str, **files: str) -> str:
        commit_revision(self.source, version, files)
        bare = self.base / f"demo-{version}.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(self.source), str(bare)], check=True)
        for host in HOSTS:
            self.lab.on_host(host, "sh", "-c", "mkdir -p /srv/git && rm -rf /srv/git/demo.git")
            self.lab.docker("cp", str(bare), f"autoops-lab-{host}:/srv/git/demo.git")
        return git("rev-parse", "HEAD", cwd=self.source)


def answers(lab: Lab, host: str) -> str:
    """What the app says through the host's Caddy."""
    port = ports(lab, host)["http"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as reply:
        return str(reply.read().decode())


def record(lab: Lab, host: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(lab.on_host(host, "cat", "/var/lib/autoops/deploy/demo.json"))
    return doc


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with serving() as server:
        yield server


@pytest.fixture(scope="module")
def deploying(lab: Lab, receiver: Receiver,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, Repo]]:
    """The lab with the demo repository, notifications, and deploys unattended in lab."""
    policy_file = lab.settings.project_dir / "policy.yml"
    saved = policy_file.read_text()
    policy = yaml.safe_load(saved)
    policy["environments"]["lab"]["unattended_max_risk"] = "HIGH"  # a script can deploy
    policy_file.write_text(yaml.safe_dump(policy))
    lab_secrets(lab)
    for name, value in (("notify_telegram_token", "4242:deploy-token"),
                        ("notify_telegram_chat_id", "5"),
                        ("notify_telegram_base_url", receiver.url)):
        assert run_cli(lab.settings, "secrets", "set", "--env", "lab", name,
                       stdin=value).status == ExitStatus.OK
    try:
        yield lab, Repo(lab, tmp_path_factory.mktemp("deploy-repo"))
    finally:
        policy_file.write_text(saved)


def deploy(lab: Lab, commit: str) -> Any:
    return Autoops(lab.settings).run(RunRequest("deploy", "lab", {"app": "demo",
                                                                  "revision": commit}))


def on_good(lab: Lab, repo: Repo) -> str:
    """Every host verified on v1 (deployed once per module)."""
    if not repo.good:
        repo.good = repo.commit("v1")
    result = deploy(lab, repo.good)
    assert result.status is ExitStatus.OK, [r for r in result.results if r["status"] == "failed"]
    return repo.good


def test_a_good_revision_verifies_and_a_bad_one_stops_at_the_canary(
        deploying: tuple[Lab, Repo], receiver: Receiver) -> None:
    lab, repo = deploying
    good = repo.commit("v1")
    repo.good = good
    first = deploy(lab, good)
    assert first.status is ExitStatus.OK, [r for r in first.results if r["status"] == "failed"]
    for host in HOSTS:
        assert f"on {host}, version v1" in answers(lab, host)
        assert record(lab, host)["current"]["commit"] == good
    assert get(ports(lab, "web1")["http"], 1) == [200]

    bad = repo.commit("v2", HEALTH="500")
    second = deploy(lab, bad)
    assert isinstance(second.error, DeployRolledBackError), second.results
    rollout = second.error.details["rollout"]
    canary = rollout["failed_host"]
    assert canary in HOSTS
    assert "last got 500" in rollout["output"]
    assert [r["host"] for r in rollout["returned"]] == [canary], "only the canary changed"
    assert sorted(second.error.details["untouched"]) == sorted(set(HOSTS) - {canary})
    for host in HOSTS:
        assert "version v1" in answers(lab, host), host
        mine = record(lab, host)
        assert mine["current"]["commit"] == good
        assert mine.get("failed", {}).get("commit") == (bad if host == canary else None)
        releases = lab.on_host(host, "ls", "/srv/apps/demo.releases").split()
        assert (bad in releases) is (host == canary), "the bad release never reached the rest"
    said = [t for t in receiver.texts() if "deploy rolled back" in t]
    assert len(said) == 1
    assert canary in said[0]


def test_a_revision_that_crash_loops_after_its_probe_is_rolled_back(
        deploying: tuple[Lab, Repo]) -> None:
    lab, repo = deploying
    on_good(lab, repo)
    looping = repo.commit("v3", CRASH="2")
    third = deploy(lab, looping)
    assert isinstance(third.error, DeployRolledBackError), third.results
    assert "restart loop" in third.error.message
    for host in HOSTS:
        assert "version v1" in answers(lab, host)


def test_kill_9_mid_deploy_then_the_next_deploy_leaves_every_host_verified(
        deploying: tuple[Lab, Repo]) -> None:
    lab, repo = deploying
    good = on_good(lab, repo)
    slow_bad = repo.commit("v4", HEALTH="503")
    script = ("import sys; from autoops.engine import Autoops, RunRequest; "
              "from autoops.settings import Settings; from pathlib import Path; "
              "s = Settings(project_dir=Path(sys.argv[1]), state_dir=Path(sys.argv[2]), "
              "os_user='tester', python=Path(sys.executable), search_path=sys.argv[3], "
              "cache_dir=Path(sys.argv[4]), config_dir=Path(sys.argv[5])); "
              "Autoops(s).run(RunRequest('deploy', 'lab', {'app': 'demo', 'revision': sys.argv[6]}))")
    settings: Settings = lab.settings
    proc = subprocess.Popen([sys.executable, "-c", script, str(settings.project_dir),
                             str(settings.state_dir), settings.search_path,
                             str(settings.cache_dir), str(settings.config_dir), slow_bad],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    switched = [""]

    def a_host_switched() -> bool:
        for host in HOSTS:
            link = lab.on_host(host, "readlink", "/srv/apps/demo").strip()
            if link.endswith(slow_bad):
                switched[0] = host
                return True
        return False

    wait_for(a_host_switched, 180, "a host on the new release")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(2)
    assert record(lab, switched[0])["pending"]["target"] == slow_bad, "killed mid-deploy"
    after = deploy(lab, good)
    assert after.status is ExitStatus.OK, [r for r in after.results if r["status"] == "failed"]
    for host in HOSTS:
        mine = record(lab, host)
        assert mine["pending"] is None
        assert mine["current"]["commit"] == good
        assert "version v1" in answers(lab, host)
        assert lab.on_host(host, "readlink", "/srv/apps/demo").strip().endswith(good)
    assert record(lab, switched[0])["recovered"]["commit"] == slow_bad
    assert manager.load_record(lab.paths) is not None
