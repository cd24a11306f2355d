"""``schedule install|list|remove``: run ``autoops watch --env ENV`` from systemd or cron."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from autoops.cli import render
from autoops.cli.args import Parser
from autoops.cli.output import Handler, Output
from autoops.exits import ExitStatus
from autoops.settings import SERVICE_CONFIG_PATH
from autoops.setup import schedule

if TYPE_CHECKING:
    from autoops.engine import Autoops


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    dirs = Parser(add_help=False)
    dirs.add_argument("--units-dir", type=Path, default=schedule.DEFAULT_UNITS_DIR,
                      help=f"systemd units (default {schedule.DEFAULT_UNITS_DIR})")
    dirs.add_argument("--cron-dir", type=Path, default=schedule.DEFAULT_CRON_DIR,
                      help=f"cron entries (default {schedule.DEFAULT_CRON_DIR})")
    which = Parser(add_help=False)
    which.add_argument("--env", required=True)
    which.add_argument("--action", default="watch", choices=schedule.ACTIONS,
                       help="what runs (default watch)")
    top = sub.add_parser("schedule", parents=[common],
                         help="run `autoops watch --env ENV` every few minutes (systemd or cron)")
    ssub = top.add_subparsers(dest="schedule_command", required=True, parser_class=Parser)
    install = ssub.add_parser("install", parents=[common, dirs, which],
                              help="write (or confirm) the timer or cron entry; idempotent")
    install.add_argument("--every", required=True, metavar="INTERVAL",
                         help="minutes dividing an hour (5m, 15m) or hours dividing a day (1h, 6h)")
    install.add_argument("--kind", default="auto", choices=schedule.KINDS,
                         help="auto (default): systemd where it is PID 1, else cron")
    install.add_argument("--service-config", type=Path, metavar="FILE",
                         help="as root on a service-mode machine: schedule for the service user "
                              f"of FILE (usually {SERVICE_CONFIG_PATH}), through its launcher")
    ssub.add_parser("list", parents=[common, dirs], help="the schedules autoops installed here")
    ssub.add_parser("remove", parents=[common, dirs, which],
                    help="remove ENV's timer and service, or cron entry")


def cmd_schedule(app: Autoops, args: argparse.Namespace, output: Output,
                 _in: TextIO) -> ExitStatus:
    sub = args.schedule_command
    doc: Any
    if sub == "install":
        doc = app.scheduling.install(args.action, args.env, args.every, args.kind,
                                     units_dir=args.units_dir, cron_dir=args.cron_dir,
                                     service_config=args.service_config)
        output.text(render.schedule_text(doc))
    elif sub == "list":
        doc = {"schedules": app.scheduling.listing(args.units_dir, args.cron_dir)}
        output.text(render.schedule_table(doc["schedules"]))
    else:
        doc = app.scheduling.remove(args.action, args.env, units_dir=args.units_dir,
                                    cron_dir=args.cron_dir)
        output.text(render.schedule_removed_text(doc))
    output.document(doc)
    return ExitStatus.OK


COMMANDS: dict[str, Handler] = {"schedule": cmd_schedule}
