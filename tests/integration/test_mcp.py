"""``autoops mcp`` driven by the official SDK's client over stdio, as an agent would.

Tools carry all four annotations from the risk class; a SAFE action runs and is audited
under the agent's identity; what needs a person comes back as "approval required" with
the request id or the command a person runs, and nothing runs.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from autoops.settings import Settings
from tests.conftest import VENV_BIN, cli_env, localise, run_cli
from tests.integration.conftest import records

pytestmark = pytest.mark.integration


async def _session(settings: Settings, steps: Any) -> Any:
    params = StdioServerParameters(command=str(VENV_BIN / "autoops"), args=["mcp"],
                                   env=cli_env(settings))
    async with stdio_client(params) as (read, write), ClientSession(
            read, write, client_info=types.Implementation(name="test agent", version="1")) as s:
        await s.initialize()
        return await steps(s)


def talk(settings: Settings, steps: Any) -> Any:
    return anyio.run(_session, settings, steps)


def structured(result: Any) -> dict[str, Any]:
    assert isinstance(result, types.CallToolResult)
    doc: dict[str, Any] = result.structured_content
    return doc


def test_tools_carry_all_four_annotations_from_the_risk_class(settings: Settings) -> None:
    async def steps(s: ClientSession) -> list[types.Tool]:
        return list((await s.list_tools()).tools)

    tools = {t.name: t for t in talk(settings, steps)}
    assert {"health", "deploy", "backup-prune", "plan", "status", "audit_query",
            "request_approval"} <= set(tools)
    for tool in tools.values():
        marks = tool.annotations
        assert marks is not None
        assert None not in (marks.read_only_hint, marks.destructive_hint,
                            marks.idempotent_hint, marks.open_world_hint), tool.name
    health, deploy, prune = tools["health"].annotations, tools["deploy"].annotations, \
        tools["backup-prune"].annotations
    assert (health.read_only_hint, health.destructive_hint, health.idempotent_hint) == (
        True, False, True)
    assert (deploy.read_only_hint, deploy.destructive_hint, deploy.idempotent_hint) == (
        False, True, True)
    assert (prune.read_only_hint, prune.destructive_hint, prune.idempotent_hint) == (
        False, True, False)
    assert tools["deploy"].input_schema["properties"]["env"]["enum"] == [
        "local", "lab", "staging", "production"]
    narrowed = {c["if"]["properties"]["env"]["const"]:
                c["then"]["properties"]["params"]["properties"]["app"]["enum"]
                for c in tools["deploy"].input_schema["allOf"]}
    assert narrowed["production"] == ["app"]


def test_an_agent_runs_a_safe_action_and_is_refused_what_needs_a_person(
        settings: Settings, project: Any) -> None:
    localise(project, "production")
    said: list[str] = []

    async def steps(s: ClientSession) -> dict[str, Any]:
        async def heard(progress: float, total: float | None, message: str | None) -> None:
            said.append(message or "")

        health = await s.call_tool("health", {"env": "local"}, progress_callback=heard)
        typed = await s.call_tool("deploy-rollback", {"env": "production",
                                                      "params": {"app": "app"}})
        second = await s.call_tool("request_approval", {
            "action": "backup-prune", "env": "production", "params": {"keep": 2}})
        hostile = await s.call_tool("health", {"env": "local", "params": {
            "ansible_connection": "ssh"}})
        plan = await s.call_tool("plan", {"action": "deploy-rollback", "env": "production",
                                          "params": {"app": "app"}})
        return {"health": health, "typed": typed, "second": second, "hostile": hostile,
                "plan": plan}

    got = talk(settings, steps)
    health = structured(got["health"])
    assert health["exit_status"] == 0, health
    assert got["health"].is_error is False
    assert said, "task results stream as progress notifications"
    (requested,) = [r for r in records(settings, health["run_id"]) if r["type"] == "run.requested"]
    assert requested["actor"] == "test-agent@mcp"

    typed = structured(got["typed"])
    assert typed["exit_status"] == 4
    assert typed["error"]["code"] == "AUTOOPS-APPROVAL-REQUIRED"
    assert got["typed"].is_error is True

    second = structured(got["second"])
    assert second["exit_status"] == 4
    request_id = second["approval_request"]
    assert f"autoops approve {request_id}" in second["next"]
    pending = json.loads(run_cli(settings, "approvals", "list", "--pending", "--json").out)
    assert [r["id"] for r in pending["requests"]] == [request_id]

    assert structured(got["hostile"])["error"]["code"] == "AUTOOPS-PARAM-INVALID"
    assert structured(got["plan"])["exit_status"] == 4
    ran = [r for r in records(settings) if r["type"] == "run.started"]
    assert [r["action"] for r in ran] == ["health"], "nothing but the SAFE run executed"


def test_a_cancelled_tool_call_cancels_its_run_and_leaves_no_process(settings: Settings) -> None:
    """The client gives up on a long run: the run is interrupted, its processes killed."""
    async def steps(s: ClientSession) -> None:
        with anyio.move_on_after(20):  # the SDK sends notifications/cancelled on abandon
            await s.call_tool("test-sleep", {"env": "local", "params": {"seconds": 300}})
        # the session stays open while the server cancels the run in its thread
        with anyio.fail_after(60):
            while not any(r["type"] == "run.interrupted" for r in records(settings)):
                await anyio.sleep(0.2)

    talk(settings, steps)
    run = [r for r in records(settings) if r["action"] == "test-sleep"]
    assert [r["type"] for r in run][-2:] == ["run.interrupted", "run.finished"], run
    assert run[-1]["data"]["status"] == "interrupted"
    assert run[-1]["actor"] == "test-agent@mcp"
    left = subprocess.run(["pgrep", "-f", "sleep 300"], capture_output=True, text=True,
                          check=False)
    assert left.stdout.strip() == "", "a process of the cancelled run outlived it"
