"""``autoops mcp``: the engine as an MCP server over stdio, for AI agents.

Every action tool call is an ordinary guarded run (``Autoops.run``) with no typed
confirmation: what needs a person comes back as "approval required" with the request id
(a second person) or the command a person runs, never a bypass. The actor is the
client's name (``NAME@mcp``) unless ``--actor`` says otherwise; in service mode it is the
Unix user who started the server, whatever either says. Task results stream to the
client as progress notifications when it sent a progress token.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import mcp_types as types
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.stdio import stdio_server

from autoops import __version__
from autoops.engine import Autoops, RunRequest, RunResult
from autoops.errors import AutoopsError, BadInputError
from autoops.frontdoors.tools import ToolSpec, all_tools

_CLIENT_NAME = re.compile(r"[^A-Za-z0-9._+-]+")


class AgentDoor:
    """The tools and what each call does, over one engine."""

    def __init__(self, app: Autoops, actor: str | None = None) -> None:
        self.app, self.fixed_actor = app, actor
        self.specs = {t.name: t for t in all_tools(app.catalog, app.context.policy.environments)}

    def actor(self, client_name: str | None) -> str:
        if self.fixed_actor:
            return self.fixed_actor
        name = _CLIENT_NAME.sub("-", client_name or "agent").strip("-")[:48] or "agent"
        return f"{name}@mcp"

    def tools(self) -> list[types.Tool]:
        return [_tool(spec) for spec in self.specs.values()]

    def call(self, name: str, arguments: dict[str, Any], actor: str,
             progress: Callable[[str], None],
             cancelled: Callable[[], bool] = lambda: False) -> types.CallToolResult:
        """One tool call, synchronously (the server runs it in a worker thread).

        ``cancelled`` turning true (the client cancelled the request) cancels the run as
        Ctrl-C would: its worker and every process below it are killed, and the run is
        recorded as interrupted.
        """
        try:
            if name not in self.specs:
                raise BadInputError(f"unknown tool {name!r}", remedy="List the tools.")
            doc = self._dispatch(name, arguments, actor, progress, cancelled)
        except AutoopsError as exc:
            doc = {"exit_status": int(exc.status), "status": exc.status.name.lower(),
                   "error": exc.to_dict()}
            for key in ("run_id", "approval_request"):  # what the agent needs to go on
                if key in exc.details:
                    doc[key] = exc.details[key]
            if "approval_request" in doc:
                doc["next"] = (f"a person runs `autoops approve {doc['approval_request']}`; "
                               "then call the same tool again with approval set to that id")
        text = _summary(name, doc)
        return types.CallToolResult(content=[types.TextContent(text=text)],
                                    structured_content=doc, is_error=doc["exit_status"] != 0)

    def _dispatch(self, name: str, args: dict[str, Any], actor: str,
                  progress: Callable[[str], None],
                  cancelled: Callable[[], bool]) -> dict[str, Any]:
        if name == "status":
            return {"exit_status": 0, "status": "ok", "status_board": self.app.overview.dashboard()}
        if name == "audit_query":
            records = self.app.audit.search(
                action=args.get("action"), env=args.get("env"), run_id=args.get("run_id"),
                types=[args["type"]] if args.get("type") else None, since=args.get("since"),
                limit=int(args.get("limit", 50)))
            return {"exit_status": 0, "status": "ok", "records": records}
        request = _request(args.get("action", name), args, actor)
        if name == "plan":
            the_plan, decision = self.app.plan(request)
            return {"exit_status": int(decision.exit_status),
                    "status": decision.exit_status.name.lower(),
                    "plan": the_plan.to_dict(), "decision": decision.to_dict()}
        if name == "request_approval":
            self.app.runs.request_approval(request)  # always raises
        result: RunResult = self.app.run(
            request, confirm=None, cancel=cancelled,
            on_result=lambda r: progress(f"{r['host']}: {r['task']} {r['status']}"))
        doc = result.to_dict()
        doc["exit_status"] = int(result.status)
        return doc


def _request(action: str, args: dict[str, Any], actor: str) -> RunRequest:
    params = args.get("params") or {}
    if not isinstance(params, dict):
        raise BadInputError("params must be an object of parameter names to values")
    return RunRequest(action=action, env=str(args.get("env", "")),
                      params={str(k): v if isinstance(v, str) else json.dumps(v)
                              for k, v in params.items()},
                      limit=args.get("limit"), check_mode=bool(args.get("check", False)),
                      actor=actor, grant=args.get("grant"), approval=args.get("approval"))


def _summary(name: str, doc: dict[str, Any]) -> str:
    error = doc.get("error")
    if error:
        return f"{name}: {error['code']}: {error['message']}\nremedy: {error.get('remedy') or '-'}"
    if "run_id" in doc:
        return f"{name}: run {doc['run_id']} {doc['status']} (exit {doc['exit_status']})"
    return f"{name}: {doc['status']}"


def _tool(spec: ToolSpec) -> types.Tool:
    marks = spec.annotations()
    return types.Tool(name=spec.name, description=spec.description,
                      input_schema=spec.input_schema,
                      annotations=types.ToolAnnotations(
                          read_only_hint=marks["readOnlyHint"],
                          destructive_hint=marks["destructiveHint"],
                          idempotent_hint=marks["idempotentHint"],
                          open_world_hint=marks["openWorldHint"]))


def serve(app: Autoops, actor: str | None = None) -> None:
    """Serve the tools on stdin/stdout until the client closes them."""
    door = AgentDoor(app, actor)

    async def list_tools(_ctx: ServerRequestContext[Any, Any],
                         _params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=door.tools())

    async def call_tool(ctx: ServerRequestContext[Any, Any],
                        params: types.CallToolRequestParams) -> types.CallToolResult:
        client = ctx.session.client_params
        who = door.actor(client.client_info.name if client else None)
        token = ctx.meta.get("progress_token") if ctx.meta is not None else None
        sent = [0]
        stop = threading.Event()

        def progress(message: str) -> None:
            if token is None or stop.is_set():
                return
            sent[0] += 1
            anyio.from_thread.run(ctx.session.send_progress_notification, token,
                                  float(sent[0]), None, message)

        try:
            return await anyio.to_thread.run_sync(
                door.call, params.name, dict(params.arguments or {}), who, progress,
                stop.is_set, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            stop.set()  # the client cancelled: the engine cancels the run in its thread
            raise

    server: Server[Any] = Server("autoops", version=__version__,
                                 instructions="Allowlisted, policy-gated, audited operations. "
                                 "Call `plan` first; what needs a person says so.",
                                 on_list_tools=list_tools, on_call_tool=call_tool)

    async def main() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(main)

