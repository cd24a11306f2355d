"""The allowlist and the run path: ``list``, ``show``, ``plan``, ``run``."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from autoops.cli import render
from autoops.cli.args import Parser, seconds
from autoops.cli.output import Handler, Output
from autoops.core.catalog import parse_assignments
from autoops.exits import ExitStatus

if TYPE_CHECKING:
    from autoops.core.plan import Plan
    from autoops.core.policy import Decision
    from autoops.engine import Autoops, RunRequest, RunResult
    from autoops.settings import Settings


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    sub.add_parser("list", parents=[common], help="allowlisted actions")
    show = sub.add_parser("show", parents=[common], help="one action: parameters and policy")
    show.add_argument("action")

    target = Parser(add_help=False)
    target.add_argument("action")
    target.add_argument("--env", required=True, help="local, staging, production, …")
    target.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    target.add_argument("--limit", help="Ansible host pattern within the environment")
    target.add_argument("--check", action="store_true", help="Ansible check mode with diff")
    target.add_argument("--actor", help="who is acting (default: the OS user)")
    target.add_argument("--wait", type=seconds, default=0, metavar="SECONDS",
                        help="wait this long for another run's lock on the hosts (default 0)")
    target.add_argument("--one-host", action="store_true",
                        help="refuse unless --limit resolves to exactly one host")
    target.add_argument("--grant", metavar="TOKEN",
                        help="a pre-authorisation grant (token, or the id of a known grant)")
    target.add_argument("--approval", metavar="ID", help="an approved two-person request")
    target.add_argument("--node", metavar="NAME",
                        help="the execution node to run on (one nodes/ENV.yml declares; default: "
                             "one of them, or this machine when it declares none)")
    sub.add_parser("plan", parents=[common, target], help="validate and decide, run nothing")
    sub.add_parser("run", parents=[common, target], help="plan, get approval, execute")

    promote = sub.add_parser("promote", parents=[common],
                             help="deploy to ENV what its promotion source verified and soaked")
    promote.add_argument("app", metavar="APP")
    promote.add_argument("--from", dest="source", required=True, metavar="ENV",
                         help="the environment that proved the revision (policy: promotion.from)")
    promote.add_argument("--to", dest="target", required=True, metavar="ENV")
    promote.add_argument("--revision", metavar="R",
                         help="commit, tag or branch (default: what the source runs now)")
    promote.add_argument("--evidence", action="store_true",
                         help="show what the gate sees and decides; run nothing")
    for name in ("--actor", "--grant", "--approval"):
        promote.add_argument(name)
    promote.add_argument("--wait", type=seconds, default=0, metavar="SECONDS")


def cmd_list(settings: Settings, _args: argparse.Namespace, output: Output) -> ExitStatus:
    from autoops.services import allowlist  # noqa: PLC0415 - quick: no engine

    actions = allowlist.listing(settings)
    output.text(render.action_list(actions))
    output.document({"actions": actions})
    return ExitStatus.OK


def cmd_show(settings: Settings, args: argparse.Namespace, output: Output) -> ExitStatus:
    from autoops.services import allowlist  # noqa: PLC0415 - quick: no engine

    action, doc = allowlist.describe(settings, args.action)
    schemas = {"*": doc["params_schema"], **doc["params_schema_by_env"]}
    output.text(render.action_detail(action, schemas, doc["policy"]))
    output.document(doc)
    return ExitStatus.OK


def _request(args: argparse.Namespace) -> RunRequest:
    from autoops.engine import RunRequest  # noqa: PLC0415

    return RunRequest(action=args.action, env=args.env, params=parse_assignments(args.param),
                      limit=args.limit, check_mode=args.check, actor=args.actor,
                      one_host=args.one_host, wait=args.wait, grant=args.grant,
                      approval=args.approval, node=args.node)


def cmd_plan(app: Autoops, args: argparse.Namespace, output: Output, stdin: TextIO) -> ExitStatus:
    if args.check:
        return cmd_run(app, args, output, stdin)
    the_plan, decision = app.plan(_request(args))
    lock = app.runs.lock_view(the_plan)
    output.text(render.plan_text(the_plan.to_dict(), decision.to_dict(), lock))
    output.document({"plan": the_plan.to_dict(), "decision": decision.to_dict(), "lock": lock})
    return decision.exit_status


def human_at_terminal(stdin: TextIO, output: Output) -> bool:
    """Whether a person could be typing, as far as autoops can tell.

    The confirmation prompt needs a terminal on stdin and on stderr (where the prompt
    goes), autoops in the terminal's foreground process group (not a background job),
    and no machine interface (``--json``). A script holding a pty passes these checks:
    the typed confirmation guards against mistakes, not against a hostile caller —
    policy can require a second person instead (``typed_confirmation_max_risk``).
    """
    if output.json_mode or not stdin.isatty() or not output.err.isatty():
        return False
    try:
        fd = stdin.fileno()
    except (OSError, ValueError):  # a test's stand-in terminal
        return True
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False


def cmd_run(app: Autoops, args: argparse.Namespace, output: Output, stdin: TextIO) -> ExitStatus:
    confirm = _terminal_confirm(output, stdin) if human_at_terminal(stdin, output) else None
    with _cancel_on_signals() as (arm, cancelled):
        result = app.run(_request(args), confirm=confirm,
                         on_result=lambda r: output.text(render.result_line(r)),
                         cancel=cancelled.is_set, on_start=arm)
    return _finished(result, output)


def _finished(result: RunResult, output: Output) -> ExitStatus:
    """How a run ended, for people (summary, then the error on stderr) and for --json."""
    doc = result.to_dict()
    output.text(render.run_summary(doc))
    if result.error is not None and not output.json_mode:
        output.err.write(render.terminal_text(render.error_text(result.error)) + "\n")
    output.document(doc)
    return result.status


def cmd_promote(app: Autoops, args: argparse.Namespace, output: Output,
                stdin: TextIO) -> ExitStatus:
    from autoops.engine import RunRequest  # noqa: PLC0415

    if args.evidence:
        revision = None
        if args.revision:  # pinned to its commit as the deploy would be (a preview's plan)
            the_plan, _decision = app.plan(RunRequest("deploy", args.target, {
                "app": args.app, "revision": args.revision}, check_mode=True))
            revision = str(the_plan.resolved.params["revision"])
        evidence = app.deploys.evidence(args.app, args.source, args.target, revision).to_dict()
        output.text(render.promotion_text(evidence))
        output.document({"promotion": evidence})
        return ExitStatus.OK if evidence["allowed"] else ExitStatus.DENIED
    confirm = _terminal_confirm(output, stdin) if human_at_terminal(stdin, output) else None
    result = app.deploys.promote(args.app, args.source, args.target, args.revision,
                                 actor=args.actor, grant=args.grant, approval=args.approval,
                                 wait=args.wait, confirm=confirm,
                                 on_result=lambda r: output.text(render.result_line(r)))
    if result.promotion is not None:
        output.text(render.promotion_text(result.promotion))
    return _finished(result, output)


def _terminal_confirm(output: Output, stdin: TextIO) -> Callable[[Plan, Decision], str | None]:
    def confirm(plan: Plan, decision: Decision) -> str | None:
        output.err.write(render.terminal_text(render.plan_text(plan.to_dict(), decision.to_dict()))
                         + "\n\n")
        output.err.write("This needs confirmation. Type the environment name "
                         f"({render.visible(plan.env)}) to run it, anything else to cancel: ")
        output.err.flush()
        line = stdin.readline()
        return line.rstrip("\n") if line else None
    return confirm


@contextmanager
def _cancel_on_signals() -> Iterator[tuple[Callable[[], None], threading.Event]]:
    """Turn SIGINT/SIGTERM into a runner cancel once the playbook starts.

    Before that they interrupt as usual, so an operator can leave the confirmation
    prompt; after, ansible-playbook is cancelled and nothing is killed mid-record.
    """
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield (lambda: None), event
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    armed = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        if armed.is_set():
            event.set()
        else:
            raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield armed.set, event
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


COMMANDS: dict[str, Handler] = {"plan": cmd_plan, "run": cmd_run, "promote": cmd_promote}
READING: dict[str, Callable[[Settings, argparse.Namespace, Output], ExitStatus]] = {
    "list": cmd_list, "show": cmd_show}
"""Commands that read the allowlist from the settings alone (no engine is built for them)."""
