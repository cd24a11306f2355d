"""The catalog as MCP tools: one per action, plus plan, status, audit_query, request_approval.

Pure, so the tool list is testable without the SDK. MCP's annotation defaults are the
least safe ones (destructive, not idempotent, open world), so every tool sets all four:
read-only for SAFE, destructive from HIGH up, idempotent as the catalog says, and a
closed world (the fleet's own hosts).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from autoops.core.catalog import Action, Catalog
from autoops.core.risk import Risk

_TARGET = {
    "limit": {"type": "string", "maxLength": 200,
              "description": "Ansible host pattern within the environment (default: all)"},
    "check": {"type": "boolean", "default": False,
              "description": "Ansible check mode with diff: shows what would change"},
    "grant": {"type": "string", "maxLength": 4096,
              "description": "a pre-authorisation grant token a person issued"},
    "approval": {"type": "string", "maxLength": 64,
                 "description": "an approved two-person request id"},
}


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool = False

    def annotations(self) -> dict[str, bool]:
        return {"readOnlyHint": self.read_only, "destructiveHint": self.destructive,
                "idempotentHint": self.idempotent, "openWorldHint": self.open_world}


def action_tool(action: Action, environments: Iterable[str]) -> ToolSpec:
    """A catalog action as a tool: ``env``, then the parameters that environment allows."""
    envs = [env for env in environments if env in action.environments]
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"env": {"type": "string", "enum": envs,
                               "description": "the environment to run in"},
                       "params": action.schema_for(None), **_TARGET},
        "required": ["env"],
        "additionalProperties": False,
        "allOf": [{"if": {"properties": {"env": {"const": env}}, "required": ["env"]},
                   "then": {"properties": {"params": action.schema_for(env)}}} for env in envs],
    }
    if action.params_schema.get("required"):
        schema["required"].append("params")
    return ToolSpec(
        name=action.name,
        description=(f"{action.description} Risk {action.risk.name}; the policy decides per "
                     "environment whether it runs unattended, needs a grant, or a person."),
        input_schema=schema, read_only=action.risk is Risk.SAFE,
        destructive=action.risk >= Risk.HIGH, idempotent=action.idempotent)


def _request_schema(catalog: Catalog) -> dict[str, Any]:
    return {"type": "object", "properties": {
        "action": {"type": "string", "enum": sorted(a.name for a in catalog.actions.values())},
        "env": {"type": "string"}, "params": {"type": "object"},
        "limit": _TARGET["limit"]}, "required": ["action", "env"], "additionalProperties": False}


def fixed_tools(catalog: Catalog) -> list[ToolSpec]:
    """The tools every server has besides the actions."""
    return [
        ToolSpec("plan", "Validate an action's parameters, resolve its hosts and say what the "
                 "policy decides (and what would satisfy it). Runs nothing.",
                 _request_schema(catalog), read_only=True, destructive=False, idempotent=True),
        ToolSpec("status", "Halts in force, runs in progress, host and app locks, pending "
                 "approval requests.", {"type": "object", "properties": {},
                                        "additionalProperties": False},
                 read_only=True, destructive=False, idempotent=True),
        ToolSpec("audit_query", "Records of the hash-chained audit log, newest last.", {
            "type": "object", "properties": {
                "run_id": {"type": "string"}, "action": {"type": "string"},
                "env": {"type": "string"}, "type": {"type": "string"},
                "since": {"type": "string", "description": "90s, 30m, 24h, 7d or ISO 8601"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}},
            "additionalProperties": False},
            read_only=True, destructive=False, idempotent=True),
        ToolSpec("request_approval", "Record a two-person approval request for an action's "
                 "exact plan, for a person to approve with `autoops approve ID`. Never runs "
                 "the action.", _request_schema(catalog),
                 read_only=False, destructive=False, idempotent=False),
    ]


def all_tools(catalog: Catalog, environments: Iterable[str]) -> list[ToolSpec]:
    envs = list(environments)
    return [action_tool(a, envs) for a in catalog.actions.values()] + fixed_tools(catalog)
