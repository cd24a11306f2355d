"""The pre-flight guard (``autoops.ops.guard``): the gate inside every catalog playbook.

Runs on the controller only (it never connects to a host). What it sees of the launch —
the command line's playbook, inventories, tags and extra variables, the play's hosts and
their connection variables — goes to :func:`autoops.frontdoors.guard.admit`, which decides;
a refusal fails the task, and the guard play (``any_errors_fatal``) ends the playbook.
"""

from __future__ import annotations

import os
from typing import Any

from ansible import context
from ansible.plugins.action import ActionBase
from ansible.utils.vars import load_extra_vars
from ansible.vars.reserved import get_reserved_names

# Command-line options that would change how hosts are reached (inventory variables win
# over -u and --private-key, which AWX's machine credentials use; not over these).
_CONNECTION_OPTIONS = ("connection", "ssh_common_args", "ssh_extra_args", "sftp_extra_args",
                       "scp_extra_args", "become_user")


# What Ansible adds to every host's variables itself (not the inventory's).
_MAGIC = frozenset({
    "ansible_check_mode", "ansible_config_file", "ansible_diff_mode", "ansible_facts",
    "ansible_forks", "ansible_inventory_sources", "ansible_limit", "ansible_playbook_python",
    "ansible_run_tags", "ansible_skip_tags", "ansible_verbosity", "ansible_version",
    "ansible_play_batch", "ansible_play_hosts", "ansible_play_hosts_all", "ansible_play_name",
    "ansible_play_role_names", "ansible_role_names", "ansible_dependent_role_names",
    "ansible_search_path", "ansible_collection_name", "group_names", "groups", "hostvars",
    "inventory_dir", "inventory_file", "inventory_hostname", "inventory_hostname_short",
    "playbook_dir", "role_names", "omit", "environment", "ansible_local"})


def _inventory_vars(hostvars: Any, host: str, extra: dict[str, Any]) -> dict[str, Any]:
    """A host's variables from the inventory, raw: no magic, reserved or extra variables."""
    raw = dict(hostvars.raw_get(host)) if hostvars is not None else {}
    reserved = get_reserved_names() | _MAGIC
    return {k: v for k, v in raw.items() if k not in reserved and k not in extra}


def _admitted(settings: Any, launch: Any, admit: Any, admit_ticketed: Any,
              error: type[Exception]) -> Any:
    """A run autoops decided passes on its ticket without the engine; anything else (and a
    ticket that does not hold, to be recorded) goes through the whole gate."""
    if "autoops_ticket" in launch.extra_vars:
        try:
            return admit_ticketed(settings, launch)
        except error:
            pass
    from autoops.engine import Autoops  # noqa: PLC0415 -- the whole gate

    return admit(Autoops(settings), launch)


class ActionModule(ActionBase):  # type: ignore[misc] # untyped base
    """Decide on the controller; no module is sent anywhere."""

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        result["changed"] = False
        try:
            from autoops.errors import AutoopsError  # noqa: PLC0415 -- only where Ansible runs it
            from autoops.frontdoors.guard import Launch, admit, admit_ticketed  # noqa: PLC0415
            from autoops.settings import Settings  # noqa: PLC0415
        except ImportError as exc:
            result.update(failed=True, msg=f"AUTOOPS-GUARD-REFUSED: autoops is not importable "
                          f"here ({exc}); the guard fails closed — nothing ran")
            return result
        hosts = tuple(str(h) for h in task_vars.get("ansible_play_hosts_all", ()))
        extra_vars = dict(load_extra_vars(self._loader))
        hostvars = task_vars.get("hostvars")
        launch = Launch(
            action=str(self._task.args.get("action", "")),
            playbooks=tuple(str(p) for p in context.CLIARGS.get("args", ())),
            inventories=tuple(str(i) for i in context.CLIARGS.get("inventory") or ()),
            extra_vars=extra_vars,
            hosts=hosts,
            # as written, never templated: the guard must not evaluate what it checks
            hostvars={h: _inventory_vars(hostvars, h, extra_vars) for h in hosts},
            check_mode=bool(context.CLIARGS.get("check", False)),  # the run's, not this task's
            options={"tags": tuple(context.CLIARGS.get("tags") or ()),
                     "skip_tags": tuple(context.CLIARGS.get("skip_tags") or ()),
                     "start_at_task": context.CLIARGS.get("start_at_task"),
                     "step": context.CLIARGS.get("step"),
                     **{name: context.CLIARGS.get(name) for name in _CONNECTION_OPTIONS}},
            pid=os.getppid(),  # the worker's parent: ansible-playbook, which holds the run
            limit=context.CLIARGS.get("subset") or None,
        )
        try:
            admitted = _admitted(Settings.from_environ(), launch, admit, admit_ticketed,
                                 AutoopsError)
        except AutoopsError as error:
            result.update(failed=True, autoops_error={**error.to_dict(), **error.details},
                          msg=f"{error.code}: {error.message} — {error.remedy}")
            return result
        result.update(autoops_guard=admitted.to_dict(),
                      msg=f"run {admitted.run_id} admitted ({admitted.mode}) as "
                          f"{admitted.actor} in {admitted.env}")
        return result
