"""``watch --env ENV``: read the fleet, judge it, remember it, tell people (cron's command)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, TextIO

from autoops.cli import render
from autoops.cli.output import Handler, Output
from autoops.exits import ExitStatus

if TYPE_CHECKING:
    from autoops.engine import Autoops


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    watch = sub.add_parser("watch", parents=[common],
                           help="health checks with memory: find, alert (once), recover")
    watch.add_argument("--env", required=True)
    watch.add_argument("--actor", help="who is acting (default: the OS user)")


def cmd_watch(app: Autoops, args: argparse.Namespace, output: Output, _in: TextIO) -> ExitStatus:
    result = app.watch.watch(args.env, args.actor)
    doc = result.to_dict()
    output.text(render.watch_text(doc))
    healed = app.healing.after_watch(args.env, args.actor)  # policy.yml: self_heal
    if healed is not None:
        doc["heal"] = healed
        output.text(render.heal_text(healed))
    output.document(doc)
    return result.status


COMMANDS: dict[str, Handler] = {"watch": cmd_watch}
