"""The execution-node protocol on this machine: the same job, stream and checks, without SSH.

The node's end runs as ``python3 -I -m autoops.node serve`` in a process of its own with a
home of its own (its trusted key, its run ids); only the transport is a pipe instead of
ssh (``Node.ssh_argv`` is swapped for the same remote argv run here). Real ansible-runner
transmit and worker, real playbooks on ``--env local``. tests/fleet/test_nodes_fleet.py
does the same over SSH to lab nodes.
"""

from __future__ import annotations

import base64
import io
import json
import os
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest

from autoops.core import nodes
from autoops.engine import Autoops, RunRequest
from autoops.errors import NodeFailedError
from autoops.exits import ExitStatus
from autoops.guard import grants, tickets
from autoops.settings import Settings
from tests.conftest import CACHE_DIR
from tests.integration.conftest import records, sent_specs

pytestmark = pytest.mark.integration


@pytest.fixture
def node_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def settings(project: Path, tmp_path: Path, node_home: Path) -> Settings:
    return Settings(project_dir=project, state_dir=tmp_path / "state", os_user="tester",
                    python=Path(sys.executable), search_path=os.environ.get("PATH", os.defpath),
                    cache_dir=CACHE_DIR, config_dir=tmp_path / "config" / "autoops",
                    home=node_home)


@pytest.fixture
def app(settings: Settings, project: Path, node_home: Path,
        monkeypatch: pytest.MonkeyPatch) -> Autoops:
    """``local`` runs on node ``here``: this machine, reached through a pipe."""
    (project / "nodes").mkdir()
    (project / "nodes" / "local.yml").write_text(
        "---\nversion: 1\nnodes:\n  - {name: here, host: localhost}\n")
    monkeypatch.setattr(nodes.Node, "ssh_argv", local_argv)
    application = Autoops(settings)
    trust = node_home / ".config" / "autoops" / "node-trust"
    trust.mkdir(parents=True)
    (trust / "local.pub").write_bytes(application.context.node_trust("local"))
    (trust / "local.name").write_text("here\n")
    return application


def local_argv(_node: nodes.Node, *remote: str) -> list[str]:
    """The node's command, run here. ``cancel`` only says it did: on one machine the
    run's mark is on the controller's worker too, which a real node never sees."""
    if remote[:1] == ("cancel",):
        return [sys.executable, "-c", "print('{\"killed\": []}')"]
    return [sys.executable, "-I", "-m", "autoops.node", *remote]


def shape(settings: Settings, run_id: str) -> tuple[list[str], list[tuple[str, str, str]]]:
    run = records(settings, run_id)
    return ([r["type"] for r in run],
            sorted((r["data"]["host"], r["data"]["task"], r["data"]["status"])
                   for r in run if r["type"] == "task.result"))


def test_a_run_on_the_node_records_what_a_run_here_records(app: Autoops, project: Path,
                                                            node_home: Path) -> None:
    there = app.run(RunRequest("health", "local"))
    assert there.status is ExitStatus.OK, there.results
    assert there.node == "here"
    (project / "nodes" / "local.yml").unlink()
    here = app.run(RunRequest("health", "local"))
    assert here.status is ExitStatus.OK, here.results
    assert shape(app.settings, there.run_id) == shape(app.settings, here.run_id)
    started = next(r for r in records(app.settings, there.run_id) if r["type"] == "run.started")
    assert started["data"]["executed_on"]["host"] == "localhost"
    assert list((node_home / ".local" / "state" / "autoops-node").iterdir()) == []


def test_a_job_the_controller_did_not_sign_runs_nothing(
        app: Autoops, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    stranger = grants.generate_keypair()[0]
    monkeypatch.setattr(app.context, "node_key", lambda _env: stranger)
    with pytest.raises(NodeFailedError, match="refused the job: its ticket is not"):
        app.run(RunRequest("test-echo", "local", {"text": "x", "dest": str(marker)}))
    assert not marker.exists()


def test_content_that_is_not_what_was_approved_runs_nothing(
        app: Autoops, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    real = tickets.sign_node

    def other_content(*args: Any, **kwargs: Any) -> str:
        return real(*args, **{**kwargs, "content": "sha256:" + "0" * 64})

    monkeypatch.setattr(tickets, "sign_node", other_content)
    with pytest.raises(NodeFailedError, match="this content"):
        app.run(RunRequest("test-echo", "local", {"text": "x", "dest": str(marker)}))
    assert not marker.exists()


def test_a_job_for_another_node_of_the_environment_runs_nothing(
        app: Autoops, node_home: Path, tmp_path: Path) -> None:
    """The job is signed for node ``here``; this node now answers to ``there``."""
    marker = tmp_path / "ran"
    names = node_home / ".config" / "autoops" / "node-trust"
    (names / "local.name").write_text("there\n")
    with pytest.raises(NodeFailedError, match=r"this node \(there\)"):
        app.run(RunRequest("test-echo", "local", {"text": "x", "dest": str(marker)}))
    (names / "local.name").unlink()
    with pytest.raises(NodeFailedError, match="this node has no name for local"):
        app.run(RunRequest("test-echo", "local", {"text": "x", "dest": str(marker)}))
    assert not marker.exists()


def test_the_same_job_sent_again_is_refused(app: Autoops, monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    sent, real = sent_specs(monkeypatch)
    marker = tmp_path / "ran"
    first = app.run(RunRequest("test-echo", "local", {"text": "once", "dest": str(marker)}))
    assert first.status is ExitStatus.OK, first.results
    marker.unlink()
    with pytest.raises(NodeFailedError, match="ran here before"):
        real(sent[0], lambda _result: None)
    assert not marker.exists()


FORGER = """
import base64, io, json, os, sys, zipfile
sys.stdin.buffer.readline()  # the header; the rest is ignored
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    link = zipfile.ZipInfo("evil")
    link.external_attr = (0o120777 << 16)
    z.writestr(link, sys.argv[1])
    z.writestr("evil/planted", "owned")
data = buf.getvalue()
out = sys.stdout.buffer
out.write(json.dumps({"status": "successful"}).encode() + b"\\n")
out.write(json.dumps({"zipfile": len(data)}).encode() + b"\\n" + base64.b64encode(data))
out.write(b'{"eof": true}\\n{"autoops_node": {"status": "successful", "rc": 0, "killed": []}}\\n')
out.flush()
"""


def test_a_node_cannot_write_files_on_the_controller(
        app: Autoops, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A hostile node answers with an artifacts zip holding a link out of the data dir."""
    target = tmp_path / "controller-dir"
    target.mkdir()
    forger = tmp_path / "forger.py"
    forger.write_text(textwrap.dedent(FORGER))
    monkeypatch.setattr(nodes.Node, "ssh_argv", lambda node, *remote: [
        sys.executable, str(forger), str(target)] if remote[0] == "serve" else local_argv(
            node, *remote))
    with pytest.raises(NodeFailedError, match="the node sent files"):
        app.run(RunRequest("health", "local"))
    assert list(target.iterdir()) == []


def _job(files: dict[str, tuple[int, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, (mode, body) in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            archive.writestr(info, body)
    data = buf.getvalue()
    return (json.dumps({"kwargs": {}}).encode() + b"\n"
            + json.dumps({"zipfile": len(data)}).encode() + b"\n" + base64.b64encode(data)
            + b'{"eof": true}\n')


@pytest.mark.parametrize(("files", "why"), [
    ({"project/../../x": (0o100600, b"x")}, "outside its directory"),
    ({"/etc/x": (0o100600, b"x")}, "outside its directory"),
    ({"project/link": (0o120777, b"/etc")}, "link or special file"),
    ({"project/fifo": (0o010600, b"")}, "link or special file"),
])
def test_a_node_unpacks_no_file_outside_its_run(tmp_path: Path, files: dict[str, Any],
                                                why: str) -> None:
    from autoops import node

    with pytest.raises(node.JobRefused, match=why):
        node.check_job(_job(files), tmp_path / "job", "20261207T101500Z-3fa9c1d2",
                       Settings.from_environ({"HOME": str(tmp_path),
                                              "AUTOOPS_STATE_DIR": str(tmp_path / "s")}))
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(("command", "verbs"), [
    ("/usr/bin/python3 -I -m autoops.node serve", ["serve"]),
    ("/usr/bin/python3 -I -m autoops.node cancel 20261207T101500Z-3fa9c1d2",
     ["cancel", "20261207T101500Z-3fa9c1d2"]),
    ("/usr/bin/python3 -I -m autoops.node info", ["info"]),
    ("sh -c id", []),
    ("/usr/bin/python3 -I -m autoops.node serve; id", []),
    ("/usr/bin/python3 -c 'import os' -m autoops.node serve", []),
    ("/usr/bin/python3 -I -m autoops.node cancel a b", []),
    ("", []),
])
def test_the_forced_command_allows_the_three_verbs_only(command: str, verbs: list[str]) -> None:
    from autoops import node

    assert node._original_command(command) == verbs


def test_a_signed_node_ticket_is_good_only_inside_the_nodes_own_run(
        app: Autoops, tmp_path: Path) -> None:
    """A front door (here a plain ansible-playbook) holding a genuine node ticket: refused."""
    from tests.integration.test_frontdoor_guard import playbook

    the_plan, _ = app.plan(RunRequest("health", "local"))
    run_id = "20261207T101500Z-3fa9c1d2"
    ticket = tickets.sign_node(
        app.context.node_key("local"), run_id=run_id, action="health", env="local",
        check_mode=False, params=the_plan.resolved.params, hosts=the_plan.hosts,
        content=the_plan.content_digest, node="here",
        expires=app.context.clock() + tickets.NODE_TICKET_TTL)
    extra = {"autoops_run_id": run_id, "autoops_actor": "tester", "autoops_env": "local",
             "autoops_action": "health", "autoops_check_mode": False,
             "autoops_ticket": ticket, "autoops_hosts": list(the_plan.hosts)}
    done = playbook(app.settings, "local", "health.yml", "-e", json.dumps(extra))
    assert done.returncode != 0
    assert "good only in a run autoops' node runner started" in done.stdout + done.stderr
    assert "Read uptime" not in done.stdout
