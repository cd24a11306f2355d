"""Audit callback (``autoops.ops.audit``): a front-end's run, in autoops' audit log.

AWX and ansible-runner keep their own stdout callback, so this one is a notification
callback, enabled with ``callbacks_enabled`` (the project's ansible.cfg does). It cannot
stop anything — ansible-core turns a callback's exceptions into warnings — so the guard
play enforces and this only records. It stays silent until the guard admits a front-door
run (a run ``autoops`` started is audited by autoops from the event stream), then reports
every task result and the recap through :class:`autoops.services.reporting.Reports`.
"""

from __future__ import annotations

import time
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
---
name: audit
type: notification
short_description: Record a guarded front-end run in the autoops audit log
version_added: "1.2.0"
description:
  - After the pre-flight guard admits a run launched by AWX, Semaphore or ansible-playbook,
    records each task result and the play recap as hash-chained autoops audit records.
  - Needs the autoops Python package where Ansible runs.
requirements:
  - enable in ansible.cfg with callbacks_enabled
"""

_GUARD = frozenset({"autoops.ops.guard", "guard"})
_STATS = ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored")


class CallbackModule(CallbackBase):  # type: ignore[misc] # untyped base
    """Reports a front-door run's results; never changes what runs."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "autoops.ops.audit"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reports: Any = None
        self._started: dict[str, float] = {}
        self._guarded = False  # the playbook opens with the guard play
        self._admitted = False  # … and the guard let this run through
        self._playbook = ""

    def v2_playbook_on_start(self, playbook: Any) -> None:
        self._guarded = any(_has_guard(play) for play in playbook.get_plays())
        self._playbook = str(getattr(playbook, "_file_name", ""))

    def v2_playbook_on_play_start(self, play: Any) -> None:
        """The one stop a callback can make: a play of a guarded playbook, unguarded.

        Launch options such as ``--skip-tags always`` or ``--start-at-task`` skip the guard
        task without failing it; the next play must then not start. An exception would
        only be a warning, so this exits ansible-playbook (status 3) before that play.
        """
        if self._guarded and not self._admitted and not _has_guard(play):
            self._display.error(
                "AUTOOPS-GUARD-REFUSED: the pre-flight guard did not admit this run (was it "
                f"skipped?); play {play.get_name()!r} will not start — nothing ran")
            try:  # audited where possible; stopped whatever happens
                self._record_stop(play.get_name())
            finally:
                raise SystemExit(3)

    def _record_stop(self, play: str) -> None:
        from ansible import context  # noqa: PLC0415

        from autoops.engine import Autoops  # noqa: PLC0415 -- only when it stops a run
        from autoops.frontdoors.guard import record_unguarded  # noqa: PLC0415
        from autoops.settings import Settings  # noqa: PLC0415

        options = {k: context.CLIARGS.get(k) for k in ("tags", "skip_tags", "start_at_task",
                                                       "step")}
        record_unguarded(Autoops(Settings.from_environ()), self._playbook, play,
                         {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()})

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._started[task._uuid] = time.monotonic()
        halt = self._reports.halt() if self._reports is not None else None
        if halt is not None:  # an emergency stop: this task does not start
            status = self._reports.halted(halt)
            self._reports = None
            self._display.error(f"AUTOOPS-HALTED: {halt.describe()}; task "
                                f"{task.get_name()!r} and the rest will not start")
            raise SystemExit(status)

    def v2_runner_on_ok(self, result: Any) -> None:
        self._seen("runner_on_ok", result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._seen("runner_on_failed", result, ignore_errors=ignore_errors)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._seen("runner_on_skipped", result)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._seen("runner_on_unreachable", result)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        if self._reports is None:
            return
        per_host = {host: {key: int(getattr(stats, key, {}).get(host, 0)) for key in _STATS}
                    for host in stats.processed}
        self._reports.finished(per_host, completed=True)
        self._reports = None

    def _seen(self, event: str, result: Any, *, ignore_errors: bool = False) -> None:
        task = result._task
        if {task.action, getattr(task, "resolved_action", None)} & _GUARD:
            admitted = result._result.get("autoops_guard") if event == "runner_on_ok" else None
            self._admitted = self._admitted or isinstance(admitted, dict)
            if isinstance(admitted, dict) and admitted.get("mode") == "frontdoor":
                self._open(str(admitted["run_id"]))
            return
        if self._reports is None:
            return
        from autoops.run.runner import normalise  # noqa: PLC0415 -- only for admitted runs

        begun = self._started.get(task._uuid)
        normalised = normalise({"event": event, "event_data": {
            "host": result._host.get_name(), "task": task.get_name(),
            "task_action": task.action, "res": result._result, "ignore_errors": ignore_errors,
            "duration": round(time.monotonic() - begun, 3) if begun else None}})
        if normalised is not None:
            self._reports.result(normalised)

    def _open(self, run_id: str) -> None:
        from autoops.engine import Autoops  # noqa: PLC0415 -- only for admitted runs
        from autoops.settings import Settings  # noqa: PLC0415

        self._reports = Autoops(Settings.from_environ()).reports(run_id)


def _has_guard(play: Any) -> bool:
    """Whether the play runs the guard task (the first play of every catalog playbook)."""
    return any(getattr(task, "action", None) in _GUARD
               for block in play.tasks for task in getattr(block, "block", ()))
