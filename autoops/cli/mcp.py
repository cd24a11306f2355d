"""``autoops mcp``: serve the engine to AI agents over MCP (stdio)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, TextIO

from autoops.cli.output import Handler, Output
from autoops.exits import ExitStatus

if TYPE_CHECKING:
    from autoops.engine import Autoops


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    mcp = sub.add_parser("mcp", parents=[common],
                         help="serve the catalog to AI agents as MCP tools over stdio")
    mcp.add_argument("--actor", help="who the agent acts as (default: CLIENT@mcp, the name "
                                     "its MCP client gives; in service mode the Unix user)")


def cmd_mcp(app: Autoops, args: argparse.Namespace, _output: Output, _in: TextIO) -> ExitStatus:
    from autoops.frontdoors import mcp  # noqa: PLC0415  (the SDK loads only for this command)

    mcp.serve(app, args.actor)
    return ExitStatus.OK


COMMANDS: dict[str, Handler] = {"mcp": cmd_mcp}
