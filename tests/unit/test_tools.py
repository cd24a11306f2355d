"""The catalog as MCP tools: names, input schemas per environment, all four annotations."""

from __future__ import annotations

import jsonschema
import pytest

from autoops.core.catalog import Catalog
from autoops.core.risk import Risk
from autoops.frontdoors.tools import all_tools
from tests.conftest import REPO

CATALOG = Catalog.load(REPO / "catalog.yml", REPO)
ENVS = ["local", "lab", "staging", "production"]
TOOLS = {t.name: t for t in all_tools(CATALOG, ENVS)}


@pytest.mark.parametrize("action", sorted(CATALOG.actions))
def test_each_action_sets_every_annotation_from_its_risk(action: str) -> None:
    spec, risk = TOOLS[action], CATALOG.actions[action].risk
    marks = spec.annotations()
    assert set(marks) == {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}
    assert marks["readOnlyHint"] is (risk is Risk.SAFE)
    assert marks["destructiveHint"] is (risk >= Risk.HIGH)
    assert marks["idempotentHint"] is CATALOG.actions[action].idempotent
    assert marks["openWorldHint"] is False
    jsonschema.Draft202012Validator.check_schema(spec.input_schema)


def test_the_input_schema_applies_each_environments_allowlist() -> None:
    schema = TOOLS["restart-service"].input_schema
    check = jsonschema.Draft202012Validator(schema)
    assert check.is_valid({"env": "production", "params": {"service": "nginx"}})
    assert not check.is_valid({"env": "production", "params": {"service": "postgres"}})
    assert not check.is_valid({"env": "production"}), "its parameters are required"
    assert not check.is_valid({"env": "qa", "params": {"service": "nginx"}})
    assert not check.is_valid({"env": "production", "params": {"service": "nginx"},
                               "ansible_connection": "local"}), "nothing undeclared"


def test_the_fixed_tools_are_there_and_only_request_approval_writes() -> None:
    fixed = {n: TOOLS[n].annotations()["readOnlyHint"]
             for n in ("plan", "status", "audit_query", "request_approval")}
    assert fixed == {"plan": True, "status": True, "audit_query": True,
                     "request_approval": False}
