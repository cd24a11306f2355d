"""``alerts list|show|ack|silence|unsilence|test``: people in the loop of what watch finds."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, TextIO

from autoops.cli import render
from autoops.cli.args import Parser, actor_option, reason_option
from autoops.cli.output import Handler, Output
from autoops.exits import ExitStatus

if TYPE_CHECKING:
    from autoops.engine import Autoops


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    actor, why = actor_option(), reason_option()
    alerts = sub.add_parser("alerts", parents=[common],
                            help="what watch found: list, acknowledge, silence")
    asub = alerts.add_subparsers(dest="alerts_command", required=True, parser_class=Parser)
    listing = asub.add_parser("list", parents=[common], help="firing and pending alerts")
    listing.add_argument("--env")
    listing.add_argument("--all", action="store_true", help="also the ones that are fine")
    show = asub.add_parser("show", parents=[common], help="one alert and its recent readings")
    show.add_argument("alert_id", metavar="ID")
    ack = asub.add_parser("ack", parents=[common, actor, why],
                          help="acknowledge: no repeats until it resolves")
    ack.add_argument("alert_id", metavar="ID")
    silence = asub.add_parser("silence", parents=[common, actor, why],
                              help="keep an alert quiet for a while (at most a week)")
    silence.add_argument("alert_id", metavar="ID")
    silence.add_argument("--for", dest="duration", required=True, metavar="DURATION",
                         help="e.g. 30m, 2h, 1d")
    unsilence = asub.add_parser("unsilence", parents=[common, actor, why],
                                help="end a silence now")
    unsilence.add_argument("alert_id", metavar="ID")
    test = asub.add_parser("test", parents=[common, actor],
                           help="send a test alert per failure class through the notifiers")
    test.add_argument("--env", required=True)
    test.add_argument("--class", dest="classes", action="append", metavar="CLASS",
                      help="only this failure class (repeatable): disk, service, proxy, …")


def cmd_alerts(app: Autoops, args: argparse.Namespace, output: Output, _in: TextIO) -> ExitStatus:
    sub = args.alerts_command
    doc: Any
    if sub == "list":
        doc = {"alerts": app.alerts.listing(args.env, everything=args.all)}
        output.text(render.alert_table(doc["alerts"]))
    elif sub == "test":
        doc = app.watch.test_alerts(args.env, args.classes, args.actor)
        output.text(render.alert_test_text(doc))
    else:
        if sub == "show":
            doc = app.alerts.show(args.alert_id)
        elif sub == "ack":
            doc = app.alerts.ack(args.alert_id, args.reason, args.actor)
        elif sub == "silence":
            doc = app.alerts.silence(args.alert_id, args.duration, args.reason, args.actor)
        else:
            doc = app.alerts.unsilence(args.alert_id, args.reason, args.actor)
        output.text(render.alert_text(doc))
    output.document(doc)
    return ExitStatus.OK


COMMANDS: dict[str, Handler] = {"alerts": cmd_alerts}
