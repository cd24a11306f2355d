"""``metrics write|show``: the Prometheus textfile node_exporter serves, now or on screen.

Runs and watch runs rewrite the file themselves when a metrics directory is set;
``metrics write`` is for a first file, or after changing the directory.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from autoops.cli import render
from autoops.cli.args import Parser
from autoops.cli.output import Handler, Output
from autoops.errors import MetricsDirError
from autoops.exits import ExitStatus

if TYPE_CHECKING:
    from autoops.engine import Autoops


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    metrics = sub.add_parser("metrics", parents=[common],
                             help="Prometheus metrics for node_exporter's textfile collector")
    msub = metrics.add_subparsers(dest="metrics_command", required=True, parser_class=Parser)
    write = msub.add_parser("write", parents=[common],
                            help="write autoops.prom into the metrics directory now")
    write.add_argument("--dir", type=Path, metavar="DIR",
                       help="this directory instead of AUTOOPS_METRICS_DIR (not in service mode)")
    msub.add_parser("show", parents=[common], help="print the metrics in the exposition format")


def cmd_metrics(app: Autoops, args: argparse.Namespace, output: Output, _in: TextIO) -> ExitStatus:
    if args.metrics_command == "write":
        path = app.metrics.write(args.dir)
        if path is None:
            raise MetricsDirError("no metrics directory is configured: nothing was written",
                                  remedy="Set AUTOOPS_METRICS_DIR (service mode: metrics_dir in "
                                         "the service config), or pass --dir DIR.")
        output.text(f"wrote {render.visible(str(path))}")
        output.document({"path": str(path)})
    else:
        text = app.metrics.render()
        output.text(text.rstrip("\n"))
        output.document({"exposition": text})
    return ExitStatus.OK


COMMANDS: dict[str, Handler] = {"metrics": cmd_metrics}
