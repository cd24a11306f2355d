"""Set-up commands: ``service install|status|uninstall`` (as root) and ``init DIR``."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autoops.cli.args import Parser
from autoops.cli.output import Output
from autoops.errors import ServiceRefusedError
from autoops.exits import ExitStatus
from autoops.settings import SERVICE_CONFIG_PATH, Settings


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    svc = sub.add_parser("service", parents=[common],
                         help="service mode: a service account reached through sudo (as root)")
    ssub = svc.add_subparsers(dest="service_command", required=True, parser_class=Parser)
    config = Parser(add_help=False)
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
    install.add_argument("--metrics-dir", type=Path,
                         help="node_exporter's textfile directory for `autoops metrics`")
    ssub.add_parser("uninstall", parents=[common, config],
                    help="remove launcher, sudoers entry and config (keeps account and state)")
    ssub.add_parser("status", parents=[common, config], help="check an installation")

    init = sub.add_parser("init", parents=[common],
                          help="lay out an operations repository of your own in DIR")
    init.add_argument("dir", type=Path, metavar="DIR", help="a new or empty directory")


def cmd_service(args: argparse.Namespace, output: Output, _settings: Settings | None) -> ExitStatus:
    from autoops.setup import service  # noqa: PLC0415 - only set-up needs it

    sub = args.service_command
    if sub == "install":
        doc = service.install(service.InstallOptions(
            project_dir=args.project.resolve(), python=args.python, user=args.user,
            operators=args.group, home=args.home, state_dir=args.state_dir,
            config_dir=args.config_dir, launcher=args.launcher, sudoers=args.sudoers,
            config=args.config, witness=args.witness,
            metrics_dir=args.metrics_dir.resolve() if args.metrics_dir else None))
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


def cmd_init(args: argparse.Namespace, output: Output, settings: Settings | None) -> ExitStatus:
    """Lay out DIR from what this installation ships; same-user only (it reads no project)."""
    from autoops.setup import init  # noqa: PLC0415 - only set-up needs it

    if (settings or Settings.from_environ()).service is not None:  # files as the service user
        raise ServiceRefusedError("`autoops init` is not available in service mode",
                                  remedy="Run `autoops init DIR` as yourself, then "
                                         "`autoops service install --project DIR` as root.")
    source = init.shipped_source()
    dest = args.dir.expanduser().absolute()
    files = init.lay_out(dest, source=source)
    hint = f"export AUTOOPS_PROJECT_DIR={shlex.quote(str(dest))}"
    output.text(f"{dest}: {len(files)} files laid out from {source}\n"
                f"next: {hint}\n      autoops list")
    output.document({"dest": str(dest), "source": str(source), "next": hint,
                     "files": [path.relative_to(dest).as_posix() for path in files]})
    return ExitStatus.OK


SETUP_COMMANDS: dict[str, Callable[[argparse.Namespace, Output, Settings | None], ExitStatus]] = {
    "service": cmd_service, "init": cmd_init}
"""Commands that run before (and without) a project or the engine."""

