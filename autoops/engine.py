"""The library's front door: one object composed of the services the CLI, cron and agents use.

``Autoops(settings).run(RunRequest(...))`` is the whole of a guarded run. Everything
else is a service with its own commands (``app.grants.create``, ``app.stop.halt``,
``app.audit.verify``, …), all built over one :class:`~autoops.services.context.Context`:
one settings object, one clock, one state database.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from autoops.core.catalog import Catalog
from autoops.core.plan import Plan
from autoops.core.policy import Decision
from autoops.guard.confirmation import Confirm
from autoops.services.context import Context
from autoops.services.deploynames import DEPLOY_ACTIONS, GATED_ACTIONS
from autoops.services.recovery import Recovery
from autoops.services.reporting import Reports
from autoops.services.requests import RunRequest, RunResult
from autoops.services.running import ResultCallback, Runs
from autoops.settings import Settings

if TYPE_CHECKING:
    from autoops.services.alerting import Alerts
    from autoops.services.approving import Approvals
    from autoops.services.auditing import Audit
    from autoops.services.deploying import Deploys
    from autoops.services.granting import Grants
    from autoops.services.healing import Healing
    from autoops.services.incidents import Incidents
    from autoops.services.metrics import Metrics
    from autoops.services.overview import Overview
    from autoops.services.scheduling import Scheduling
    from autoops.services.secrets import SecretsAdmin
    from autoops.services.stopping import EmergencyStop
    from autoops.services.watching import Watch

__all__ = ["Autoops", "RunRequest", "RunResult"]


class Autoops:
    """One project (catalog, policy, inventories) and one state directory.

    The run path (context, recovery, runs) is built at once; every other service when it
    is first used, so a run loads none of what it does not use (alerting, deploys, …).
    """

    def __init__(self, settings: Settings, clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self.context = Context(settings, clock)
        self.recovery = Recovery(self.context)
        self.runs = Runs(self.context, self.recovery)
        self.runs.finished.append(self._deploy_finished)  # record, audit, announce rollbacks
        self.runs.promotion_gate = self._promotion_gate  # before a deploy runs, and again later

    def _deploy_finished(self, result: RunResult, actor: str) -> None:
        if result.plan.action_name in DEPLOY_ACTIONS:
            self.deploys.finished(result, actor)

    def _promotion_gate(self, the_plan: Plan, source: str | None) -> dict[str, Any] | None:
        if source is None and the_plan.action_name not in GATED_ACTIONS:
            return None  # what the deploy service's gate says too, without loading it
        return self.deploys.gate(the_plan, source)

    @cached_property
    def approvals(self) -> Approvals:
        from autoops.services.approving import Approvals  # noqa: PLC0415

        return Approvals(self.context)

    @cached_property
    def grants(self) -> Grants:
        from autoops.services.granting import Grants  # noqa: PLC0415

        return Grants(self.context)

    @cached_property
    def stop(self) -> EmergencyStop:
        from autoops.services.stopping import EmergencyStop  # noqa: PLC0415

        return EmergencyStop(self.context, self.recovery)

    @cached_property
    def secrets(self) -> SecretsAdmin:
        from autoops.services.secrets import SecretsAdmin  # noqa: PLC0415

        return SecretsAdmin(self.context)

    @cached_property
    def audit(self) -> Audit:
        from autoops.services.auditing import Audit  # noqa: PLC0415

        return Audit(self.context, self.recovery)

    @cached_property
    def alerts(self) -> Alerts:
        from autoops.services.alerting import Alerts  # noqa: PLC0415

        return Alerts(self.context)

    @cached_property
    def watch(self) -> Watch:
        from autoops.services.watching import Watch  # noqa: PLC0415

        return Watch(self.context, self.runs, self.alerts)

    @cached_property
    def metrics(self) -> Metrics:
        from autoops.services.metrics import Metrics  # noqa: PLC0415

        return Metrics(self.context)

    @cached_property
    def scheduling(self) -> Scheduling:
        from autoops.services.scheduling import Scheduling  # noqa: PLC0415

        return Scheduling(self.context)

    @cached_property
    def healing(self) -> Healing:
        from autoops.services.healing import Healing  # noqa: PLC0415

        return Healing(self.context, self.runs, self.alerts, self.watch)

    @cached_property
    def incidents(self) -> Incidents:
        from autoops.services.incidents import Incidents  # noqa: PLC0415

        return Incidents(self.context, self.alerts)

    @cached_property
    def deploys(self) -> Deploys:
        from autoops.services.deploying import Deploys  # noqa: PLC0415

        return Deploys(self.context, self.runs, self.watch, self.alerts)

    @cached_property
    def overview(self) -> Overview:
        from autoops.services.overview import Overview  # noqa: PLC0415

        return Overview(self.context, self.recovery, self.runs, self.approvals)

    @property
    def catalog(self) -> Catalog:
        return self.context.catalog

    def run(self, request: RunRequest, *, confirm: Confirm | None = None,
            on_result: ResultCallback | None = None,
            cancel: Callable[[], bool] = lambda: False,
            on_start: Callable[[], None] = lambda: None) -> RunResult:
        """Plan, decide, get approval, record, execute and record the result (see Runs.run)."""
        return self.runs.run(request, confirm=confirm, on_result=on_result, cancel=cancel,
                             on_start=on_start)

    def plan(self, request: RunRequest) -> tuple[Plan, Decision]:
        """Validate, resolve hosts and decide, without running or recording anything."""
        return self.runs.plan(request)

    def reports(self, run_id: str) -> Reports:
        """Where a front-end's admitted run reports its results (the audit callback)."""
        return Reports(self.context, self.recovery, run_id)

    def refuse_in_service_mode(self, command: str, sub: str | None = None) -> None:
        self.context.refuse_in_service_mode(command, sub)
