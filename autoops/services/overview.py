"""Read-only views: the catalog, the effective policy, the inventories and the dashboard."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from autoops.core import inventory
from autoops.core.plan import fleet_map
from autoops.services import allowlist
from autoops.services.approving import Approvals
from autoops.services.context import Context
from autoops.services.recovery import Recovery
from autoops.services.running import Runs


class Overview:
    def __init__(self, ctx: Context, recovery: Recovery, runs: Runs,
                 approvals: Approvals) -> None:
        self.ctx = ctx
        self.recovery = recovery
        self.runs = runs
        self.approvals = approvals

    def actions(self) -> list[dict[str, Any]]:
        """The allowlist, as ``autoops list`` shows it."""
        return allowlist.summary(self.ctx.catalog)

    def action(self, name: str) -> dict[str, Any]:
        """One action as ``autoops show`` documents it: schemas and policy per environment."""
        action = self.ctx.catalog.get(name)
        return allowlist.details(action, self.runs.policy_by_env(action.name))

    def dashboard(self) -> dict[str, Any]:
        """Halts, runs in progress, host locks and pending approvals (``autoops status``)."""
        self.recovery.recover()
        db = self.ctx.db
        return {
            "halts": [asdict(h) for h in self.ctx.halts.active()],
            "runs": [{"run_id": r.run_id, "env": r.env, "action": r.action, "actor": r.actor,
                      "pid": r.pid, "started": r.started} for r in db.runs.running()],
            "locks": [{"env": env, "host": host, "address": address, **holder.to_dict()}
                      for env, host, address, holder in db.locks.held()],
            "approvals_pending": [d["id"] for d in self.approvals.listing(pending_only=True)],
        }

    def inventory_check(self) -> dict[str, Any]:
        """Every environment's hosts and machines; raise if one belongs to two environments."""
        fleet = fleet_map(self.ctx.content, set(self.ctx.policy.environments))
        inventory.check_overlaps(fleet)
        return {"ok": True, "environments": fleet}

    def effective_policy(self, env: str | None = None) -> dict[str, Any]:
        """The policy as it applies (built-in defaults < `defaults:` < each environment)."""
        envs = self.ctx.policy.to_dict()
        if env is not None:
            envs = {self.ctx.scope(env): envs[env]}
        return {"path": str(self.ctx.settings.policy_path), "environments": envs}
