"""``autoops nodes list|check``: an environment's execution nodes, and whether they answer."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, TextIO

from autoops.cli import render
from autoops.cli.output import Handler, Output
from autoops.exits import ExitStatus

if TYPE_CHECKING:
    from autoops.engine import Autoops


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    nodes = sub.add_parser("nodes", parents=[common],
                           help="execution nodes: where an environment's runs execute")
    nodes.add_argument("nodes_command", choices=["list", "check", "trust"],
                       help="list: what nodes/ENV.yml declares; check: ask each node over SSH; "
                            "trust: the public key a node installs to take ENV's runs")
    nodes.add_argument("--env", required=True)


def cmd_nodes(app: Autoops, args: argparse.Namespace, output: Output, _in: TextIO) -> ExitStatus:
    from autoops.core import nodes  # noqa: PLC0415 -- only this command needs it

    env = app.context.scope(args.env)
    if args.nodes_command == "trust":
        return _trust(app, env, output)
    declared = app.context.nodes(env)
    if args.nodes_command == "list":
        rows = [n.to_dict() for n in declared.nodes]
    else:
        environ = app.settings.child_environ()
        trust = app.context.node_trust(env)
        rows = [nodes.probe(n, environ, env, trust) for n in declared.nodes]
    if not rows:
        output.text(f"{env}: no execution nodes (nodes/{env}.yml); its runs execute here")
    else:
        columns = ("name", "host", "port", "user", "autoops", "ok", "problem")
        shown = [c for c in columns if any(c in r for r in rows)]
        output.text(render.table([tuple("" if r.get(c) is None else str(r.get(c)) for c in shown)
                                  for r in rows], tuple(c.upper() for c in shown)))
    output.document({"env": env, "nodes": rows,
                     "lend_identities": [str(p) for p in declared.lend_identities]})
    failed = args.nodes_command == "check" and not all(r.get("ok") for r in rows)
    return ExitStatus.UNREACHABLE if failed else ExitStatus.OK


def _trust(app: Autoops, env: str, output: Output) -> ExitStatus:
    """Print the public key (made on first use) and where a node installs it."""
    from autoops.core import nodes  # noqa: PLC0415

    public = app.context.node_trust(env).decode()
    where = f"~/.config/autoops/node-trust/{env}.pub"
    name_file = f"~/.config/autoops/node-trust/{env}.name"
    names = [n.name for n in app.context.nodes(env).nodes]
    output.text(f"# Install on each of {env}'s execution nodes, for the account runs log in as,\n"
                f"# as {where} (it signs nothing; the private half stays here):\n{public}"
                f"# and write the node's own name in nodes/{env}.yml into {name_file}\n"
                f"# (a job signed for one node is refused by every other):\n"
                + "".join(f"#   on {n}: echo {n} > {name_file}\n" for n in names))
    output.document({"env": env, "public_key": public, "install_as": where,
                     "name_as": name_file, "names": names,
                     "fingerprint": nodes.fingerprint(public.encode())})
    return ExitStatus.OK


COMMANDS: dict[str, Handler] = {"nodes": cmd_nodes}
