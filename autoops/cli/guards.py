"""What stands between a request and a run: grants, two-person approvals, halts.

``grant …``, ``approvals list``, ``approve``/``reject``, ``halt``/``resume``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, TextIO

from autoops.cli import render
from autoops.cli.args import Parser, actor_option, positive, reason_option, seconds
from autoops.cli.output import Handler, Output
from autoops.exits import ExitStatus

if TYPE_CHECKING:
    from autoops.engine import Autoops


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    actor, why = actor_option(), reason_option()
    grant = sub.add_parser("grant", parents=[common], help="signed pre-authorisation grants")
    gsub = grant.add_subparsers(dest="grant_command", required=True, parser_class=Parser)
    keys = gsub.add_parser("init-keys", parents=[common],
                           help="Ed25519 signing key per environment (public key to commit)")
    keys.add_argument("--env", help="one environment (default: every declared one)")
    create = gsub.add_parser("create", parents=[common, actor, why], help="issue a grant")
    create.add_argument("--env", required=True)
    create.add_argument("--actions", required=True, help="comma-separated action names")
    create.add_argument("--max-risk", required=True, help="highest risk class it covers")
    create.add_argument("--hosts", help="comma-separated host globs (default: any host of ENV)")
    create.add_argument("--param", action="append", default=[], metavar="KEY=V1,V2",
                        help="allowed values of a parameter (repeatable)")
    create.add_argument("--expires-in", required=True, help="e.g. 30m, 2h, 1d")
    create.add_argument("--uses", type=positive, default=1, help="how many runs (default 1)")
    create.add_argument("--unlimited-uses", action="store_true",
                        help="any number of runs until it expires")
    create.add_argument("--break-glass", action="store_true",
                        help="may override change windows and freezes (at most 2 hours)")
    listing = gsub.add_parser("list", parents=[common], help="grants this machine knows")
    listing.add_argument("--active", action="store_true", help="only usable ones")
    gshow = gsub.add_parser("show", parents=[common], help="one grant: scope, uses, state")
    gshow.add_argument("grant", metavar="ID_OR_TOKEN")
    revoke = gsub.add_parser("revoke", parents=[common, actor, why], help="revoke a grant")
    revoke.add_argument("grant_id", metavar="ID")

    alist = sub.add_parser("approvals", parents=[common], help="two-person approval requests")
    alsub = alist.add_subparsers(dest="approvals_command", required=True, parser_class=Parser)
    pending = alsub.add_parser("list", parents=[common], help="requests and their state")
    pending.add_argument("--pending", action="store_true", help="only those awaiting a decision")
    approve = sub.add_parser("approve", parents=[common, actor],
                             help="approve another person's request")
    approve.add_argument("request_id", metavar="ID")
    reject = sub.add_parser("reject", parents=[common, actor, why], help="reject a request")
    reject.add_argument("request_id", metavar="ID")

    halt = sub.add_parser("halt", parents=[common, actor, why],
                          help="emergency stop: block new runs, cancel running ones")
    halt.add_argument("--env", help="one environment (default: all)")
    halt.add_argument("--wait", type=seconds, default=10, metavar="SECONDS",
                      help="how long to wait for running runs to stop (default 10)")
    halt.add_argument("--against", metavar="ACTOR",
                      help="stop only this actor's runs (an agent, a cron job); it cannot lift it")
    resume = sub.add_parser("resume", parents=[common, actor, why], help="lift a halt")
    resume.add_argument("--env", help="the environment whose halt to lift (default: the global one)")
    resume.add_argument("--against", metavar="ACTOR", help="lift the halt against this actor")


def cmd_grant(app: Autoops, args: argparse.Namespace, output: Output, _in: TextIO) -> ExitStatus:
    sub = args.grant_command
    doc: Any
    if sub == "init-keys":
        doc = {"keys": app.grants.init_keys(args.env)}
        output.text("\n".join(render.grant_key(k) for k in doc["keys"]))
    elif sub == "create":
        doc = app.grants.create(
            env=args.env, actions=[a.strip() for a in args.actions.split(",") if a.strip()],
            max_risk=args.max_risk, hosts=args.hosts, params=args.param,
            expires_in=args.expires_in, uses=None if args.unlimited_uses else args.uses,
            break_glass=args.break_glass, reason=args.reason, actor=args.actor)
        output.text(render.grant_text(doc["grant"]) + f"\ntoken (pass it with --grant):\n"
                    f"{render.visible(doc['token'])}")
    elif sub == "list":
        doc = {"grants": app.grants.listing(active_only=args.active)}
        output.text(render.grant_table(doc["grants"]))
    elif sub == "show":
        doc = app.grants.show(args.grant)
        output.text(render.grant_text(doc))
    else:
        doc = app.grants.revoke(args.grant_id, args.reason, args.actor)
        output.text(f"{render.visible(doc['id'])}: revoked by {render.visible(doc['revoked_by'])}: "
                    f"{render.visible(doc['revoke_reason'])}")
    output.document(doc)
    return ExitStatus.OK


def cmd_approvals(app: Autoops, args: argparse.Namespace, output: Output,
                  _in: TextIO) -> ExitStatus:
    docs = app.approvals.listing(pending_only=args.pending)
    output.text(render.approval_table(docs))
    output.document({"requests": docs})
    return ExitStatus.OK


def cmd_approve(app: Autoops, args: argparse.Namespace, output: Output, _in: TextIO) -> ExitStatus:
    approve = args.command == "approve"
    doc = app.approvals.decide(args.request_id, approve=approve,
                               reason=None if approve else args.reason, actor=args.actor)
    output.text(render.approval_text(doc))
    output.document(doc)
    return ExitStatus.OK


def cmd_halt(app: Autoops, args: argparse.Namespace, output: Output, _in: TextIO) -> ExitStatus:
    if args.command == "halt":
        doc = app.stop.halt(args.env, args.reason, args.actor, wait=args.wait,
                            against=args.against)
        output.text(render.halt_text(doc))
    else:
        doc = app.stop.resume(args.env, args.reason, args.actor, against=args.against)
        output.text(render.resume_text(doc))
    output.document(doc)
    return ExitStatus.OK


COMMANDS: dict[str, Handler] = {
    "grant": cmd_grant, "approvals": cmd_approvals, "approve": cmd_approve,
    "reject": cmd_approve, "halt": cmd_halt, "resume": cmd_halt,
}
