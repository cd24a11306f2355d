"""The pre-flight guard: what the first play of every catalog playbook decides.

AWX, Semaphore and a plain ``ansible-playbook`` run the catalog's playbooks themselves, so
the gate has to be inside them: the ``autoops.ops.guard`` action (the first play, on the
controller) hands :func:`admit` what it sees of the launch, and a refusal fails that play
before any host task. When ``autoops`` is the caller the run was decided already and
carries a ticket (:mod:`autoops.guard.tickets`): it passes at once, and only that run.

For everyone else the guard checks, in order: launch options that could skip it (tags,
skips, start-at-task, step); that the playbook is the action's own; the extra variables
(only the action's parameters, a grant or approval, and the front-end's identity
variables — never ``ansible_*``, anything undeclared or a template); the environment (one
inventory of the project, or a front-end's copy whose hosts all say ``autoops_env`` and
whose variables equal the project's); then the whole gate (:meth:`autoops.services.running.Runs.admit`). Every
refusal is audited.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoops.core import inventory
from autoops.core.catalog import Action, Catalog, verdicts
from autoops.errors import AutoopsError, ExtraVarRefusedError, GuardRefusedError
from autoops.services import ticketing

if TYPE_CHECKING:
    from autoops.core.plan import Plan
    from autoops.engine import Autoops
    from autoops.settings import Settings

# What autoops itself passes to a run it decided (valid only with its ticket).
RUN_VARS = frozenset({"autoops_run_id", "autoops_actor", "autoops_env", "autoops_action",
                      "autoops_check_mode", "autoops_ticket", "autoops_hosts"})
# What a front-end presents in place of a person now.
PRESENTED = frozenset({"autoops_grant", "autoops_approval"})
# The identity variables AWX (and Tower before it) sets, and Semaphore's one variable.
FRONTEND_VAR = re.compile(r"^(awx|tower)_[a-z0-9_]{1,48}$")
SEMAPHORE_VAR = "semaphore_vars"
_ACTOR_JUNK = re.compile(r"[^A-Za-z0-9._+-]+")
_NAMED_LIMIT = 480  # a --limit autoops takes is at most 512 characters


@dataclass(frozen=True)
class Launch:
    """What the guard sees of the ansible-playbook run it guards."""

    action: str  # the action the playbook's guard play names
    playbooks: tuple[str, ...]  # the playbook paths on the command line
    inventories: tuple[str, ...]  # the inventory sources on the command line
    extra_vars: Mapping[str, Any]  # exactly what -e / the extravars file passed
    hosts: tuple[str, ...]  # every host the playbook targets (after --limit)
    hostvars: Mapping[str, Mapping[str, Any]]  # each host's inventory variables, raw
    check_mode: bool
    options: Mapping[str, Any] = field(default_factory=dict)  # tags, skip_tags, start_at_task…
    pid: int = 0  # the ansible-playbook process that holds the run
    limit: str | None = None  # the launch's own --limit, as given


@dataclass(frozen=True)
class Admitted:
    """A run the guard let through: ``autoops`` (decided already) or ``frontdoor``."""

    run_id: str
    mode: str
    env: str
    actor: str
    hosts: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "mode": self.mode, "env": self.env,
                "actor": self.actor, "hosts": list(self.hosts)}


def admit_ticketed(settings: Settings, launch: Launch) -> Admitted:
    """The quick path for a run autoops itself decided: its ticket, and no engine.

    The same checks as :func:`admit` makes of a ticketed launch; a refusal raises here
    and the caller goes the long way (:func:`admit`), which records it.
    """
    check_options(launch.options)
    catalog = Catalog.load(settings.catalog_path, settings.project_dir,
                           verdicts(settings.cache_dir))
    action = catalog.get(launch.action)
    check_playbook(action, launch.playbooks, settings.project_dir)
    extra = launch.extra_vars
    run_id, env = str(extra.get("autoops_run_id", "")), str(extra.get("autoops_env", ""))
    actor = ticketing.check(settings, None, str(extra["autoops_ticket"]), run_id=run_id,
                            action=action.name, env=env, check_mode=launch.check_mode,
                            params={k: v for k, v in extra.items() if k not in RUN_VARS},
                            hosts=launch.hosts, playbook_pid=launch.pid,
                            actor=str(extra.get("autoops_actor", "")), now=datetime.now(UTC))
    return Admitted(run_id, "autoops", env, actor, launch.hosts)


def admit(app: Autoops, launch: Launch) -> Admitted:
    """Let the launch through, or raise the refusal (recorded in the audit log)."""
    env: str | None = None
    try:
        check_options(launch.options)
        action = app.catalog.get(launch.action)
        check_playbook(action, launch.playbooks, app.settings.project_dir)
        if "autoops_ticket" in launch.extra_vars:
            return _ticketed(app, action, launch)
        try:  # first, so that a refusal of the extra variables is recorded where it aimed
            env, foreign = env_of(launch, app.settings.inventories_dir)
        finally:
            check_extra_vars(action, launch.extra_vars)
        return _front_door(app, action, env, foreign, launch)
    except AutoopsError as error:
        if "run_id" not in error.details:  # the gate's own refusals are audited already
            _record_refusal(app, launch, env, error)
        raise
    except Exception as exc:  # whatever it is, nothing runs, and that is recorded
        unexpected = GuardRefusedError(f"the guard could not check this launch "
                                       f"({type(exc).__name__}: {exc}); nothing ran")
        _record_refusal(app, launch, env, unexpected)
        raise unexpected from exc


def check_options(options: Mapping[str, Any]) -> None:
    """Refuse launch options that select tasks: a run is the whole playbook or nothing."""
    tags = tuple(options.get("tags") or ("all",))
    chosen = {"tags": tags != ("all",), "skip_tags": bool(options.get("skip_tags")),
              "start_at_task": bool(options.get("start_at_task")),
              "step": bool(options.get("step")),
              # how hosts are reached is the inventory's to say (-u and --private-key lose
              # to its ansible_user and key; these would not)
              "connection": options.get("connection") not in (None, "", "ssh", "smart"),
              "become_user": options.get("become_user") not in (None, "", "root"),
              **{name: bool(options.get(name)) for name in (
                  "ssh_common_args", "ssh_extra_args", "sftp_extra_args", "scp_extra_args")}}
    used = [name for name, on in chosen.items() if on]
    if used:
        raise GuardRefusedError(f"launch option {', '.join(used)} would run part of the "
                                "playbook or reach hosts otherwise than the inventory says; "
                                "nothing ran")


def check_playbook(action: Action, playbooks: Sequence[str], project_dir: Path) -> None:
    """The launched playbook must be the one the catalog names for this action."""
    own = Path(os.path.abspath(project_dir / action.playbook))  # noqa: PTH100 -- lexical
    # lexically, not resolved: a symbolic link elsewhere would bring its own roles/ along
    given = [Path(os.path.abspath(p)) for p in playbooks]  # noqa: PTH100
    if given != [own]:
        shown = ", ".join(str(p) for p in given) or "none"
        raise GuardRefusedError(f"{action.name}'s guard ran in {shown}, but the catalog's "
                                f"playbook for {action.name} is {own}; nothing ran")


def check_extra_vars(action: Action, extra: Mapping[str, Any]) -> None:
    """Only the action's parameters, a grant, an approval and front-end identity pass."""
    declared = set(action.schema_for(None).get("properties", {}))
    refused = sorted(name for name in extra
                     if name not in declared and name not in PRESENTED
                     and name != SEMAPHORE_VAR and not FRONTEND_VAR.fullmatch(name))
    if refused:
        overrides = [n for n in refused if n.startswith("ansible_")]
        undeclared = [n for n in refused if n not in overrides]
        parts = ([f"connection overrides {', '.join(overrides)}"] if overrides else []) + \
                ([f"undeclared extra variables {', '.join(undeclared)}"] if undeclared else [])
        raise ExtraVarRefusedError(f"{action.name} refuses {' and '.join(parts)}; nothing ran",
                                   details={"refused": refused})
    templated = sorted(name for name, value in extra.items() if _holds_template(value))
    if templated:  # a plain -e value is a trusted template to Ansible: it would be evaluated
        raise ExtraVarRefusedError(
            f"{action.name} refuses extra variables holding a template ({{{{ … }}}}, {{% … %}}): "
            f"{', '.join(templated)}; Ansible would evaluate them; nothing ran",
            details={"refused": templated})


def _holds_template(value: Any) -> bool:
    if isinstance(value, str):
        return any(mark in value for mark in ("{{", "{%", "{#"))
    if isinstance(value, Mapping):
        return any(_holds_template(k) or _holds_template(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_template(v) for v in value)
    return False


def env_of(launch: Launch, inventories_dir: Path) -> tuple[str, bool]:
    """The one environment the launch targets, and whether its inventory is a foreign copy.

    An inventory of the project (``-i inventories/ENV``) names it; a front-end's own
    inventory (AWX syncs the project's into its database) must have every host say the
    same ``autoops_env``, and is then compared with the project's (:func:`check_inventory`).
    """
    if len(launch.inventories) != 1:
        raise GuardRefusedError(
            f"{len(launch.inventories)} inventory sources; a run reads exactly one "
            "environment's inventory; nothing ran")
    named = _env_dir(Path(launch.inventories[0]), inventories_dir.resolve())
    if named is not None:
        return named, False
    said = {str(launch.hostvars.get(h, {}).get("autoops_env", "")) for h in launch.hosts}
    if len(said) == 1 and "" not in said:
        return said.pop(), True
    raise GuardRefusedError(
        "cannot tell which one environment this run targets (hosts say "
        f"{sorted(said - {''}) or 'nothing'} for autoops_env); nothing ran",
        remedy="Use one environment's inventory (the project's inventories/ENV, where every "
               "host has autoops_env).")


def _env_dir(source: Path, root: Path) -> str | None:
    path = source.resolve()
    for candidate in (path, *path.parents):
        if candidate.parent == root:
            return candidate.name
    return None


def origin_of(extra: Mapping[str, Any]) -> dict[str, Any]:
    """Which front-end launched the run, as it says: user, job, template."""
    def var(name: str) -> Any:
        return extra.get(f"awx_{name}", extra.get(f"tower_{name}"))

    if var("job_id") is not None:
        return {"frontend": "awx", "user": var("user_name"), "job_id": var("job_id"),
                "template": var("job_template_name"), "inventory": var("inventory_name"),
                "launch_type": var("job_launch_type"), "workflow_job_id": var("workflow_job_id")}
    task = (extra.get(SEMAPHORE_VAR) or {}).get("task_details") \
        if isinstance(extra.get(SEMAPHORE_VAR), Mapping) else None
    if isinstance(task, Mapping):
        return {"frontend": "semaphore", "user": task.get("username"), "job_id": task.get("id"),
                "template": task.get("template_name") or task.get("template_id")}
    return {"frontend": "ansible-playbook", "user": None}


def actor_of(origin: Mapping[str, Any]) -> str | None:
    """``USER@awx`` / ``USER@semaphore``; None (the Unix user) for a plain ansible-playbook."""
    user = origin.get("user")
    if not user or origin["frontend"] == "ansible-playbook":
        return None
    name = _ACTOR_JUNK.sub("-", str(user)).strip("-.")[:48] or "unknown"
    return f"{name}@{origin['frontend']}"


def _ticketed(app: Autoops, action: Action, launch: Launch) -> Admitted:
    """A run autoops decided: its ticket must be this run's, and the run still running.

    On an execution node the ticket is the controller's signature for this run and content.
    """
    extra = launch.extra_vars
    run_id, env = str(extra.get("autoops_run_id", "")), str(extra.get("autoops_env", ""))
    actor = app.runs.ticketed(str(extra["autoops_ticket"]), run_id=run_id, action=action.name,
                              env=env, check_mode=launch.check_mode,
                              params={k: v for k, v in extra.items() if k not in RUN_VARS},
                              hosts=launch.hosts, playbook_pid=launch.pid,
                              actor=str(extra.get("autoops_actor", "")))
    return Admitted(run_id, "autoops", env, actor, launch.hosts)


def _front_door(app: Autoops, action: Action, env: str, foreign: bool,
                launch: Launch) -> Admitted:
    extra = launch.extra_vars
    declared = set(action.schema_for(None).get("properties", {}))
    origin = origin_of(extra)
    if origin["frontend"] == "awx" and str(origin["job_id"]) != (app.settings.awx_job_id or ""):
        raise GuardRefusedError(
            f"awx_* variables name job {origin['job_id']}, but this is not that AWX job "
            f"(JOB_ID {app.settings.awx_job_id or 'unset'}); nothing ran",
            remedy="Launch it from AWX, or without awx_* variables.")
    from autoops.engine import RunRequest  # noqa: PLC0415 - the long way only

    request = RunRequest(
        action=action.name, env=env, params={k: v for k, v in extra.items() if k in declared},
        limit=_limit_of(launch), check_mode=launch.check_mode,
        actor=actor_of(origin), grant=_text(extra.get("autoops_grant")),
        approval=_text(extra.get("autoops_approval")))

    def inspect(the_plan: Plan) -> None:
        if set(the_plan.hosts) != set(launch.hosts):
            raise GuardRefusedError(
                f"this launch targets {len(launch.hosts)} hosts, but its limit selects "
                f"{len(the_plan.hosts)} in inventories/{env}; nothing ran",
                remedy=f"Sync the front-end's inventory from inventories/{env}.")
        if foreign:
            secrets = app.context.secret_store.key_names(env).values()
            check_inventory(env, launch, inventory.host_vars(
                app.settings.project_dir, the_plan.inventory, app.context.content.environ),
                frozenset(name for names in secrets for name in names))

    attempt = app.runs.admit(request, origin, launch.pid, inspect=inspect)
    return Admitted(attempt.run_id, "frontdoor", env, attempt.actor, attempt.plan.hosts)


def _limit_of(launch: Launch) -> str | None:
    """The plan's limit: the launch's hosts by name, or its own pattern when they are many.

    Either way the plan's hosts must then be the launch's (checked in ``inspect``).
    """
    named = ",".join(sorted(launch.hosts))
    return named if len(named) <= _NAMED_LIMIT else launch.limit


def check_inventory(env: str, launch: Launch, expected: Mapping[str, Mapping[str, Any]],
                    secrets: frozenset[str] = frozenset()) -> None:
    """A front-end's copy of the inventory must say, for each host, what the project's does.

    Every variable counts (connection, escalation, the roles' settings), compared as
    written; only the environment's SOPS secrets are left out (decrypted at task time,
    they are never in a listing).
    """
    for host in launch.hosts:
        if host not in expected:
            raise GuardRefusedError(f"host {host} is not in inventories/{env}; "
                                    "nothing ran",
                                    remedy=f"Sync the front-end's inventory from "
                                           f"inventories/{env}.")
        given = {k: v for k, v in launch.hostvars.get(host, {}).items() if k not in secrets}
        want = {k: v for k, v in expected[host].items() if k not in secrets}
        reaches, says = inventory.address_of(host, given), inventory.address_of(host, want)
        if reaches != says:
            raise GuardRefusedError(
                f"host {host} reaches {reaches} here, but inventories/{env} says "
                f"{says}; nothing ran",
                remedy=f"Sync the front-end's inventory from inventories/{env}.")
        differ = sorted(k for k in given.keys() | want.keys() if given.get(k) != want.get(k))
        if differ:
            raise GuardRefusedError(
                f"host {host}'s variables differ from inventories/{env}: "
                f"{', '.join(differ[:10])}; nothing ran",
                remedy=f"Sync the front-end's inventory from inventories/{env}.")


def _text(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None


def _record_refusal(app: Autoops, launch: Launch, env: str | None,
                    error: AutoopsError) -> None:
    """Audit a launch refused before it became a run (no plan exists to record)."""
    from autoops.services.context import new_run_id  # noqa: PLC0415 - the long way only

    origin = origin_of(launch.extra_vars)
    ctx = app.context
    actor = actor_of(origin) or ctx.settings.os_user
    run_id = new_run_id(ctx.clock())
    error.details.update(run_id=run_id)
    ctx.audit.append(run_id=run_id, type_="guard.refused", actor=actor, env=env or "unknown",
                     action=launch.action, data={
                         "origin": origin, "error": error.to_dict(),
                         "extra_vars": sorted(launch.extra_vars), "hosts": list(launch.hosts),
                         "playbooks": list(launch.playbooks), "os_user": ctx.settings.os_user})


def record_unguarded(app: Autoops, playbook: str, play: str, options: Mapping[str, Any]) -> None:
    """Audit a guarded playbook stopped because its guard never ran (the callback's stop)."""
    error = GuardRefusedError(f"the pre-flight guard of {playbook} did not run (launch "
                              f"options {dict(options)}); play {play!r} was stopped before "
                              "it started; nothing ran")
    name = Path(playbook).name
    action = next((a.name for a in app.catalog.actions.values()
                   if Path(a.playbook).name == name), "unknown")
    _record_refusal(app, Launch(action=action, playbooks=(playbook,), inventories=(),
                                extra_vars={}, hosts=(), hostvars={}, check_mode=False,
                                options=options), None, error)
