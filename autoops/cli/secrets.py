"""``secrets init|edit|set|unset|show|rotate|check``: SOPS files, one age key per environment."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, TextIO

from autoops.cli import render
from autoops.cli.args import Parser
from autoops.cli.output import Handler, Output
from autoops.errors import SecretsCheckFailedError
from autoops.exits import ExitStatus

if TYPE_CHECKING:
    from autoops.engine import Autoops


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    secrets = sub.add_parser("secrets", parents=[common],
                             help="SOPS/age-encrypted secrets, one key per environment")
    ssub = secrets.add_subparsers(dest="secrets_command", required=True, parser_class=Parser)
    one_env = Parser(add_help=False)
    one_env.add_argument("--env", required=True)
    ssub.add_parser("init", parents=[common, one_env],
                    help="key pair, sops-rules.yaml rule and secrets file for ENV")
    which = Parser(add_help=False)
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


def cmd_secrets(app: Autoops, args: argparse.Namespace, output: Output,
                stdin: TextIO) -> ExitStatus:
    sub = args.secrets_command
    if sub == "check":
        return _check(app, output)
    if sub == "init":
        doc = app.secrets.init(args.env)
        output.text(render.secrets_init(doc))
    elif sub == "edit":  # sops and the editor use this process's stdin, stdout and stderr
        terminal = stdin.isatty() and output.out.isatty() and output.err.isatty()
        doc = app.secrets.edit(args.env, args.file, terminal=terminal)
        output.text(f"{render.visible(doc['file'])}: " + (
            f"re-encrypted (added {', '.join(map(render.visible, doc['added'])) or 'nothing'}, "
            f"removed {', '.join(map(render.visible, doc['removed'])) or 'nothing'})"
            if doc["changed"] else "unchanged"))
    elif sub == "set":
        doc = app.secrets.set(args.env, args.name, _value(app, args.name, stdin, output),
                              args.file)
        output.text(f"{render.visible(doc['file'])}: {render.visible(doc['name'])} "
                    + ("added" if doc["created"] else "replaced"))
        for warning in doc["warnings"]:
            output.err.write(f"autoops: warning: {warning}\n")
    elif sub == "unset":
        doc = app.secrets.unset(args.env, args.name, args.file)
        output.text(f"{render.visible(doc['file'])}: {render.visible(doc['name'])} removed")
    elif sub == "show":
        doc = app.secrets.key_names(args.env)
        output.text("\n".join(f"{render.visible(file)}:\n"
                              + "".join(f"  {render.visible(n)}\n" for n in names)
                              for file, names in doc["files"].items()).rstrip()
                    or f"{render.visible(args.env)}: no SOPS files")
    else:
        recipient = args.new_recipient or None
        doc = app.secrets.rotate(args.env, recipient, new_key=args.new_recipient == "")
        output.text(render.secrets_rotate(doc))
    output.document(doc)
    return ExitStatus.OK


def _value(app: Autoops, name: str, stdin: TextIO, output: Output) -> bytes:
    """The secret's bytes: typed without echo at a terminal, else stdin as it comes."""
    if stdin.isatty():  # a person typing: no echo (getpass reads the terminal)
        from getpass import getpass  # noqa: PLC0415 - only this command prompts

        return getpass(f"{name} (input hidden): ", stream=output.err).encode()
    # the bytes as they come (text mode would fold \r\n); a test's stand-in has no buffer
    most = app.secrets.max_value_bytes + 1
    return stdin.buffer.read(most) if hasattr(stdin, "buffer") else stdin.read(most).encode()


def _check(app: Autoops, output: Output) -> ExitStatus:
    try:
        doc = app.secrets.check()
    except SecretsCheckFailedError as failed:
        if not output.json_mode:
            output.err.write("".join(f"{render.secret_finding(f)}\n"
                                     for f in failed.details["findings"]))
        raise
    output.document(doc)
    output.text("secrets check: OK (SOPS files encrypted per environment; no plaintext "
                "secret found)")
    return ExitStatus.OK


COMMANDS: dict[str, Handler] = {"secrets": cmd_secrets}
