"""``lab up|status|down``: disposable SSH hosts in local containers (same-user mode only)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from autoops.cli import render
from autoops.cli.args import Parser
from autoops.cli.output import Handler, Output
from autoops.exits import ExitStatus

if TYPE_CHECKING:
    from autoops.engine import Autoops


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    lab = sub.add_parser("lab", parents=[common], help="disposable SSH hosts on this machine")
    lsub = lab.add_subparsers(dest="lab_command", required=True, parser_class=Parser)
    lab_up = lsub.add_parser("up", parents=[common], help="start hosts, write inventories/lab")
    lab_up.add_argument("--hosts", type=int, help="how many hosts (default 3)")
    lab_up.add_argument("--groups", help="group sizes, e.g. web=2,db=1")
    lab_up.add_argument("--nodes", type=int, default=0,
                        help="execution nodes to add (runs of --env lab then execute there)")
    lsub.add_parser("status", parents=[common], help="the lab's hosts and their state")
    lsub.add_parser("down", parents=[common], help="remove everything lab up created")


def cmd_lab(app: Autoops, args: argparse.Namespace, output: Output, _in: TextIO) -> ExitStatus:
    from autoops.lab import manager  # noqa: PLC0415 - only lab commands need it

    paths = manager.LabPaths.of(app.settings)
    if args.lab_command == "up":
        layout = manager.parse_groups(args.hosts, args.groups)
        doc = manager.up(paths, layout, output.progress)
        if args.nodes:
            from autoops.lab import nodes  # noqa: PLC0415

            nodes.add(paths, args.nodes, source_tree(), app.context.node_trust("lab"),
                      output.progress)
            doc = manager.status(paths)
    elif args.lab_command == "down":
        doc = manager.down(paths, output.progress)
        output.text(f"lab: removed {len(doc['removed'])} host(s)")
    else:
        doc = manager.status(paths)
    if args.lab_command != "down":
        rows = [(h["name"], h["group"], f"127.0.0.1:{h['port']}", h["state"],
                 f"{h['memory_mib']} MiB" if h.get("memory_mib") is not None else "-")
                for h in doc["hosts"]]
        output.text(render.table(rows, ("HOST", "GROUP", "SSH", "STATE", "MEMORY"))
                    if rows else "lab: no lab is up (`autoops lab up`)")
    output.document(doc)
    return ExitStatus.OK


def source_tree() -> Path:
    """The autoops source a lab node installs: this checkout (where the package lives)."""
    import autoops  # noqa: PLC0415

    return Path(autoops.__file__).resolve().parent.parent


COMMANDS: dict[str, Handler] = {"lab": cmd_lab}
