"""Read-only views: ``status``, ``inventory check``, ``policy show``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, TextIO

from autoops.cli import render
from autoops.cli.args import Parser
from autoops.cli.output import Handler, Output
from autoops.exits import ExitStatus

if TYPE_CHECKING:
    from autoops.engine import Autoops


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    sub.add_parser("status", parents=[common], help="halts, runs in progress, locks, approvals")
    inv = sub.add_parser("inventory", parents=[common], help="the environments' inventories")
    isub = inv.add_subparsers(dest="inventory_command", required=True, parser_class=Parser)
    isub.add_parser("check", parents=[common],
                    help="fail if a host (by name, or address and port) is in two environments")
    pol = sub.add_parser("policy", parents=[common], help="the effective policy")
    psub = pol.add_subparsers(dest="policy_command", required=True, parser_class=Parser)
    pshow = psub.add_parser("show", parents=[common], help="defaults merged with policy.yml")
    pshow.add_argument("--env")


def cmd_status(app: Autoops, _args: argparse.Namespace, output: Output,
               _in: TextIO) -> ExitStatus:
    doc = app.overview.dashboard()
    output.text(render.status_text(doc))
    output.document(doc)
    return ExitStatus.OK


def cmd_inventory(app: Autoops, _args: argparse.Namespace, output: Output,
                  _in: TextIO) -> ExitStatus:
    doc = app.overview.inventory_check()
    output.text("inventories: OK (" + ", ".join(
        f"{env}: {len(hosts)} host(s)" for env, hosts in doc["environments"].items())
        + "; no machine in two environments)")
    output.document(doc)
    return ExitStatus.OK


def cmd_policy(app: Autoops, args: argparse.Namespace, output: Output, _in: TextIO) -> ExitStatus:
    doc = app.overview.effective_policy(args.env)
    output.text(render.policy_text(doc["environments"]))
    output.document(doc)
    return ExitStatus.OK


COMMANDS: dict[str, Handler] = {"status": cmd_status, "inventory": cmd_inventory,
                                "policy": cmd_policy}
