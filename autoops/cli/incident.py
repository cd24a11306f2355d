"""``incident report ID``: one finding's timeline from the audit log, as Markdown."""

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
    top = sub.add_parser("incident", parents=[common],
                         help="an incident's timeline (notices, acks, heals, runs) as Markdown")
    isub = top.add_subparsers(dest="incident_command", required=True, parser_class=Parser)
    report = isub.add_parser("report", parents=[common],
                             help="write the timeline of alert ID (from `alerts list`)")
    report.add_argument("alert_id", metavar="ID")
    report.add_argument("--output", type=Path, metavar="FILE",
                        help="write the Markdown to FILE (replaced in one step) instead")


def cmd_incident(app: Autoops, args: argparse.Namespace, output: Output,
                 _in: TextIO) -> ExitStatus:
    doc = app.incidents.report(args.alert_id, args.output)
    if args.output is not None:
        output.text(f"wrote {render.visible(str(args.output))} "
                    f"({len(doc['events'])} events)")
    else:
        output.text("\n".join(render.visible(line) for line in doc["markdown"].splitlines()))
    output.document(doc)
    return ExitStatus.OK


COMMANDS: dict[str, Handler] = {"incident": cmd_incident}
