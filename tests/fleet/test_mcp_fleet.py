"""An agent over MCP runs a SAFE action on the lab's SSH hosts, audited under its name."""

from __future__ import annotations

from typing import Any

import pytest
from mcp.client.session import ClientSession

from tests.fleet.conftest import Lab
from tests.integration.conftest import records
from tests.integration.test_mcp import structured, talk

pytestmark = pytest.mark.fleet


def test_an_agent_checks_the_health_of_every_lab_host(lab: Lab) -> None:
    async def steps(s: ClientSession) -> Any:
        return await s.call_tool("health", {"env": "lab"})

    doc = structured(talk(lab.settings, steps))
    assert doc["exit_status"] == 0, doc
    assert sorted(doc["reports"]) == ["db1", "web1", "web2"]
    started = [r for r in records(lab.settings, doc["run_id"]) if r["type"] == "run.started"]
    assert started[0]["actor"] == "test-agent@mcp"
    assert sorted(started[0]["data"]["hosts"]) == ["db1", "web1", "web2"]
