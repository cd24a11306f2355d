"""The emergency stop: anyone may halt; only an approver, never the target, may resume."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from autoops.common import identity
from autoops.common.identity import Principal
from autoops.errors import ApproverNotAllowedError, BadInputError
from autoops.services.context import Context, checked_actor, reason_line
from autoops.services.recovery import Recovery
from autoops.state.runs import RunRow


class EmergencyStop:
    def __init__(self, ctx: Context, recovery: Recovery) -> None:
        self.ctx = ctx
        self.recovery = recovery

    def halt(self, env: str | None, reason: str, actor: str | None = None,
             wait: float = 10.0, *, sleep: Callable[[float], None] = time.sleep,
             against: str | None = None) -> dict[str, Any]:
        """Engage the emergency stop and wait (up to ``wait`` s) for runs in scope to end.

        Anyone may engage a halt. ``against`` stops only that actor's runs (an agent, a
        cron job). A run counts as stopped only once none of its processes lives.
        """
        who = self.ctx.actor(actor)
        scope = self.ctx.scope(env)
        target = checked_actor(against) if against else None
        row, engaged = self.ctx.halts.engage(scope, reason_line(reason), who, target)
        if engaged:
            self.ctx.record_admin("halt.engaged", scope, {"scope": scope, "reason": row.reason,
                                                          "against": row.against or None},
                                  action="halt", actor=who)

        def covered(run: RunRow) -> bool:
            return scope in {"*", run.env} and (not row.against or identity.same(run.actor,
                                                                                row.against))
        in_scope = {r.run_id for r in self.ctx.db.runs.running() if covered(r)}
        left = self.recovery.live_runs(in_scope)
        deadline = time.monotonic() + wait
        while left and time.monotonic() < deadline:
            sleep(0.1)
            self.recovery.recover()
            left = self.recovery.live_runs(in_scope)
        return {"halt": asdict(row), "engaged": engaged, "runs_stopped": sorted(in_scope - left),
                "runs_still_running": sorted(left)}

    def resume(self, env: str | None, reason: str, actor: str | None = None,
               against: str | None = None) -> dict[str, Any]:
        """Lift a halt: only an approver of its scope, and never the actor it stops."""
        who = self.ctx.principal(actor)
        scope = self.ctx.scope(env)
        halt = self.ctx.halts.get(scope, against)
        if halt is None:
            raise BadInputError(f"no emergency stop is in force for {scope!r}"
                                + (f" against {against}" if against else ""),
                                remedy="`autoops status` lists the halts in force.")
        if halt.against and identity.same(who.name, halt.against):
            raise ApproverNotAllowedError(
                f"{who.name} cannot lift the halt engaged against {who.name}",
                remedy="Another person (an approver, if policy.yml names them) lifts it.")
        envs = list(self.ctx.policy.environments) if scope == "*" else [scope]
        approver_check(self.ctx, who, envs, "lift the halt of")
        lifted = self.ctx.halts.lift(scope, against)
        if lifted is None:
            raise BadInputError(f"the halt of {scope!r} was lifted by someone else meanwhile")
        self.ctx.record_admin("halt.lifted", scope, {"scope": scope, "reason": reason_line(reason),
                                                      "halt": asdict(lifted)},
                              action="halt", actor=who.name)
        return {"lifted": asdict(lifted),
                "still_in_force": [asdict(h) for h in self.ctx.halts.active()]}


def approver_check(ctx: Context, who: Principal, envs: list[str], what: str) -> None:
    """Refuse unless ``who`` is among the approvers each of ``envs`` names (if any)."""
    for env in envs:
        approvers = ctx.policy.environments[env].approvers
        if approvers is not None and not who.is_one_of(approvers.users, approvers.groups):
            raise ApproverNotAllowedError(
                f"{who.name} may not {what} {env}: its approvers are {approvers.describe()}")
