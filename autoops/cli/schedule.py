"""``schedule install|list|remove``: run ``autoops watch --env ENV`` from systemd or cron."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, TextIO

from autoops.cli import render
from autoops.cli.args import Parser
from autoops.cli.output import Handler, Output
from autoops.engine import Autoops
from autoops.errors import ScheduleInvalidError
from autoops.exits import ExitStatus
from autoops.services.context import Context
from autoops.settings import SERVICE_CONFIG_PATH, ServiceConfig, Settings
from autoops.setup import schedule


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
        every = schedule.parse_interval(args.every)
        settings = _for_service(app.settings, args.service_config)
        ctx = app.context if settings is app.settings else Context(settings)
        env = ctx.scope(args.env)
        if env not in ctx.catalog.get(args.action).environments:
            raise ScheduleInvalidError(f"catalog.yml does not let {args.action} run in {env}",
                                       remedy=f"Add {env} to the environments of {args.action}.")
        job = schedule.job_for(settings, args.action, env, every)
        doc = schedule.install(job, args.kind, units_dir=args.units_dir, cron_dir=args.cron_dir)
        output.text(render.schedule_text(doc))
    elif sub == "list":
        doc = {"schedules": schedule.listing(args.units_dir, args.cron_dir)}
        output.text(render.schedule_table(doc["schedules"]))
    else:
        doc = schedule.remove(args.action, args.env, units_dir=args.units_dir,
                              cron_dir=args.cron_dir)
        output.text(render.schedule_removed_text(doc))
    output.document(doc)
    return ExitStatus.OK


def _for_service(settings: Settings, config: Path | None) -> Settings:
    """Root, on a service-mode machine, schedules the service user's watch, not its own.

    Root is never in service mode itself (only the service account is), yet only root
    can write /etc/cron.d and /etc/systemd/system: ``--service-config`` reads the trusted,
    root-owned config and schedules what the service would run.
    """
    if config is None:
        return settings
    if settings.service is not None:
        raise ScheduleInvalidError("--service-config: this is service mode already",
                                   remedy="Leave out --service-config.")
    service = ServiceConfig.load(config)
    return dataclasses.replace(settings, project_dir=service.project_dir,
                               state_dir=service.state_dir, config_dir=service.config_dir,
                               service=service)


COMMANDS: dict[str, Handler] = {"schedule": cmd_schedule}
