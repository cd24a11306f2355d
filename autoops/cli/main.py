"""Command line: parse, call the library, render, map errors to exit statuses.

``main()`` is the console-script entry point (it exits); ``program()`` does the work
and returns an :class:`ExitStatus`, so tests call it with their own streams. Each
command group lives in its own module with ``add_parsers`` and ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from autoops import __version__
from autoops.cli import actions, audit, guards, install, lab, render, secrets, views
from autoops.cli.args import Parser
from autoops.cli.output import Handler, Output, report_error
from autoops.cli.vmsafe import vm_safe_argv
from autoops.engine import Autoops
from autoops.errors import AutoopsError, ServiceRefusedError
from autoops.exits import ExitStatus
from autoops.settings import Settings

__all__ = ["build_parser", "main", "program", "vm_safe_argv", "vm_safe_main", "vm_safe_program"]

GROUPS = (actions, audit, secrets, guards, views, install, lab)
"""Command groups, in the order ``autoops --help`` lists them."""

COMMANDS: dict[str, Handler] = {
    name: handler for group in (actions, audit, lab, secrets, guards, views)
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
    _add_init_parser(sub, common)
    return parser


def _add_init_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    init = sub.add_parser("init", parents=[common],
                          help="lay out an operations repository of your own in DIR")
    init.add_argument("dir", type=Path, metavar="DIR", help="a new or empty directory")


def cmd_init(args: argparse.Namespace, output: Output, settings: Settings | None) -> ExitStatus:
    """Lay out DIR from what this installation ships; same-user only (it reads no project)."""
    from autoops.setup import init  # noqa: PLC0415 - only set-up needs it

    if (settings or Settings.from_environ()).service is not None:  # files as the service user
        raise ServiceRefusedError("`autoops init` is not available in service mode",
                                  remedy="Run `autoops init DIR` as yourself, then "
                                         "`autoops service install --project DIR` as root.")
    source = init.shipped_source()
    dest = args.dir.expanduser().absolute()
    files = init.lay_out(dest, source=source)
    hint = f"export AUTOOPS_PROJECT_DIR={shlex.quote(str(dest))}"
    output.text(f"{dest}: {len(files)} files laid out from {source}\n"
                f"next: {hint}\n      autoops list")
    output.document({"dest": str(dest), "source": str(source), "next": hint,
                     "files": [path.relative_to(dest).as_posix() for path in files]})
    return ExitStatus.OK


def program(argv: Sequence[str], out: TextIO, err: TextIO, stdin: TextIO,
            settings: Settings | None = None) -> ExitStatus:
    output = Output("--json" in argv, out, err)
    try:
        args = build_parser().parse_args(argv)
        if args.command == "init":  # writes a new repository, reads none
            return cmd_init(args, output, settings)
        if args.command in install.SETUP_COMMANDS:  # set-up, before any settings exist
            return install.SETUP_COMMANDS[args.command](args, output)
        app = Autoops(settings or Settings.from_environ())
        if app.settings.ignored_environ:
            err.write("autoops: ignoring inherited " + render.visible(
                ", ".join(app.settings.ignored_environ))
                + " (they could change what runs; autoops builds its own environment)\n")
        app.refuse_in_service_mode(args.command, getattr(args, "secrets_command", None))
        return COMMANDS[args.command](app, args, output, stdin)
    except AutoopsError as exc:
        return report_error(exc, output)
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return ExitStatus.INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    return int(program(sys.argv[1:] if argv is None else argv, sys.stdout, sys.stderr, sys.stdin))


def vm_safe_program(argv: Sequence[str], out: TextIO, err: TextIO, stdin: TextIO) -> ExitStatus:
    try:
        translated = vm_safe_argv(argv)
    except AutoopsError as exc:
        return report_error(exc, Output("--json" in argv, out, err))
    return program(translated, out, err, stdin)


def vm_safe_main(argv: Sequence[str] | None = None) -> int:
    return int(vm_safe_program(sys.argv[1:] if argv is None else argv,
                               sys.stdout, sys.stderr, sys.stdin))
