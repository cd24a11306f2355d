"""The library's front door: one object composed of the services the CLI, cron and agents use.

``Autoops(settings).run(RunRequest(...))`` is the whole of a guarded run. Everything
else is a service with its own commands (``app.grants.create``, ``app.stop.halt``,
``app.audit.verify``, …), all built over one :class:`~autoops.services.context.Context`:
one settings object, one clock, one state database.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from autoops.core.catalog import Catalog
from autoops.core.plan import Plan
from autoops.core.policy import Decision
from autoops.guard.confirmation import Confirm
from autoops.services.alerting import Alerts
from autoops.services.approving import Approvals
from autoops.services.auditing import Audit
from autoops.services.context import Context
from autoops.services.deploying import Deploys
from autoops.services.granting import Grants
from autoops.services.healing import Healing
from autoops.services.incidents import Incidents
from autoops.services.metrics import Metrics
from autoops.services.overview import Overview
from autoops.services.recovery import Recovery
from autoops.services.reporting import Reports
from autoops.services.requests import RunRequest, RunResult
from autoops.services.running import ResultCallback, Runs
from autoops.services.scheduling import Scheduling
from autoops.services.secrets import SecretsAdmin
from autoops.services.stopping import EmergencyStop
from autoops.services.watching import Watch
from autoops.settings import Settings

__all__ = ["Autoops", "RunRequest", "RunResult"]


class Autoops:
    """One project (catalog, policy, inventories) and one state directory."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self.context = Context(settings, clock)
        self.recovery = Recovery(self.context)
        self.runs = Runs(self.context, self.recovery)
        self.approvals = Approvals(self.context)
        self.grants = Grants(self.context)
        self.stop = EmergencyStop(self.context, self.recovery)
        self.secrets = SecretsAdmin(self.context)
        self.audit = Audit(self.context, self.recovery)
        self.alerts = Alerts(self.context)
        self.watch = Watch(self.context, self.runs, self.alerts)
        self.metrics = Metrics(self.context)
        self.scheduling = Scheduling(self.context)
        self.healing = Healing(self.context, self.runs, self.alerts, self.watch)
        self.incidents = Incidents(self.context, self.alerts)
        self.deploys = Deploys(self.context, self.runs, self.watch, self.alerts)
        self.runs.finished.append(self.deploys.finished)  # record, audit, announce rollbacks
        self.runs.promotion_gate = self.deploys.gate  # before a deploy runs, and again later
        self.overview = Overview(self.context, self.recovery, self.runs, self.approvals)

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
