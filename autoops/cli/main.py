"""Command line: parse, call the library, render, map errors to exit statuses.

``main()`` is the console-script entry point (it exits); ``program()`` does the work
and returns an :class:`ExitStatus`, so tests call it with their own streams. Each
command group lives in its own module with ``add_parsers`` and ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from autoops import __version__
from autoops.cli import (
    actions,
    alerts,
    audit,
    export,
    guards,
    heartbeat,
    incident,
    install,
    lab,
    mcp,
    metrics,
    nodes,
    render,
    runbooks,
    schedule,
    secrets,
    views,
    watch,
)
from autoops.cli.args import Parser
from autoops.cli.output import Handler, Output, report_error
from autoops.cli.vmsafe import vm_safe_argv
from autoops.errors import AutoopsError
from autoops.exits import ExitStatus
from autoops.settings import Settings

if TYPE_CHECKING:
    pass

__all__ = ["build_parser", "main", "program", "vm_safe_argv", "vm_safe_main", "vm_safe_program"]

GROUPS = (actions, audit, secrets, guards, watch, alerts, metrics, heartbeat, views, install, lab,
          schedule, runbooks, incident, mcp, export, nodes)
"""Command groups, in the order ``autoops --help`` lists them."""

COMMANDS: dict[str, Handler] = {
    name: handler for group in (actions, audit, lab, secrets, guards, watch, alerts, metrics, views,
                                schedule, runbooks, incident, mcp, export, nodes)
    for name, handler in group.COMMANDS.items()}


def build_parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="print exactly one JSON document")
    parser = Parser(prog="autoops", description="Allowlisted, policy-gated, audited operations.",
                    parents=[common])
    parser.add_argument("--version", action="version", version=f"autoops {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in GROUPS:
        group.add_parsers(sub, common)
    return parser


def program(argv: Sequence[str], out: TextIO, err: TextIO, stdin: TextIO,
            settings: Settings | None = None) -> int:
    """The command's exit status: an :class:`ExitStatus`, or a wrapped job's own status."""
    output = Output("--json" in argv, out, err)
    try:
        words, job = heartbeat.split_job(argv)
        args = build_parser().parse_args(words)
        args.job = job
        if args.command in install.SETUP_COMMANDS:  # set-up: reads no project, runs nothing
            return install.SETUP_COMMANDS[args.command](args, output, settings)
        if args.command in heartbeat.PROJECTLESS:  # runs the job it wraps, reads no project
            return heartbeat.PROJECTLESS[args.command](args, output, settings)
        settings = settings or Settings.from_environ()
        if settings.ignored_environ:
            err.write("autoops: ignoring inherited " + render.visible(
                ", ".join(settings.ignored_environ))
                + " (they could change what runs; autoops builds its own environment)\n")
        if args.command in actions.READING:  # the allowlist: no engine to build
            return actions.READING[args.command](settings, args, output)
        from autoops.engine import Autoops  # noqa: PLC0415 - every other command needs it

        app = Autoops(settings)
        app.refuse_in_service_mode(args.command, getattr(args, "secrets_command", None))
        return COMMANDS[args.command](app, args, output, stdin)
    except AutoopsError as exc:
        return report_error(exc, output)
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return ExitStatus.INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    return int(program(sys.argv[1:] if argv is None else argv, sys.stdout, sys.stderr, sys.stdin))


def vm_safe_program(argv: Sequence[str], out: TextIO, err: TextIO, stdin: TextIO) -> int:
    try:
        translated = vm_safe_argv(argv)
    except AutoopsError as exc:
        return report_error(exc, Output("--json" in argv, out, err))
    return program(translated, out, err, stdin)


def vm_safe_main(argv: Sequence[str] | None = None) -> int:
    return int(vm_safe_program(sys.argv[1:] if argv is None else argv,
                               sys.stdout, sys.stderr, sys.stdin))
