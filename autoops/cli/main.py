"""Command line: parse, call the library, render, map errors to exit statuses.

``main()`` is the console-script entry point (it exits); ``program()`` does the work
and returns an :class:`ExitStatus`, so tests call it with their own streams.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO

from autoops import __version__
from autoops.audit.log import RECORD_TYPES, Query, parse_since
from autoops.audit.witness import read_witness
from autoops.cli import render
from autoops.core.catalog import parse_assignments
from autoops.core.plan import Plan
from autoops.core.policy import Decision, Outcome
from autoops.engine import Autoops, RunRequest
from autoops.errors import AutoopsError, BadInputError, SecretsCheckFailedError
from autoops.exits import ExitStatus
from autoops.settings import SERVICE_CONFIG_PATH, Settings


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so usage errors get our exit status."""

    def error(self, message: str) -> NoReturn:
        raise BadInputError(f"{self.prog}: {message}", remedy=f"Run `{self.prog} --help`.")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 to 86400)")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="print exactly one JSON document")
    parser = _Parser(prog="autoops", description="Allowlisted, policy-gated, audited operations.",
                     parents=[common])
    parser.add_argument("--version", action="version", version=f"autoops {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", parents=[common], help="allowlisted actions")
    show = sub.add_parser("show", parents=[common], help="one action: parameters and policy")
    show.add_argument("action")

    target = _Parser(add_help=False)
    target.add_argument("action")
    target.add_argument("--env", required=True, help="local, staging, production, …")
    target.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    target.add_argument("--limit", help="Ansible host pattern within the environment")
    target.add_argument("--check", action="store_true", help="Ansible check mode with diff")
    target.add_argument("--actor", help="who is acting (default: the OS user)")
    target.add_argument("--wait", type=_seconds, default=0, metavar="SECONDS",
                        help="wait this long for another run's lock on the hosts (default 0)")
    target.add_argument("--one-host", action="store_true",
                        help="refuse unless --limit resolves to exactly one host")
    target.add_argument("--grant", metavar="TOKEN",
                        help="a pre-authorisation grant (token, or the id of a known grant)")
    target.add_argument("--approval", metavar="ID", help="an approved two-person request")
    sub.add_parser("plan", parents=[common, target], help="validate and decide, run nothing")
    sub.add_parser("run", parents=[common, target], help="plan, get approval, execute")

    audit = sub.add_parser("audit", parents=[common], help="read and verify the audit log")
    asub = audit.add_subparsers(dest="audit_command", required=True, parser_class=_Parser)
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
    verify = asub.add_parser("verify", parents=[common], help="check the hash chain")
    verify.add_argument("--witness", type=Path, metavar="FILE",
                        help="also check the log against a syslog witness file (README: Audit "
                             "witness)")

    _add_secrets_parser(sub, common)
    _add_guardrail_parsers(sub, common)

    _add_service_parser(sub, common)

    lab = sub.add_parser("lab", parents=[common], help="disposable SSH hosts on this machine")
    lsub = lab.add_subparsers(dest="lab_command", required=True, parser_class=_Parser)
    lab_up = lsub.add_parser("up", parents=[common], help="start hosts, write inventories/lab")
    lab_up.add_argument("--hosts", type=int, help="how many hosts (default 3)")
    lab_up.add_argument("--groups", help="group sizes, e.g. web=2,db=1")
    lsub.add_parser("status", parents=[common], help="the lab's hosts and their state")
    lsub.add_parser("down", parents=[common], help="remove everything lab up created")
    return parser


def _add_secrets_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    secrets = sub.add_parser("secrets", parents=[common],
                             help="SOPS/age-encrypted secrets, one key per environment")
    ssub = secrets.add_subparsers(dest="secrets_command", required=True, parser_class=_Parser)
    one_env = _Parser(add_help=False)
    one_env.add_argument("--env", required=True)
    ssub.add_parser("init", parents=[common, one_env],
                    help="key pair, sops-rules.yaml rule and secrets file for ENV")
    which = _Parser(add_help=False)
    which.add_argument("--file", help="which SOPS file of ENV (default: its secrets.sops.yml)")
    ssub.add_parser("edit", parents=[common, one_env, which],
                    help="edit in $EDITOR through sops (needs a terminal)")
    sset = ssub.add_parser("set", parents=[common, one_env, which],
                           help="set one variable; the value is read from stdin, never argv")
    sset.add_argument("name", metavar="NAME", help="variable name, e.g. db_password")
    sunset = ssub.add_parser("unset", parents=[common, one_env, which],
                             help="remove one variable")
    sunset.add_argument("name", metavar="NAME")
    sshow = ssub.add_parser("show", parents=[common, one_env], help="variable names, never values")
    sshow.add_argument("--keys", action="store_true", required=True,
                       help="list the variable names (values are never shown)")
    rotate = ssub.add_parser("rotate", parents=[common, one_env],
                             help="new data key; --new-recipient re-keys to a new age key")
    rotate.add_argument("--new-recipient", nargs="?", const="", metavar="AGE_RECIPIENT",
                        help="re-key to this public key, or (no value) to a newly generated key")
    ssub.add_parser("check", parents=[common],
                    help="fail on unencrypted, cross-environment or plaintext secrets")


def _add_service_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    svc = sub.add_parser("service", parents=[common],
                         help="service mode: a service account reached through sudo (as root)")
    ssub = svc.add_subparsers(dest="service_command", required=True, parser_class=_Parser)
    config = _Parser(add_help=False)
    config.add_argument("--config", type=Path, default=SERVICE_CONFIG_PATH,
                        help=f"the root-owned service config (default {SERVICE_CONFIG_PATH})")
    install = ssub.add_parser("install", parents=[common, config],
                              help="create the account, launcher, sudoers entry and config")
    install.add_argument("--project", type=Path, required=True,
                         help="the operations repository (owned by root or the service user)")
    install.add_argument("--user", default="autoops", help="the service account (default autoops)")
    install.add_argument("--group", default="autoops-operators",
                         help="the operators group allowed to call it (default autoops-operators)")
    install.add_argument("--home", type=Path, default=Path("/var/lib/autoops"),
                         help="the service account's home (default /var/lib/autoops)")
    install.add_argument("--state-dir", type=Path, help="default HOME/state")
    install.add_argument("--config-dir", type=Path, help="age and grant keys (default HOME/config)")
    install.add_argument("--launcher", type=Path, default=Path("/usr/local/bin/autoops"),
                         help="the command sudoers names (default /usr/local/bin/autoops)")
    install.add_argument("--sudoers", type=Path, default=Path("/etc/sudoers.d/autoops"),
                         help="the sudoers drop-in (default /etc/sudoers.d/autoops)")
    install.add_argument("--python", type=Path, default=Path(sys.executable),
                         help="an interpreter the service user can run (default: this one)")
    install.add_argument("--witness", help="audit witness URL (udp://…, tcp://…, unix:///dev/log)")
    ssub.add_parser("uninstall", parents=[common, config],
                    help="remove launcher, sudoers entry and config (keeps account and state)")
    ssub.add_parser("status", parents=[common, config], help="check an installation")


def cmd_service(args: argparse.Namespace, output: Output) -> ExitStatus:
    from autoops.setup import service  # noqa: PLC0415 - only set-up needs it

    sub = args.service_command
    if sub == "install":
        doc = service.install(service.InstallOptions(
            project_dir=args.project.resolve(), python=args.python, user=args.user,
            operators=args.group, home=args.home, state_dir=args.state_dir,
            config_dir=args.config_dir, launcher=args.launcher, sudoers=args.sudoers,
            config=args.config, witness=args.witness))
        output.text("\n".join(f"{what}: {change}" for what, change in doc["changes"].items())
                    + f"\nentry: {doc['entry']}\nfleet SSH public key: {doc['ssh_public_key']}")
    elif sub == "uninstall":
        doc = service.uninstall(args.config)
        output.text("removed: " + (", ".join(doc["removed"]) or "nothing") +
                    f"\nkept: {doc['kept']['user']}, {doc['kept']['state_dir']}")
    else:
        doc = service.status(args.config)
        output.text("service: OK" if doc["ok"] else "service: " + "; ".join(doc["problems"]))
    output.document(doc)
    return ExitStatus.OK if sub != "status" or doc["ok"] else ExitStatus.INTERNAL_ERROR


def _add_guardrail_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    actor = _Parser(add_help=False)
    actor.add_argument("--actor", help="who is acting (default: the OS user)")
    why = _Parser(add_help=False)
    why.add_argument("--reason", required=True, help="why, for the audit log (one line)")

    grant = sub.add_parser("grant", parents=[common], help="signed pre-authorisation grants")
    gsub = grant.add_subparsers(dest="grant_command", required=True, parser_class=_Parser)
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
    create.add_argument("--uses", type=_positive, default=1, help="how many runs (default 1)")
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
    alsub = alist.add_subparsers(dest="approvals_command", required=True, parser_class=_Parser)
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
    halt.add_argument("--wait", type=_seconds, default=10, metavar="SECONDS",
                      help="how long to wait for running runs to stop (default 10)")
    halt.add_argument("--against", metavar="ACTOR",
                      help="stop only this actor's runs (an agent, a cron job); it cannot lift it")
    resume = sub.add_parser("resume", parents=[common, actor, why], help="lift a halt")
    resume.add_argument("--env", help="the environment whose halt to lift (default: the global one)")
    resume.add_argument("--against", metavar="ACTOR", help="lift the halt against this actor")
    sub.add_parser("status", parents=[common], help="halts, runs in progress, locks, approvals")
    inv = sub.add_parser("inventory", parents=[common], help="the environments' inventories")
    isub = inv.add_subparsers(dest="inventory_command", required=True, parser_class=_Parser)
    isub.add_parser("check", parents=[common],
                    help="fail if a host (by name, or address and port) is in two environments")
    pol = sub.add_parser("policy", parents=[common], help="the effective policy")
    psub = pol.add_subparsers(dest="policy_command", required=True, parser_class=_Parser)
    pshow = psub.add_parser("show", parents=[common], help="defaults merged with policy.yml")
    pshow.add_argument("--env")


def _positive(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 100000")
    return int(text)


class Output:
    """Where a command's output goes: text lines, or one JSON document at the end."""

    def __init__(self, json_mode: bool, out: TextIO, err: TextIO) -> None:
        self.json_mode, self.out, self.err = json_mode, out, err

    def text(self, text: str) -> None:
        """Print rendered text; any control character left in it is shown, not obeyed."""
        if not self.json_mode:
            self.out.write(render.terminal_text(text) + "\n")
            self.out.flush()

    def document(self, doc: Any) -> None:
        if self.json_mode:
            self.out.write(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")


def program(argv: Sequence[str], out: TextIO, err: TextIO, stdin: TextIO,
            settings: Settings | None = None) -> ExitStatus:
    json_mode = "--json" in argv
    output = Output(json_mode, out, err)
    try:
        args = build_parser().parse_args(argv)
        if args.command == "service":  # set-up as root, before any settings exist
            return cmd_service(args, output)
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


def report_error(exc: AutoopsError, output: Output) -> ExitStatus:
    if output.json_mode:
        output.document({"error": exc.to_dict(), **exc.details})
    else:
        output.err.write(render.terminal_text(render.error_text(exc)) + "\n")
    return exc.status


def cmd_list(app: Autoops, _args: argparse.Namespace, output: Output, _in: TextIO) -> ExitStatus:
    actions = list(app.catalog.actions.values())
    output.text(render.action_list(actions))
    output.document({"actions": [
        {"name": a.name, "risk": a.risk.name, "environments": list(a.environments),
         "description": a.description, "aliases": list(a.aliases)} for a in actions]})
    return ExitStatus.OK


def cmd_show(app: Autoops, args: argparse.Namespace, output: Output, _in: TextIO) -> ExitStatus:
    action = app.catalog.get(args.action)
    schemas = {"*": action.schema_for(None)} | {
        env: action.schema_for(env) for env in action.environments}
    by_env = app.policy_by_env(action.name)
    output.text(render.action_detail(action, schemas, by_env))
    output.document({
        "name": action.name, "description": action.description, "playbook": action.playbook,
        "risk": action.risk.name, "environments": list(action.environments),
        "check_mode": action.check_mode, "rollback": action.rollback,
        "aliases": list(action.aliases), "params_schema": schemas["*"],
        "params_schema_by_env": {k: v for k, v in schemas.items() if k != "*"},
        "policy": by_env})
    return ExitStatus.OK


def _request(args: argparse.Namespace) -> RunRequest:
    return RunRequest(action=args.action, env=args.env, params=parse_assignments(args.param),
                      limit=args.limit, check_mode=args.check, actor=args.actor,
                      one_host=args.one_host, wait=args.wait, grant=args.grant,
                      approval=args.approval)


def cmd_plan(app: Autoops, args: argparse.Namespace, output: Output, stdin: TextIO) -> ExitStatus:
    if args.check:
        return cmd_run(app, args, output, stdin)
    the_plan, decision = app.plan(_request(args))
    lock = app.lock_view(the_plan)
    output.text(render.plan_text(the_plan.to_dict(), decision.to_dict(), lock))
    output.document({"plan": the_plan.to_dict(), "decision": decision.to_dict(), "lock": lock})
    return {Outcome.ALLOWED: ExitStatus.OK, Outcome.DENIED: ExitStatus.DENIED,
            Outcome.APPROVAL_REQUIRED: ExitStatus.APPROVAL_REQUIRED}[decision.outcome]


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
    doc = result.to_dict()
    output.text(render.run_summary(doc))
    if result.error is not None and not output.json_mode:
        output.err.write(render.terminal_text(render.error_text(result.error)) + "\n")
    output.document(doc)
    return result.status


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


def cmd_audit(app: Autoops, args: argparse.Namespace, output: Output, _in: TextIO) -> ExitStatus:
    sub = args.audit_command
    if sub == "verify":
        app.recover_interrupted()
        if args.witness is None:
            report = app.audit.verify()
        else:
            report = app.audit.verify_witness(read_witness(args.witness))
        if report.ok:
            output.text(f"audit log OK: {report.records} records, chain intact "
                        f"({render.visible(app.settings.audit_path)})")
            if report.witness is not None:
                output.text(f"witness agrees: {report.witness['entries']} entries, through seq "
                            f"{report.witness['through']} ({render.visible(args.witness)})")
        else:
            where = "" if report.first_bad_seq is None else f" at seq {report.first_bad_seq}"
            output.err.write(render.terminal_text(
                f"audit log BROKEN{where}: {render.visible(report.problem)}\n"))
        output.document(report.to_dict())
        return ExitStatus.OK if report.ok else ExitStatus.INTERNAL_ERROR
    if sub == "tail":
        records = app.audit_query(Query(), limit=max(args.n, 1))
    elif sub == "show":
        records = app.audit_query(Query(run_id=args.run_id))
        if not records:
            raise BadInputError(f"no audit records for run {args.run_id!r}",
                                remedy="`autoops audit tail` lists recent run ids.")
    else:
        try:
            since = parse_since(args.since, datetime.now(UTC)) if args.since else None
        except ValueError as exc:
            raise BadInputError(str(exc)) from None
        records = app.audit_query(Query(action=args.action, env=args.env, actor=args.actor,
                                        run_id=args.run_id, types=args.types, since=since),
                                  limit=args.n)
    output.text("\n".join(render.audit_record(r) for r in records) or "no records")
    output.document({"records": records})
    return ExitStatus.OK


def cmd_lab(app: Autoops, args: argparse.Namespace, output: Output, _in: TextIO) -> ExitStatus:
    from autoops.lab import manager  # noqa: PLC0415 - only lab commands need it

    paths = manager.LabPaths.of(app.settings)
    def progress(line: str) -> None:  # with --json, progress goes to stderr
        if output.json_mode:
            output.err.write(render.terminal_text(line) + "\n")
        else:
            output.text(line)

    if args.lab_command == "up":
        doc = manager.up(paths, manager.parse_groups(args.hosts, args.groups), progress)
    elif args.lab_command == "down":
        doc = manager.down(paths, progress)
        output.text(f"lab: removed {len(doc['removed'])} host(s)")
    else:
        doc = manager.status(paths)
    if args.lab_command != "down":
        rows = [(h["name"], h["group"], f"127.0.0.1:{h['port']}", h["state"],
                 f"{h['memory_mib']} MiB" if h.get("memory_mib") is not None else "-")
                for h in doc["hosts"]]
        output.text(render.table(rows, ("HOST", "GROUP", "SSH", "STATE", "MEMORY"))
                    if rows else "lab: no lab is up (`autoops lab up`)")
    output.document(doc)
    return ExitStatus.OK


def cmd_secrets(app: Autoops, args: argparse.Namespace, output: Output,
                stdin: TextIO) -> ExitStatus:
    sub = args.secrets_command
    if sub == "check":
        from autoops.secrets import scan as secretscan  # noqa: PLC0415 - detect-secrets loads slowly

        findings = secretscan.check(app.settings.project_dir)
        if findings:
            if not output.json_mode:
                output.err.write("".join(f"{render.visible(f)}\n" for f in findings))
            raise SecretsCheckFailedError(
                f"secrets check: {len(findings)} problem(s)",
                details={"ok": False, "findings": [f.to_dict() for f in findings]})
        output.document({"ok": True, "findings": []})
        output.text("secrets check: OK (SOPS files encrypted per environment; no plaintext "
                    "secret found)")
        return ExitStatus.OK
    if sub == "init":
        doc = app.secrets_init(args.env)
        output.text(render.secrets_init(doc))
    elif sub == "edit":  # sops and the editor use this process's stdin, stdout and stderr
        terminal = stdin.isatty() and output.out.isatty() and output.err.isatty()
        doc = app.secrets_edit(args.env, args.file, terminal=terminal)
        output.text(f"{render.visible(doc['file'])}: " + (
            f"re-encrypted (added {', '.join(map(render.visible, doc['added'])) or 'nothing'}, "
            f"removed {', '.join(map(render.visible, doc['removed'])) or 'nothing'})"
            if doc["changed"] else "unchanged"))
    elif sub == "set":
        from autoops.secrets.store import MAX_VALUE_BYTES, value_from_input  # noqa: PLC0415

        if stdin.isatty():  # a person typing: no echo (getpass reads the terminal)
            from getpass import getpass  # noqa: PLC0415 - only this command prompts

            data = getpass(f"{args.name} (input hidden): ", stream=output.err).encode()
        else:  # the bytes as they come (text mode would fold \r\n); a test's stand-in has none
            data = (stdin.buffer.read(MAX_VALUE_BYTES + 1) if hasattr(stdin, "buffer")
                    else stdin.read(MAX_VALUE_BYTES + 1).encode())
        doc = app.secrets_set(args.env, args.name, value_from_input(data), args.file)
        output.text(f"{render.visible(doc['file'])}: {render.visible(doc['name'])} "
                    + ("added" if doc["created"] else "replaced"))
        for warning in doc["warnings"]:
            output.err.write(f"autoops: warning: {warning}\n")
    elif sub == "unset":
        doc = app.secrets_unset(args.env, args.name, args.file)
        output.text(f"{render.visible(doc['file'])}: {render.visible(doc['name'])} removed")
    elif sub == "show":
        doc = {"env": args.env, "files": app.secrets.key_names(args.env)}
        output.text("\n".join(f"{render.visible(file)}:\n"
                              + "".join(f"  {render.visible(n)}\n" for n in names)
                              for file, names in doc["files"].items()).rstrip()
                    or f"{render.visible(args.env)}: no SOPS files")
    else:
        recipient = args.new_recipient or None
        doc = app.secrets_rotate(args.env, recipient, new_key=args.new_recipient == "")
        output.text(render.secrets_rotate(doc))
    output.document(doc)
    return ExitStatus.OK


def cmd_grant(app: Autoops, args: argparse.Namespace, output: Output, _in: TextIO) -> ExitStatus:
    sub = args.grant_command
    doc: Any
    if sub == "init-keys":
        doc = {"keys": app.grant_init_keys(args.env)}
        output.text("\n".join(render.grant_key(k) for k in doc["keys"]))
    elif sub == "create":
        doc = app.grant_create(
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
        doc = app.grant_revoke(args.grant_id, args.reason, args.actor)
        output.text(f"{render.visible(doc['id'])}: revoked by {render.visible(doc['revoked_by'])}: "
                    f"{render.visible(doc['revoke_reason'])}")
    output.document(doc)
    return ExitStatus.OK


def cmd_approvals(app: Autoops, args: argparse.Namespace, output: Output,
                  _in: TextIO) -> ExitStatus:
    docs = app.approval_list(pending_only=args.pending)
    output.text(render.approval_table(docs))
    output.document({"requests": docs})
    return ExitStatus.OK


def cmd_approve(app: Autoops, args: argparse.Namespace, output: Output, _in: TextIO) -> ExitStatus:
    approve = args.command == "approve"
    doc = app.approval_decide(args.request_id, approve=approve,
                              reason=None if approve else args.reason, actor=args.actor)
    output.text(render.approval_text(doc))
    output.document(doc)
    return ExitStatus.OK


def cmd_halt(app: Autoops, args: argparse.Namespace, output: Output, _in: TextIO) -> ExitStatus:
    if args.command == "halt":
        doc = app.halt(args.env, args.reason, args.actor, wait=args.wait, against=args.against)
        output.text(render.halt_text(doc))
    else:
        doc = app.resume(args.env, args.reason, args.actor, against=args.against)
        output.text(render.resume_text(doc))
    output.document(doc)
    return ExitStatus.OK


def cmd_status(app: Autoops, _args: argparse.Namespace, output: Output,
               _in: TextIO) -> ExitStatus:
    doc = app.status()
    output.text(render.status_text(doc))
    output.document(doc)
    return ExitStatus.OK


def cmd_inventory(app: Autoops, _args: argparse.Namespace, output: Output,
                  _in: TextIO) -> ExitStatus:
    doc = app.inventory_check()
    output.text("inventories: OK (" + ", ".join(
        f"{env}: {len(hosts)} host(s)" for env, hosts in doc["environments"].items())
        + "; no machine in two environments)")
    output.document(doc)
    return ExitStatus.OK


def cmd_policy(app: Autoops, args: argparse.Namespace, output: Output, _in: TextIO) -> ExitStatus:
    doc = app.effective_policy(args.env)
    output.text(render.policy_text(doc["environments"]))
    output.document(doc)
    return ExitStatus.OK


COMMANDS: dict[str, Callable[[Autoops, argparse.Namespace, Output, TextIO], ExitStatus]] = {
    "list": cmd_list, "show": cmd_show, "plan": cmd_plan, "run": cmd_run, "audit": cmd_audit,
    "lab": cmd_lab, "secrets": cmd_secrets, "grant": cmd_grant, "approvals": cmd_approvals,
    "approve": cmd_approve, "reject": cmd_approve, "halt": cmd_halt, "resume": cmd_halt,
    "status": cmd_status, "policy": cmd_policy, "inventory": cmd_inventory,
}


def main(argv: Sequence[str] | None = None) -> int:
    return int(program(sys.argv[1:] if argv is None else argv, sys.stdout, sys.stderr, sys.stdin))


# One line, like every remedy: VERB is an action's vm-safe verb (`autoops show ACTION`),
# HOST one inventory host, ENV defaults to local (never production).
VM_SAFE_USAGE = ("Usage: vm-safe VERB HOST [KEY=VALUE ...] [--env ENV] [--check] [--json] "
                 "(verbs: `autoops list`; --env defaults to local, never production).")


def vm_safe_argv(argv: Sequence[str]) -> list[str]:
    """Translate ``vm-safe VERB HOST k=v … [--env E]`` into ``autoops run`` arguments."""
    words = list(argv)
    if not words or words[0] in {"-h", "--help"}:
        raise BadInputError("vm-safe needs a verb and a host", remedy=VM_SAFE_USAGE)
    flags = [w for w in words if w.startswith("--")]
    env = "local"
    if "--env" in words:
        idx = words.index("--env")
        if idx + 1 >= len(words):
            raise BadInputError("--env needs a value", remedy=VM_SAFE_USAGE)
        env = words[idx + 1]
        del words[idx:idx + 2]
        flags.remove("--env")
    positional = [w for w in words if not w.startswith("--")]
    unknown = set(flags) - {"--check", "--json"}
    if unknown or len(positional) < 2:
        raise BadInputError(f"vm-safe: cannot read {' '.join(argv)!r}", remedy=VM_SAFE_USAGE)
    verb, host, *pairs = positional
    if any(ch in host for ch in ":&!*,[]~^$"):
        raise BadInputError(f"vm-safe acts on one host; {host!r} is a pattern",
                            remedy="Use `autoops run --limit PATTERN` for several hosts.")
    out = ["run", verb, "--env", env, "--limit", host, "--one-host", *flags]
    for pair in pairs:
        out += ["-p", pair]
    return out


def vm_safe_program(argv: Sequence[str], out: TextIO, err: TextIO, stdin: TextIO) -> ExitStatus:
    try:
        translated = vm_safe_argv(argv)
    except AutoopsError as exc:
        return report_error(exc, Output("--json" in argv, out, err))
    return program(translated, out, err, stdin)


def vm_safe_main(argv: Sequence[str] | None = None) -> int:
    return int(vm_safe_program(sys.argv[1:] if argv is None else argv,
                               sys.stdout, sys.stderr, sys.stdin))
