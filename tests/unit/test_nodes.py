"""nodes/ENV.yml: what it may say, which node a run goes to, and the ssh command it makes."""

from __future__ import annotations

import re
import textwrap
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoops.core import nodes
from autoops.errors import NodesInvalidError, NodeUnknownError


def _write(project: Path, text: str, env: str = "staging") -> None:
    (project / "nodes").mkdir(exist_ok=True)
    (project / "nodes" / f"{env}.yml").write_text(textwrap.dedent(text))


def test_no_file_means_the_environment_runs_here(tmp_path: Path) -> None:
    declared = nodes.load(tmp_path, "staging")
    assert declared.nodes == ()
    assert declared.choose("20261207T101500Z-3fa9c1d2") is None


def test_a_declaration_with_defaults_and_home_relative_paths(tmp_path: Path) -> None:
    _write(tmp_path, """\
        ---
        version: 1
        nodes:
          - {name: exec1, host: exec1.staging.example.com}
          - {name: exec2, host: 192.0.2.30, port: 2222, user: autoops, python: /opt/venv/bin/python,
             identity_file: ~/.ssh/autoops_node, known_hosts: /etc/autoops/known_hosts}
        lend_identities: [~/.ssh/autoops_staging]
        """)
    declared = nodes.load(tmp_path, "staging", home=Path("/home/svc"))
    first, second = declared.nodes
    assert (first.port, first.user, first.python, first.identity_file) == (
        22, None, "/usr/bin/python3", None)
    assert second.identity_file == Path("/home/svc/.ssh/autoops_node")
    assert second.known_hosts == Path("/etc/autoops/known_hosts")
    assert declared.lend_identities == (Path("/home/svc/.ssh/autoops_staging"),)


@pytest.mark.parametrize(("body", "message"), [
    ("nodes: [{name: a, host: h}]\n", "version"),
    ("version: 1\nnodes: []\n", "nodes"),
    ("version: 1\nnodes: [{name: a, host: h, shell: bash}]\n", "unknown key"),
    ("version: 1\nnodes: [{name: a, host: -oProxyCommand=touch}]\n", "host"),
    ("version: 1\nnodes: [{name: a, host: 'h;id'}]\n", "host"),
    ("version: 1\nnodes: [{name: a, host: h, user: 'root -oX'}]\n", "user"),
    ("version: 1\nnodes: [{name: a, host: h, python: python3}]\n", "python"),
    ("version: 1\nnodes: [{name: a, host: h, port: 0}]\n", "port"),
    ("version: 1\nnodes: [{name: A, host: h}]\n", "name"),
    ("version: 1\nnodes: [{name: a, host: h}, {name: a, host: g}]\n", "unique"),
    ("version: 1\nnodes: [{name: a, host: h}]\nlend_identities: [relative/key]\n",
     "lend_identities"),
    ("version: 1\nnodes: [{name: a, host: h}]\nnodes: []\n", "duplicate key"),
])
def test_a_bad_declaration_is_refused_with_its_file(tmp_path: Path, body: str,
                                                   message: str) -> None:
    _write(tmp_path, "---\n" + body)
    with pytest.raises(NodesInvalidError, match=message) as caught:
        nodes.load(tmp_path, "staging")
    assert "nodes/staging.yml" in caught.value.message
    assert caught.value.code == "AUTOOPS-NODES-INVALID"


@pytest.mark.parametrize("field", ["identity_file", "known_hosts", "lend"])
def test_keys_and_host_keys_inside_the_project_are_refused(tmp_path: Path, field: str) -> None:
    inside = str(tmp_path / "inventories" / "k")
    node = "{name: a, host: h" + (f", {field}: {inside}" if field != "lend" else "") + "}"
    lend = f"\nlend_identities: [{inside}]" if field == "lend" else ""
    _write(tmp_path, f"---\nversion: 1\nnodes: [{node}]{lend}\n")
    with pytest.raises(NodesInvalidError, match="inside the project"):
        nodes.load(tmp_path, "staging")


def _declared(count: int) -> nodes.EnvNodes:
    return nodes.EnvNodes("staging", tuple(nodes.Node(f"n{i}", f"n{i}.example.com")
                                           for i in range(count)))


def test_runs_spread_over_the_nodes_by_run_id_and_a_named_node_wins() -> None:
    declared = _declared(3)
    ids = [f"20261207T1015{i % 60:02d}Z-{i:08x}" for i in range(300)]
    spread = Counter(declared.choose(run_id).name for run_id in ids)  # type: ignore[union-attr]
    assert set(spread) == {"n0", "n1", "n2"}
    assert min(spread.values()) > 50
    assert declared.choose(ids[0]) == declared.choose(ids[0]), "the same run, the same node"
    assert declared.choose(ids[0], "n2") == declared.nodes[2]
    with pytest.raises(NodeUnknownError, match="no execution node 'n9' for staging"):
        declared.choose(ids[0], "n9")


def test_the_ssh_command_checks_the_host_key_and_runs_a_constant_remote_command() -> None:
    node = nodes.Node("exec1", "exec1.example.com", port=2222, user="autoops",
                      identity_file=Path("/k/id"), known_hosts=Path("/k/known"))
    argv = node.ssh_argv("cancel", "20261207T101500Z-3fa9c1d2")
    assert argv[0] == "ssh"
    assert "BatchMode=yes" in argv
    assert "StrictHostKeyChecking=yes" in argv
    assert argv[argv.index("-i") + 1] == "/k/id"
    assert "IdentitiesOnly=yes" in argv
    assert "UserKnownHostsFile=/k/known" in argv
    assert "-a" in argv, "no agent forwarding to a node"
    cut = argv.index("--")
    assert argv[cut + 1:] == ["exec1.example.com", "/usr/bin/python3", "-I", "-m",
                              "autoops.node", "cancel", "20261207T101500Z-3fa9c1d2"]


@given(st.text(max_size=40))
def test_no_host_the_schema_accepts_can_be_an_ssh_option(text: str) -> None:
    shape = nodes._SCHEMA["properties"]["nodes"]["items"]["properties"]["host"]["pattern"]
    if re.fullmatch(shape, text):
        assert not text.startswith("-")
        assert not set(text) & set(" \t\n;|&$`'\"\\<>(){}*?")
