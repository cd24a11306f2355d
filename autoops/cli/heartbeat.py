"""``heartbeat run NAME -- COMMAND``: wrap a cron job so ``autoops watch`` can tell it ran.

It reads no project and opens no state: it runs on whichever host runs the job, and
exits with the job's own exit status, so cron (and whatever wraps it) sees the same.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autoops.cli.output import Output
from autoops.settings import Settings
from autoops.watch import beat


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    heartbeat = sub.add_parser("heartbeat", parents=[common],
                               help="wrap a cron job or worker so watch knows when it ran")
    inner = heartbeat.add_subparsers(dest="heartbeat_command", required=True,
                                     parser_class=type(heartbeat))
    run = inner.add_parser("run", help="run COMMAND, recording its start, end and exit status")
    run.add_argument("name", help="the job, as declared in watch_heartbeats")
    run.add_argument("--dir", type=Path, default=beat.DEFAULT_DIR,
                     help=f"where the job's record is kept (default {beat.DEFAULT_DIR})")
    run.epilog = "The command and its arguments follow `--`; it runs from its argv, no shell."


def split_job(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """``heartbeat run … -- COMMAND``: the autoops words, and the job's (argparse mixes them)."""
    words = list(argv)
    if "heartbeat" in words[:2] and "--" in words:
        cut = words.index("--")
        return words[:cut], words[cut + 1:]
    return words, None


def cmd_heartbeat(args: argparse.Namespace, _output: Output, _settings: Settings | None) -> int:
    return beat.run(args.dir, args.name, list(getattr(args, "job", None) or []))


PROJECTLESS = {"heartbeat": cmd_heartbeat}
"""Commands that run without a project or the engine."""
