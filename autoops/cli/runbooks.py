"""``heal`` and ``runbooks list|replay``: self-healing, and a dry run over recorded findings."""

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
    heal = sub.add_parser("heal", parents=[common],
                          help="run the runbooks of what fires in ENV (through the gate)")
    heal.add_argument("--env", required=True)
    heal.add_argument("--actor", help="who is acting (default: the OS user)")
    top = sub.add_parser("runbooks", parents=[common],
                         help="self-healing runbooks: list them, replay findings through them")
    rsub = top.add_subparsers(dest="runbooks_command", required=True, parser_class=Parser)
    rsub.add_parser("list", parents=[common], help="the runbooks, in the order they are tried")
    replay = rsub.add_parser("replay", parents=[common],
                             help="which runbook and steps each recorded finding would run "
                                  "(dry run)")
    replay.add_argument("file", type=Path, metavar="FILE",
                        help="JSON lines of findings, oldest first")


def cmd_runbooks(app: Autoops, args: argparse.Namespace, output: Output,
                 _in: TextIO) -> ExitStatus:
    doc: dict[str, Any]
    if args.runbooks_command == "list":
        doc = {"runbooks": app.healing.listing()}
        output.text(render.runbooks_table(doc["runbooks"]))
    else:
        doc = app.healing.replay(args.file)
        output.text(render.replay_text(doc))
    output.document(doc)
    return ExitStatus.OK


def cmd_heal(app: Autoops, args: argparse.Namespace, output: Output, _in: TextIO) -> ExitStatus:
    """Exit 0 when nothing needs a person now, 5 when this run escalated something."""
    doc = app.healing.heal(args.env, args.actor)
    output.text(render.heal_text(doc))
    output.document(doc)
    return ExitStatus.PLAYBOOK_FAILED if doc["escalated"] else ExitStatus.OK


COMMANDS: dict[str, Handler] = {"runbooks": cmd_runbooks, "heal": cmd_heal}
