"""``autoops schedule``: what may be scheduled, for whom, before :mod:`autoops.setup.schedule` writes it.

The writing (systemd units or a cron entry, pinned to this project and state) is
:mod:`autoops.setup.schedule`'s; this service checks the request against the catalog of
the project the schedule will run in — the service account's, when root schedules for
service mode with ``--service-config``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from autoops.errors import ScheduleInvalidError
from autoops.services.context import Context
from autoops.settings import ServiceConfig, Settings
from autoops.setup import schedule


class Scheduling:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def install(self, action: str, env: str, every: str, kind: str = "auto", *,
                units_dir: Path = schedule.DEFAULT_UNITS_DIR,
                cron_dir: Path = schedule.DEFAULT_CRON_DIR,
                service_config: Path | None = None) -> dict[str, Any]:
        """Write (or confirm) ``action``'s timer or cron entry for ``env``; idempotent."""
        interval = schedule.parse_interval(every)
        settings = self._for_service(service_config)
        ctx = self.ctx if settings is self.ctx.settings else Context(settings)
        scope = ctx.scope(env)
        if scope not in ctx.catalog.get("watch").environments:  # heal acts on watch's findings
            raise ScheduleInvalidError(f"catalog.yml does not let watch run in {scope}",
                                       remedy=f"Add {scope} to the environments of watch.")
        job = schedule.job_for(settings, action, scope, interval)
        return schedule.install(job, kind, units_dir=units_dir, cron_dir=cron_dir)

    @staticmethod
    def listing(units_dir: Path = schedule.DEFAULT_UNITS_DIR,
                cron_dir: Path = schedule.DEFAULT_CRON_DIR) -> list[dict[str, Any]]:
        return schedule.listing(units_dir, cron_dir)

    @staticmethod
    def remove(action: str, env: str, *, units_dir: Path = schedule.DEFAULT_UNITS_DIR,
               cron_dir: Path = schedule.DEFAULT_CRON_DIR) -> dict[str, Any]:
        return schedule.remove(action, env, units_dir=units_dir, cron_dir=cron_dir)

    def _for_service(self, config: Path | None) -> Settings:
        """Root, on a service-mode machine, schedules the service user's watch, not its own.

        Root is never in service mode itself (only the service account is), yet only root
        can write /etc/cron.d and /etc/systemd/system: ``--service-config`` reads the
        trusted, root-owned config and schedules what the service would run.
        """
        settings = self.ctx.settings
        if config is None:
            return settings
        if settings.service is not None:
            raise ScheduleInvalidError("--service-config: this is service mode already",
                                       remedy="Leave out --service-config.")
        service = ServiceConfig.load(config)
        return dataclasses.replace(settings, project_dir=service.project_dir,
                                   state_dir=service.state_dir, config_dir=service.config_dir,
                                   service=service)
