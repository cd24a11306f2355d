"""Execution nodes: runs of the lab's environment through a lab node (ansible-runner worker
over SSH), with the node holding nothing and keeping nothing of a run."""

from __future__ import annotations

import secrets
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from autoops.engine import Autoops, RunRequest, RunResult
from autoops.errors import NodeFailedError
from autoops.exits import ExitStatus
from autoops.guard import grants
from autoops.lab import nodes as lab_nodes
from autoops.run import runner
from tests.conftest import REPO, VENV_BIN, cli_env, run_cli
from tests.fleet.conftest import Lab, lab_secrets
from tests.integration.conftest import records, sent_specs, wait_for

pytestmark = pytest.mark.fleet
NODE = "autoops-lab-node1"
# What a run leaves running on the node, if anything does.
RUN_PROCESSES = ("ansible", "autoops.run.runner", "ssh-agent", "ssh ", "sleep")


@pytest.fixture(scope="module")
def node(lab: Lab) -> Iterator[Path]:
    app = Autoops(lab.settings)
    lab_nodes.add(lab.paths, 1, REPO, app.context.node_trust("lab"), print)
    try:
        yield lab_nodes.nodes_file(lab.paths)
    finally:
        lab_nodes.remove(lab.paths, print)


@pytest.fixture
def app(lab: Lab, node: Path) -> Autoops:
    return Autoops(lab.settings)


def on_node(lab: Lab, *argv: str) -> str:
    return lab.docker("exec", "-u", "autoops", NODE, *argv, check=False)


def run_processes(lab: Lab) -> list[str]:
    listing = lab.docker("exec", NODE, "ps", "-eo", "user,args", "--no-headers")
    return [line for line in listing.splitlines()
            if line.startswith("autoops") and any(p in line for p in RUN_PROCESSES)]


def shape(lab: Lab, run_id: str) -> tuple[list[str], Counter[tuple[str, str, str]]]:
    """A run's record types in order, and its task results (host, task, status)."""
    run = records(lab.settings, run_id)
    return ([r["type"] for r in run],
            Counter((r["data"]["host"], r["data"]["task"], r["data"]["status"])
                    for r in run if r["type"] == "task.result"))


def test_nodes_check_finds_the_node_ready(app: Autoops, lab: Lab) -> None:
    done = run_cli(lab.settings, "nodes", "check", "--env", "lab", "--json")
    assert done.status == ExitStatus.OK, done.out + done.err
    assert '"ok": true' in done.out
    name = "/home/autoops/.config/autoops/node-trust/lab.name"
    on_node(lab, "sh", "-c", f"echo node9 > {name}")
    try:
        wrong = run_cli(lab.settings, "nodes", "check", "--env", "lab", "--json")
    finally:
        on_node(lab, "sh", "-c", f"echo node1 > {name}")
    assert wrong.status == ExitStatus.UNREACHABLE, wrong.out + wrong.err
    assert "it answers to node9 for lab, not node1" in wrong.out


def test_the_controllers_key_runs_the_node_verbs_and_nothing_else(lab: Lab, node: Path) -> None:
    declared = yaml.safe_load(node.read_text())["nodes"][0]
    ssh = ["ssh", "-T", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={declared['known_hosts']}",
           "-i", declared["identity_file"], "-p", str(declared["port"]), "autoops@127.0.0.1"]
    shell = subprocess.run([*ssh, "id"], capture_output=True, text=True, timeout=60, check=False)
    assert shell.returncode == 2
    assert "may only run autoops.node" in shell.stderr
    asked = subprocess.run([*ssh, "/usr/bin/python3 -I -m autoops.node info"],
                           capture_output=True, text=True, timeout=60, check=False)
    assert asked.returncode == 0, asked.stderr
    assert '"forced_command": true' in asked.stdout


def test_a_run_through_the_node_gives_the_records_of_a_local_run(
        app: Autoops, lab: Lab, node: Path) -> None:
    through = app.run(RunRequest("health", "lab"))
    assert through.status is ExitStatus.OK, through.results
    assert through.node == "node1"
    aside = node.with_suffix(".aside")
    node.rename(aside)
    try:
        here = app.run(RunRequest("health", "lab"))
    finally:
        aside.rename(node)
    assert here.status is ExitStatus.OK, here.results
    assert here.node is None
    assert shape(lab, through.run_id) == shape(lab, here.run_id)
    started = {r["run_id"]: r["data"] for r in records(lab.settings)
               if r["type"] == "run.started"}
    assert started[through.run_id]["node"] == "node1"
    assert started[here.run_id]["node"] is None
    assert all(r["actor"] == "tester" for r in records(lab.settings, through.run_id))
    assert run_processes(lab) == []


def test_the_node_decrypts_with_a_lent_key_and_keeps_no_secret(app: Autoops, lab: Lab) -> None:
    lab_secrets(lab)
    canary = f"node-canary-{secrets.token_hex(8)}"
    app.secrets.set("lab", "canary_secret", canary)
    dest = f"/tmp/canary-{secrets.token_hex(4)}"
    result = app.run(RunRequest("test-secret", "lab", {"dest": dest}, limit="web1"))
    assert result.status is ExitStatus.OK, result.results
    assert result.node == "node1"
    assert lab.on_host("web1", "cat", dest) == canary, "decrypted on the node, delivered"
    key = (lab.settings.config_dir / "age" / "lab.txt").read_text()
    age_secret = next(line for line in key.splitlines() if line.startswith("AGE-SECRET-KEY"))
    body = lab.paths.key.read_text().splitlines()[1:-1]  # the lent identity, past the
    lab_key = body[-2][-40:]  # common openssh-key-v1 header, in its key material
    for needle in (canary, age_secret, lab_key):
        found = lab.docker("exec", NODE, "grep", "-rlF", "--exclude-dir=proc",
                           "--exclude-dir=sys", "--exclude-dir=dev", needle, "/", check=False)
        assert found.strip() == "", f"left on the node: {found}"
    assert canary not in (lab.settings.audit_path.read_text())
    assert on_node(lab, "ls", "/home/autoops/.local/state/autoops-node").strip() == ""


def test_a_halt_during_a_node_run_leaves_no_process_on_the_node(app: Autoops, lab: Lab) -> None:
    done: list[RunResult] = []
    thread = threading.Thread(target=lambda: done.append(
        app.run(RunRequest("test-sleep", "lab", {"seconds": 300}))))
    thread.start()
    try:
        wait_for(lambda: any("ansible-playbook" in p for p in run_processes(lab)), 120,
                 "the playbook on the node")
        wait_for(lambda: any("Sleep for a while" in str(r.get("data", {}).get("task", ""))
                             or r["type"] == "run.started" for r in records(lab.settings)),
                 60, "the run to start")
        time.sleep(2)  # well into the sleep task
        app.stop.halt("lab", "testing a node run's halt")
        thread.join(120)
    finally:
        app.stop.resume("lab", "test over")
    assert done, "the run did not end"
    result = done[0]
    assert result.status is ExitStatus.HALTED
    assert result.error is not None
    assert result.error.code == "AUTOOPS-HALTED"
    types = [r["type"] for r in records(lab.settings, result.run_id)]
    assert types[-2:] == ["run.interrupted", "run.finished"]
    wait_for(lambda: run_processes(lab) == [], 30, "the node to be empty")
    assert on_node(lab, "ls", "/home/autoops/.local/state/autoops-node").strip() == ""


def test_autoops_killed_outright_leaves_nothing_running_on_the_node(app: Autoops,
                                                                   lab: Lab) -> None:
    """kill -9 of autoops: its run worker gets the parent-death signal and ends the session."""
    proc = subprocess.Popen([str(VENV_BIN / "autoops"), "run", "test-sleep", "--env", "lab",
                             "-p", "seconds=300", "--limit", "web1"], env=cli_env(lab.settings),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: any("ansible-playbook" in p for p in run_processes(lab)), 120,
                 "the playbook on the node")
    finally:
        proc.kill()
        proc.wait()
    wait_for(lambda: run_processes(lab) == [], 60, "the node to be empty")
    assert on_node(lab, "ls", "/home/autoops/.local/state/autoops-node").strip() == ""
    # the next command finds the run killed and records its end
    app.recovery.recover()
    run_id = max(r["run_id"] for r in records(lab.settings) if r["action"] == "test-sleep"
                 and r["type"] == "run.started")
    assert records(lab.settings, run_id)[-1]["type"] in {"run.interrupted", "run.finished"}


def test_a_node_refuses_a_run_signed_by_a_key_it_does_not_trust(
        app: Autoops, lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    stranger = grants.generate_keypair()[0]
    monkeypatch.setattr(app.context, "node_key", lambda _env: stranger)
    before = {r["run_id"] for r in records(lab.settings)}
    with pytest.raises(NodeFailedError, match="refused the job: its ticket is not"):
        app.run(RunRequest("health", "lab"))
    run_id = next(r["run_id"] for r in records(lab.settings) if r["run_id"] not in before)
    assert "task.result" not in [r["type"] for r in records(lab.settings, run_id)]
    assert run_processes(lab) == []


def test_a_replayed_node_job_is_refused(app: Autoops, lab: Lab,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    sent, real = sent_specs(monkeypatch)
    first = app.run(RunRequest("health", "lab", limit="web1"))
    assert first.status is ExitStatus.OK, first.results
    seen: list[runner.HostResult] = []
    with pytest.raises(NodeFailedError, match="ran here before"):
        real(sent[0], seen.append)  # the very same job, ticket and all, sent once more
    assert seen == []


def test_a_node_without_ssh_fails_the_run_clearly(app: Autoops, lab: Lab, node: Path) -> None:
    original = node.read_text()
    declared = yaml.safe_load(original)
    declared["nodes"][0]["port"] = 9  # discard: nothing listens there
    node.write_text(yaml.safe_dump(declared))
    try:
        with pytest.raises(NodeFailedError) as caught:
            app.run(RunRequest("health", "lab"))
    finally:
        node.write_text(original)
    assert caught.value.status is ExitStatus.UNREACHABLE


def test_an_unknown_node_is_refused_before_anything_runs(app: Autoops, lab: Lab) -> None:
    before = len(records(lab.settings))
    with pytest.raises(Exception) as caught:  # noqa: PT011
        app.run(RunRequest("health", "lab", node="node9"))
    assert getattr(caught.value, "code", None) == "AUTOOPS-NODE-UNKNOWN"
    after = records(lab.settings)[before:]
    assert "run.started" not in [r["type"] for r in after]
