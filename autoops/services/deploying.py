"""Deploys after they run, and the promotion gate before they run.

After every executed deploy or deploy-rollback the service records how it ended (the
``deploys`` table the gate reads). A rollout that stopped and returned its hosts
(AUTOOPS-DEPLOY-ROLLED-BACK) is audited as ``deploy.rolled_back`` and announced through
the environment's notifiers. Before a deploy runs in an environment whose policy names a
promotion source, :meth:`Deploys.gate` decides from the source's record and both
environments' findings; the run path calls it when the run is requested and again just
before it executes.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from autoops.core.plan import Plan
from autoops.deploy import promotion, rollout
from autoops.deploy.promotion import Deployed, Evidence, Firing
from autoops.errors import (
    BadInputError,
    DeployRolledBackError,
    PromotionRefusedError,
    PromotionRequiredError,
)
from autoops.exits import ExitStatus
from autoops.guard import confirmation
from autoops.notify import outbox
from autoops.notify.messages import Item, Message
from autoops.services.alerting import Alerts
from autoops.services.context import Context
from autoops.services.deploynames import DEPLOY_ACTIONS
from autoops.services.requests import RunRequest, RunResult
from autoops.services.running import ResultCallback, Runs
from autoops.services.watching import Watch
from autoops.state.deploys import DeployRow
from autoops.watch.findings import Notice, Severity


class Deploys:
    """The engine hands :meth:`finished` and :meth:`gate` to the run path (``Runs``)."""

    def __init__(self, ctx: Context, runs: Runs, watch: Watch, alerts: Alerts) -> None:
        self.ctx, self.runs, self.watch, self.alerts = ctx, runs, watch, alerts

    # -- after a run ------------------------------------------------------------------

    def finished(self, result: RunResult, actor: str) -> None:
        """Record an executed deploy or rollback; audit and announce a rollout rolled back."""
        the_plan = result.plan
        operation = DEPLOY_ACTIONS.get(the_plan.action_name)
        if operation is None or the_plan.check_mode:
            return
        params = the_plan.resolved.params
        reported = {str(r.get("revision") or "") for r in rollout.reports(result.results).values()}
        if result.status is ExitStatus.OK:
            outcome = "verified"
        elif isinstance(result.error, DeployRolledBackError):
            outcome = "rolled_back"
        else:
            outcome = "failed"
        commit = str(params.get("revision") or "") if operation == "deploy" else \
            (reported.pop() if len(reported) == 1 else "")  # hosts that disagree: unknown
        now = self.ctx.clock()
        self.ctx.db.deploys.add(DeployRow(
            run_id=result.run_id, env=the_plan.env, app=str(params.get("app", "")),
            commit=commit, operation=operation, outcome=outcome, finished=now.isoformat(),
            hosts=tuple(the_plan.hosts)))
        if isinstance(result.error, DeployRolledBackError):
            self._rolled_back(result, result.error, actor, now)

    def _rolled_back(self, result: RunResult, error: DeployRolledBackError, actor: str,
                     now: datetime) -> None:
        the_plan, rollout = result.plan, error.details.get("rollout", {})
        self.ctx.audit.append(run_id=result.run_id, type_="deploy.rolled_back", actor=actor,
                              env=the_plan.env, action=the_plan.action_name,
                              data={"message": error.message, **rollout,
                                    "untouched": error.details.get("untouched", [])})
        notifiers = self.watch.notifiers(the_plan.env)
        item = Item(result.run_id, the_plan.env, str(rollout.get("failed_host") or "?"),
                    "deploy", str(rollout.get("app", "")), Severity.CRITICAL, Notice.FIRING,
                    self.ctx.redactor.text(error.message), now)
        key = "d-" + hashlib.sha256(result.run_id.encode()).hexdigest()[:20]
        outbox.enqueue(self.ctx.db.outbox, [Message(key, "rollbacks", the_plan.env, now,
                                                    (item,))], notifiers, now)
        outbox.deliver(self.ctx.db.outbox, notifiers, the_plan.env, self.ctx.clock)

    # -- before a run -----------------------------------------------------------------

    def gate(self, the_plan: Plan, promote_from: str | None) -> dict[str, Any] | None:
        """The promotion evidence for a run (None when no gate applies); raise when refused."""
        env = self.ctx.policy.environments[the_plan.env]
        gated = the_plan.action_name in promotion.GATED_ACTIONS and not the_plan.check_mode
        if env.promotion is None or not gated:
            if promote_from is not None:
                raise BadInputError(
                    f"{the_plan.env} has no promotion gate for {the_plan.action_name} in "
                    "policy.yml; nothing to promote into", remedy="Run the deploy directly.")
            return None
        source = env.promotion.source
        if promote_from is None:
            raise PromotionRequiredError(
                f"deploys reach {the_plan.env} only through its promotion gate from {source}; "
                "nothing ran", remedy=f"`autoops promote APP --from {source} --to {the_plan.env}`"
                " promotes what was verified in " + source + ".")
        if promote_from != source:
            raise PromotionRefusedError(
                f"{the_plan.env} is promoted from {source}, not {promote_from}; nothing ran")
        evidence = self.evidence(str(the_plan.resolved.params.get("app", "")), source,
                                 the_plan.env, str(the_plan.resolved.params.get("revision")))
        if not evidence.allowed:
            raise PromotionRefusedError(
                f"promotion of {evidence.app} {evidence.commit[:12]} from {source} to "
                f"{the_plan.env} refused: {'; '.join(evidence.refusals)}; nothing ran",
                details={"promotion": evidence.to_dict()})
        return evidence.to_dict()

    def evidence(self, app: str, source: str, target: str, commit: str | None) -> Evidence:
        env = self.ctx.policy.environments[target]
        if env.promotion is None:
            raise BadInputError(f"policy.yml gives {target} no promotion")
        history = [Deployed(r.run_id, r.commit, r.operation, r.outcome,
                            datetime.fromisoformat(r.finished))
                   for r in self.ctx.db.deploys.of_app(source, app)]
        watched = [w.last_ended for w in self.ctx.db.run_stats.watches() if w.env == source]
        return promotion.evaluate(
            app=app, source=source, target=target, soak=env.promotion.soak, commit=commit,
            history=history, source_firing=self._firing(source),
            target_firing=self._firing(target),
            source_last_watch=datetime.fromtimestamp(max(watched), UTC) if watched else None,
            now=self.ctx.clock())

    def _firing(self, env: str) -> list[Firing]:
        """Critical findings firing in ``env``, acknowledged or silenced ones included."""
        return [Firing(d["host"], d["check"], d["subject"], d.get("summary", ""))
                for d in self.alerts.listing(env)
                if d["state"] == "firing" and d["severity"] == "critical"]

    # -- promote ----------------------------------------------------------------------

    def promote(self, app: str, source: str, target: str, revision: str | None, *,
                actor: str | None = None, grant: str | None = None,
                approval: str | None = None, wait: float = 0,
                confirm: confirmation.Confirm | None = None,
                on_result: ResultCallback | None = None) -> RunResult:
        """Deploy to ``target`` what ``source`` verified and soaked, through the whole gate."""
        env = self.ctx.policy.environments.get(self.ctx.scope(target))
        if env is None or env.promotion is None:
            raise BadInputError(f"policy.yml gives {target} no promotion (promotion: "
                                "{from: ENV, soak: DURATION})",
                                remedy="Deploy there with `autoops run deploy`.")
        if env.promotion.source != source:
            raise BadInputError(f"{target} is promoted from {env.promotion.source}, not {source}",
                                remedy=f"--from {env.promotion.source}")
        if revision is None:
            latest = self.ctx.db.deploys.of_app(source, app, limit=1)
            if not latest or not latest[0].commit:
                raise PromotionRefusedError(f"{app} was never deployed in {source}: deploy and "
                                            "verify it there first; nothing ran")
            revision = latest[0].commit
        request = RunRequest("deploy", target, {"app": app, "revision": revision}, actor=actor,
                             grant=grant, approval=approval, wait=wait, promote_from=source)
        return self.runs.run(request, confirm=confirm, on_result=on_result)

