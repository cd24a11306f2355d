"""``autoops export awx|semaphore``: job templates and surveys generated from the catalog."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from autoops.cli.output import Handler, Output
from autoops.common.files import write_atomic
from autoops.exits import ExitStatus

if TYPE_CHECKING:
    from autoops.engine import Autoops

# Environments a front-end manages by default: not this machine, not the disposable lab.
_NOT_EXPORTED = frozenset({"local", "lab"})


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    export = sub.add_parser("export", parents=[common],
                            help="write AWX or Semaphore job templates with surveys from the catalog")
    export.add_argument("frontend", choices=["awx", "semaphore"])
    export.add_argument("--env", action="append", dest="envs", metavar="ENV",
                        help="an environment to export (repeatable; default: all but local and lab)")
    export.add_argument("--project", default="autoops",
                        help="the AWX project that holds this repository (default: autoops)")
    export.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="write the JSON here (0644, atomically) instead of stdout")


def cmd_export(app: Autoops, args: argparse.Namespace, output: Output, _in: TextIO) -> ExitStatus:
    from autoops.frontdoors import export  # noqa: PLC0415 -- only this command needs it

    envs = [app.context.scope(env) for env in args.envs] if args.envs else [
        env for env in app.context.policy.environments if env not in _NOT_EXPORTED]
    doc = (export.awx(app.catalog, envs, args.project) if args.frontend == "awx"
           else export.semaphore(app.catalog, envs))
    text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    if args.output is not None:
        write_atomic(args.output, text.encode(), 0o644)
        output.text(f"wrote {args.output}: {_count(doc)} templates for {', '.join(envs)}")
        output.document({"path": str(args.output), "envs": envs, "templates": _count(doc)})
    elif output.json_mode:
        output.document(doc)
    else:
        output.out.write(text)
    return ExitStatus.OK


def _count(doc: dict[str, Any]) -> int:
    return len(doc.get("job_templates", doc.get("templates", [])))


COMMANDS: dict[str, Handler] = {"export": cmd_export}
