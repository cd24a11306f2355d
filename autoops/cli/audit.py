"""``audit tail|query|show|verify``: read the log, and prove it is whole."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from autoops.audit.records import RECORD_TYPES
from autoops.cli import render
from autoops.cli.args import Parser
from autoops.cli.output import Handler, Output
from autoops.exits import ExitStatus

if TYPE_CHECKING:
    from autoops.engine import Autoops


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    audit = sub.add_parser("audit", parents=[common], help="read and verify the audit log")
    asub = audit.add_subparsers(dest="audit_command", required=True, parser_class=Parser)
    tail = asub.add_parser("tail", parents=[common], help="the newest records")
    tail.add_argument("-n", type=int, default=20)
    query = asub.add_parser("query", parents=[common], help="records matching filters")
    query.add_argument("--action")
    query.add_argument("--env")
    query.add_argument("--actor")
    query.add_argument("--run", dest="run_id")
    query.add_argument("--type", dest="types", action="append", choices=RECORD_TYPES, default=[])
    query.add_argument("--since", help="24h, 30m, 7d or an ISO 8601 time")
    query.add_argument("-n", type=int, default=None, help="at most the newest N")
    show_run = asub.add_parser("show", parents=[common], help="every record of one run")
    show_run.add_argument("run_id")
    asub.add_parser("reindex", parents=[common],
                    help="rebuild the query index from the log's segments")
    prune = asub.add_parser("prune", parents=[common],
                            help="drop whole segments older than a time (the chain stays "
                                 "verifiable)")
    prune.add_argument("--before", required=True, help="90d, 24h … ago, or an ISO 8601 time")
    prune.add_argument("--archive", type=Path, metavar="FILE",
                       help="first write the pruned segments to this gzip file (new)")
    verify = asub.add_parser("verify", parents=[common], help="check the hash chain")
    verify.add_argument("--witness", type=Path, metavar="FILE",
                        help="also check the log against a syslog witness file (README: Audit "
                             "witness)")


def cmd_audit(app: Autoops, args: argparse.Namespace, output: Output, _in: TextIO) -> ExitStatus:
    sub = args.audit_command
    if sub == "verify":
        return _verify(app, args.witness, output)
    if sub == "reindex":
        count = app.audit.reindex()
        output.text(f"audit index rebuilt: {count} records")
        output.document({"indexed": count})
        return ExitStatus.OK
    if sub == "prune":
        done = app.audit.prune(args.before, args.archive)
        output.text(f"audit log pruned: {done['pruned']} records in {len(done['segments'])} "
                    "segment(s)" + (f", seq {done['first_seq']}..{done['through_seq']}, "
                                    f"vouched for by seq {done['vouched_by']}"
                                    if done["pruned"] else " (none wholly older)")
                    + (f"; archived in {render.visible(done['archive']['path'])}"
                       if done.get("archive") else ""))
        output.document(done)
        return ExitStatus.OK
    if sub == "tail":
        records = app.audit.tail(args.n)
    elif sub == "show":
        records = app.audit.run(args.run_id)
    else:
        records = app.audit.search(action=args.action, env=args.env, actor=args.actor,
                                   run_id=args.run_id, types=args.types, since=args.since,
                                   limit=args.n)
    output.text("\n".join(render.audit_record(r) for r in records) or "no records")
    output.document({"records": records})
    return ExitStatus.OK


def _verify(app: Autoops, witness: Path | None, output: Output) -> ExitStatus:
    report = app.audit.verify(witness)
    if report.ok:
        since = "" if report.pruned is None else (
            f" from seq {report.from_seq} (seq 1..{report.pruned['through_seq']} were pruned; "
            f"seq {report.pruned['vouched_by']} vouches for where the chain starts)")
        output.text(f"audit log OK: {report.records} records, chain intact{since} "
                    f"({render.visible(app.audit.path.parent)})")
        if report.witness is not None:
            output.text(f"witness agrees: {report.witness['entries']} entries, through seq "
                        f"{report.witness['through']} ({render.visible(witness)})")
    else:
        where = "" if report.first_bad_seq is None else f" at seq {report.first_bad_seq}"
        output.err.write(render.terminal_text(
            f"audit log BROKEN{where}: {render.visible(report.problem)}\n"))
    output.document(report.to_dict())
    return ExitStatus.OK if report.ok else ExitStatus.INTERNAL_ERROR


COMMANDS: dict[str, Handler] = {"audit": cmd_audit}
