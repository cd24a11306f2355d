"""The guarded run path, end to end: resolve → plan → policy → approval → lock → recheck → run.

Every requested run leaves ``run.requested`` and ``run.decision`` in the audit log
before anything executes, and ends with ``run.finished`` (or ``run.interrupted``).
A refusal at any step is recorded once, by :meth:`Attempt.refusing`, then raised.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autoops.audit.log import Entry
from autoops.common.procs import process_start_time
from autoops.core import policy
from autoops.core.plan import Plan, content_files
from autoops.core.plan import build as build_plan
from autoops.core.policy import Decision, HaltFacts, Outcome
from autoops.errors import (
    ApprovalPlanChangedError,
    ApprovalRequiredError,
    AutoopsError,
    BadInputError,
    NodesInvalidError,
)
from autoops.exits import ExitStatus
from autoops.guard import approvals, confirmation, grants, tickets
from autoops.guard.locks import needs_lock
from autoops.run import runner
from autoops.run.remote import Loan, NodeJob
from autoops.run.runner import HostResult, RunOutcome
from autoops.secrets.store import EnvSecrets
from autoops.services import allowlist, ticketing
from autoops.services.context import Context, new_run_id
from autoops.services.metrics import Metrics
from autoops.services.recovery import Recovery
from autoops.services.requests import Authority, RunRequest, RunResult
from autoops.services.verdicts import classify, denial, halted, refusal
from autoops.state.locks import LockHolder
from autoops.state.runs import RunRow, RunState

ResultCallback = Callable[[dict[str, Any]], None]


@dataclass
class Attempt:
    """One requested run on its way through the gate: what every step records against."""

    ctx: Context
    run_id: str
    request: RunRequest
    plan: Plan
    actor: str
    begun: float = field(default_factory=time.monotonic)  # for autoops_run_duration_seconds
    promotion: dict[str, Any] | None = None  # what the promotion gate saw, when one applies
    pid: int = field(default_factory=os.getpid)  # the process the run lives in (locks, recovery)

    def record(self, type_: str, data: dict[str, Any], *, durable: bool = True) -> dict[str, Any]:
        return self.ctx.audit.append(run_id=self.run_id, type_=type_, actor=self.actor,
                                     env=self.plan.env, action=self.plan.action_name, data=data,
                                     durable=durable)

    def record_many(self, type_: str, data: list[dict[str, Any]]) -> None:
        """Records of one type in one write (not fsynced: a run's task results)."""
        self.ctx.audit.append_many([Entry(self.run_id, type_, self.actor, self.plan.env,
                                          self.plan.action_name, item) for item in data])

    def refuse(self, error: AutoopsError, status: str | None = None) -> None:
        """End a run that never executed: its run.finished names the error."""
        error.details.update(run_id=self.run_id)
        self.record("run.finished", {"status": status or error.status.name.lower(),
                                     "exit_status": int(error.status), "error": error.to_dict()})
        self.ctx.db.runs.set_state(self.run_id, RunState.REFUSED)
        self.ended(error.status)

    @contextmanager
    def refusing(self, status: str | None = None) -> Iterator[None]:
        """A refusal raised inside ends the run (recorded once), then goes on up."""
        try:
            yield
        except AutoopsError as error:
            self.refuse(error, status)
            raise

    @contextmanager
    def interruptible(self, while_: str) -> Iterator[None]:
        """Ctrl-C while waiting (for a person, a lock) is recorded as an interruption."""
        try:
            yield
        except KeyboardInterrupt:
            self.interrupted({"reason": f"interrupted while {while_}"})
            raise

    def interrupted(self, data: dict[str, Any],
                    status: ExitStatus = ExitStatus.INTERRUPTED) -> None:
        self.record("run.interrupted", data)
        self.ctx.db.runs.set_state(self.run_id, RunState.INTERRUPTED)
        self.ended(status)

    def ended(self, status: ExitStatus) -> None:
        """Count the run for ``autoops metrics``; called once per run, after its end is recorded.

        A run ends in one of three ways — refused (:meth:`refuse`), executed
        (``Runs._finish``) or interrupted on the way (:meth:`interrupted`) — and each
        calls this once its state is settled, so a counting problem cannot leave the
        run looking alive. A run killed outright (SIGKILL) is not counted.
        """
        Metrics(self.ctx).run_ended(self.plan.action_name, self.plan.env, status,
                                    time.monotonic() - self.begun)


class Runs:
    """Plans, decisions and runs: the one way anything executes."""

    def __init__(self, ctx: Context, recovery: Recovery) -> None:
        self.ctx = ctx
        self.recovery = recovery
        # Called with every executed run's result and actor once its end is recorded
        # (the deploy service audits and announces a rollback there).
        self.finished: list[Callable[[RunResult, str], None]] = []
        # The promotion gate (the deploy service's): evidence for a run, None where no
        # gate applies; it raises when the run may not go ahead.
        self.promotion_gate: Callable[[Plan, str | None], dict[str, Any] | None] = \
            lambda _plan, _source: None

    # -- deciding without running -----------------------------------------------------

    def plan(self, request: RunRequest) -> tuple[Plan, Decision]:
        """Validate, resolve hosts and decide, without running or recording anything.

        A grant or approval passed with the request is checked (not used) and counts; a
        deploy the promotion gate would refuse is refused here too.
        """
        actor = self.ctx.actor(request.actor)
        the_plan = self._build(request)
        self.promotion_gate(the_plan, request.promote_from)  # a deploy it would refuse, refused
        return the_plan, self.decide(the_plan, actor, self._authority(request, the_plan, actor))

    def decide(self, the_plan: Plan, actor: str, authority: Authority | None = None) -> Decision:
        action = the_plan.resolved.action
        grant = authority.grant if authority else None
        return policy.evaluate(self.ctx.policy, policy.Request(
            env=the_plan.env, action=action.name, risk=action.risk,
            action_environments=action.environments, actor=actor,
            check_mode=the_plan.check_mode, now=self.ctx.clock(),
            halt=self.ctx.halts.for_env(the_plan.env, actor),
            grant=policy.GrantFacts(grant.id, grant.break_glass, grant.reason) if grant else None,
            second_person=authority.second_person if authority else None))

    def lock_view(self, the_plan: Plan) -> dict[str, Any]:
        """Whether running ``the_plan`` takes a host lock, and which live runs hold its hosts now."""
        needed = needs_lock(the_plan.resolved.action.risk, the_plan.check_mode)
        hosts, addresses = lock_targets(the_plan)
        held = self.recovery.locks.holders(the_plan.env, hosts, addresses) if needed else []
        return {"needed": needed, "held_by": [{**holder.to_dict(), "hosts": hosts}
                                              for holder, hosts in held]}

    def policy_by_env(self, action_name: str) -> dict[str, dict[str, Any]]:
        """What the policy says about an action in every declared environment, now."""
        return allowlist.decisions(self.ctx.policy, self.ctx.catalog.get(action_name),
                                   self.ctx.settings.os_user, self.ctx.clock(),
                                   self.ctx.halts.for_env)

    # -- running ----------------------------------------------------------------------

    def run(self, request: RunRequest, *, confirm: confirmation.Confirm | None = None,
            on_result: ResultCallback | None = None,
            cancel: Callable[[], bool] = lambda: False,
            on_start: Callable[[], None] = lambda: None) -> RunResult:
        """Plan, decide, get approval, record, execute and record the result.

        Refusals raise (after being audited); a run that executed returns a RunResult
        whose ``status`` says how it went. The policy is checked when the run is
        requested and again once its hosts are locked, just before anything executes.
        """
        self.recovery.recover()
        run_id = new_run_id(self.ctx.clock())
        ready = self._standby(run_id)  # its start-up overlaps the plan and the decision
        locked = False
        try:
            attempt = self._begin(request, run_id=run_id)
            self.ctx.db.runs.set_worker(run_id, ready.process.pid, ready.started)
            self._promotion(attempt)
            with attempt.refusing("refused"):  # a key that cannot open the files stops it
                loaded = self.ctx.secret_store.load_for_run(attempt.plan.env)
            self.ctx.redactor.add(loaded.values)
            authority, decision = self._checked(attempt)
            approval = self._clear(attempt, authority, decision, confirm)
            locked = self._lock(attempt, authority)
            authorised = self._recheck(attempt)
            on_start()
            return self._execute(attempt, decision, approval, loaded=loaded, ready=ready,
                                 on_result=on_result, cancel=cancel, authorised=authorised)
        finally:
            ready.discard()  # a refused run's worker ends here (a used one did already)
            if locked:
                self.recovery.locks.release(run_id)

    def _standby(self, run_id: str) -> runner.Standby:
        """The run's worker, started before the run is registered; :meth:`run` records it.

        It runs nothing until it is sent the run, carries the run's mark, and dies with
        autoops (or reads the end of its pipe), so it needs no record until then.
        """
        settings = self.ctx.settings
        return runner.standby(
            run_id, runs_dir=settings.runs_dir, python=settings.python,
            project_dir=settings.project_dir,
            environ=settings.child_environ(settings.locator_environ()))

    def request_approval(self, request: RunRequest) -> None:
        """Record a two-person request for a plan, and never run it (agents ask this way).

        Always raises: ApprovalRequiredError with the request id where the policy wants a
        second person; otherwise the error that says what the plan needs instead (nothing,
        a typed confirmation at a terminal, a grant) or why it is denied. Audited.
        """
        self.recovery.recover()
        attempt = self._begin(request)
        self._promotion(attempt)
        authority, decision = self._checked(attempt)
        if decision.outcome is Outcome.APPROVAL_REQUIRED and \
                policy.SECOND_PERSON in decision.requirements:
            self._request_second_person(attempt, decision)
        attempt.record("run.decision", {"decision": decision.to_dict(), "approval": None,
                                        "grant": authority.grant_summary()})
        if decision.outcome is Outcome.DENIED:
            error: AutoopsError = denial(decision.deciding_rule)
        elif decision.outcome is Outcome.ALLOWED:
            error = BadInputError(
                f"{attempt.plan.action_name} in {attempt.plan.env} needs no approval now "
                "(the policy allows it); nothing was recorded to approve",
                remedy="Run the action itself.")
        else:
            error = ApprovalRequiredError(
                f"{attempt.plan.action_name} in {attempt.plan.env} needs a typed confirmation "
                "by a person at a terminal, or a grant; no second person can stand in for it "
                "here; nothing ran",
                remedy=f"A person runs `autoops run {attempt.plan.action_name} --env "
                       f"{attempt.plan.env} …` at a terminal, or issues a grant for it "
                       "(`autoops grant create …`) that the agent presents.")
        attempt.refuse(error, "refused")
        raise error

    def admit(self, request: RunRequest, origin: Mapping[str, Any], pid: int,
              inspect: Callable[[Plan], None] = lambda _plan: None) -> Attempt:
        """Let through a run that a front-end executes itself, or refuse it (both audited).

        The pre-flight guard play calls this for AWX, Semaphore or a plain ansible-playbook:
        the same plan, promotion gate, policy, grant, second person, host locks and last
        check as :meth:`run`, with nobody to type a confirmation (a grant or an approved
        request stands in). ``pid`` (ansible-playbook) holds the run and its locks, so a
        playbook killed outright is found by the next recovery;
        :class:`~autoops.services.reporting.Reports` records its results and its end.
        """
        self.recovery.recover()
        attempt = self._begin(request, origin=origin, pid=pid)
        with attempt.refusing():  # what the front-end's inventory says, against the plan
            inspect(attempt.plan)
        self._promotion(attempt)
        authority, decision = self._checked(attempt)
        self._clear(attempt, authority, decision, None, remedy=(
            "Present a grant that covers it (extra var autoops_grant, or the autoops "
            f"credential), or run `autoops run {attempt.plan.action_name} --env "
            f"{attempt.plan.env} …` at a terminal."))
        locked = self._lock(attempt, authority)
        try:
            authorised = self._recheck(attempt)
        except BaseException:
            if locked:
                self.recovery.locks.release(attempt.run_id)
            raise
        the_plan = attempt.plan
        attempt.record("run.started", {
            "hosts": list(the_plan.hosts), "check_mode": the_plan.check_mode, "locked": locked,
            "content_digest": the_plan.content_digest, "authorised_by": authorised,
            "origin": dict(origin)})
        return attempt

    def ticketed(self, ticket: str, *, run_id: str, action: str, env: str, check_mode: bool,
                 params: Mapping[str, Any], hosts: Sequence[str], playbook_pid: int,
                 actor: str = "") -> str:
        """The actor of the running run this ticket is for (see :mod:`.ticketing`)."""
        return ticketing.check(self.ctx.settings, self.ctx.db, ticket, run_id=run_id,
                               action=action, env=env, check_mode=check_mode, params=params,
                               hosts=hosts, playbook_pid=playbook_pid, actor=actor,
                               now=self.ctx.clock())

    def _clear(self, attempt: Attempt, authority: Authority, decision: Decision,
               confirm: confirmation.Confirm | None,
               remedy: str | None = None) -> confirmation.Clearance:
        """Get what the decision needs now, record it, and refuse the run if it is not met.

        A second person is requested (the run stops, status 4); a typed confirmation is
        asked through ``confirm`` (None: nobody to ask; ``remedy`` then says what instead).
        """
        if decision.outcome is Outcome.APPROVAL_REQUIRED and \
                policy.SECOND_PERSON in decision.requirements:
            self._request_second_person(attempt, decision)
        with attempt.interruptible("waiting for approval"):
            approval = confirmation.satisfy(attempt.plan, decision, confirm)
        attempt.record("run.decision", {"decision": decision.to_dict(),
                                        "approval": approval.to_dict(),
                                        "grant": authority.grant_summary()})
        if not approval.satisfied:
            error = refusal(decision, approval, attempt.plan)
            if remedy is not None and decision.outcome is Outcome.APPROVAL_REQUIRED:
                error.remedy = remedy
            error.details.update(decision=decision.to_dict())
            attempt.refuse(error)
            raise error
        return approval

    def _promotion(self, attempt: Attempt) -> None:
        """Ask the promotion gate (a refusal ends the run) and record what it saw."""
        with attempt.refusing():
            attempt.promotion = self.promotion_gate(attempt.plan, attempt.request.promote_from)
        if attempt.promotion is not None:
            attempt.record("run.promotion", attempt.promotion)

    def _begin(self, request: RunRequest, *, origin: Mapping[str, Any] | None = None,
               pid: int | None = None, run_id: str | None = None) -> Attempt:
        """Register the run and record what was asked, before anything is decided.

        ``origin`` is the front-end that runs the playbook itself (AWX, Semaphore, a plain
        ansible-playbook) and ``pid`` its process, which then holds the run (see :meth:`admit`).
        """
        who = self.ctx.principal(request.actor)
        the_plan = self._build(request)
        run_id = run_id or new_run_id(self.ctx.clock())
        pid = os.getpid() if pid is None else pid
        self.ctx.db.runs.register(RunRow(
            run_id=run_id, pid=pid, pid_start=process_start_time(pid) or "", env=the_plan.env,
            action=the_plan.action_name, actor=who.name, started=self.ctx.clock().isoformat(),
            status=RunState.RUNNING, data_dir=None))
        attempt = Attempt(self.ctx, run_id, request, the_plan, who.name, pid=pid)
        settings = self.ctx.settings
        attempt.record("run.requested", {
            "plan": the_plan.to_dict(), "os_user": settings.os_user,
            "account": settings.account, "mode": settings.mode,
            "actor_label": who.label, "controller": socket.gethostname(), "pid": pid,
            "environ_ignored": list(settings.ignored_environ),
            "grant": _presented_grant(request.grant), "approval": request.approval}
            | ({"origin": dict(origin)} if origin else {}))
        return attempt

    def _build(self, request: RunRequest) -> Plan:
        ctx = self.ctx
        resolved = ctx.catalog.resolve(request.action, request.params, request.env)
        the_plan = build_plan(resolved, request.env, ctx.content, set(ctx.policy.environments),
                              request.limit, check_mode=request.check_mode,
                              host_cache=ctx.db.hosts)
        if request.node is not None:  # a node the environment declares, or nothing runs
            ctx.nodes(request.env).named(request.node)
        if request.one_host and len(the_plan.hosts) != 1:
            raise BadInputError(
                f"--limit {request.limit!r} matches {len(the_plan.hosts)} hosts, not exactly one",
                remedy="Name one inventory host, or use `autoops run --limit` for several.")
        return the_plan

    def _authority(self, request: RunRequest, the_plan: Plan, actor: str) -> Authority:
        """Check the grant and approval a request presents; raise if either is refused."""
        grant = None
        if request.grant:
            grant, _token = self.ctx.grant_store.resolve(request.grant)
            self.ctx.grant_store.check(grant, self.ctx.clock())
            action = the_plan.resolved.action
            grants.check_scope(grant, env=the_plan.env, action=action.name, risk=action.risk,
                               hosts=the_plan.hosts, params=the_plan.resolved.params)
        second = (self.ctx.second_person.check(request.approval, the_plan, actor)
                  if request.approval else None)
        return Authority(grant, second)

    def _checked(self, attempt: Attempt) -> tuple[Authority, Decision]:
        with attempt.refusing():
            authority = self._authority(attempt.request, attempt.plan, attempt.actor)
        return authority, self.decide(attempt.plan, attempt.actor, authority)

    def _request_second_person(self, attempt: Attempt, decision: Decision) -> None:
        """Record a two-person request bound to this plan and stop the run (status 4)."""
        the_plan = attempt.plan
        ttl = self.ctx.policy.environments[the_plan.env].approval_ttl
        row = self.ctx.second_person.request(the_plan, attempt.actor, ttl)
        attempt.record("approval.requested", {"request_id": row.request_id,
                                              "plan_digest": row.plan_digest,
                                              "expires": row.expires})
        approval = confirmation.Clearance(False, policy.SECOND_PERSON,
                                      f"waiting for a second person: request {row.request_id}")
        attempt.record("run.decision", {"decision": decision.to_dict(),
                                        "approval": approval.to_dict(), "grant": None})
        error = ApprovalRequiredError(
            f"{the_plan.action_name} in {the_plan.env} needs a second person: approval request "
            f"{row.request_id} recorded (expires {row.expires}); nothing ran",
            remedy=f"Another person runs `autoops approve {row.request_id}`; then run the same "
                   f"command again with --approval {row.request_id}.",
            details={"approval_request": row.request_id, "decision": decision.to_dict()})
        attempt.refuse(error, "approval_required")
        raise error

    def _lock(self, attempt: Attempt, authority: Authority) -> bool:
        """Lock the plan's hosts when the run can change something; False when it cannot.

        While it waits, a halt or the revocation of its grant ends the wait.
        """
        the_plan = attempt.plan
        if not needs_lock(the_plan.resolved.action.risk, the_plan.check_mode):
            return False
        holder = LockHolder(run_id=attempt.run_id, actor=attempt.actor, pid=attempt.pid,
                            pid_start=process_start_time(attempt.pid) or "",
                            acquired=self.ctx.clock().isoformat())

        def stale(gone: LockHolder) -> None:
            attempt.record("lock.stale_released", {
                "holder": gone.to_dict(), "hosts": list(the_plan.hosts),
                "reason": f"process {gone.pid} of run {gone.run_id} is gone"})

        def still_wanted() -> None:
            self.recovery.recover()  # a dead holder's processes die before its locks go
            halt = self.ctx.halts.for_env(the_plan.env, attempt.actor)
            if halt is not None:
                raise halted(halt, f"run {attempt.run_id} stopped waiting for a host lock")
            if authority.grant is not None:
                self.ctx.grant_store.check(authority.grant, self.ctx.clock())

        with attempt.refusing(), attempt.interruptible("waiting for a host lock"):
            hosts, addresses = lock_targets(the_plan)
            self.recovery.locks.acquire(the_plan.env, hosts, holder,
                                        wait=attempt.request.wait, addresses=addresses,
                                        on_stale=stale, check=still_wanted)
        return True

    def _recheck(self, attempt: Attempt) -> list[str]:
        """The last check before execution: time, halts, grant and approval, then use them.

        Between the request and now the run may have waited for a confirmation or a
        lock: a window may have closed, a halt been engaged or the grant revoked.
        """
        authority, decision = self._checked(attempt)
        stopped = [r for r in decision.rules if r.outcome is Outcome.DENIED]
        if stopped:
            error = denial(stopped[0])
            error.message += " (at the check before execution)"
            error.details.update(decision=decision.to_dict())
            attempt.refuse(error)
            raise error
        self._same_plan(attempt)
        with attempt.refusing():  # what the source proved, once more, just before it runs
            self.promotion_gate(attempt.plan, attempt.request.promote_from)
        used = []
        with attempt.refusing():
            if authority.grant is not None:
                grant = authority.grant
                number = self.ctx.grant_store.use(grant, attempt.run_id, self.ctx.clock())
                attempt.record("grant.used", {"grant_id": grant.id, "use": number,
                                              "max_uses": grant.uses,
                                              "break_glass": grant.break_glass,
                                              "issuer": grant.issuer, "reason": grant.reason})
                used.append(f"grant:{grant.id}")
            if authority.second_person is not None:
                request_id = authority.second_person.request_id
                self.ctx.second_person.use(request_id, attempt.run_id)
                used.append(f"second-person:{request_id}")
        return used

    def _same_plan(self, attempt: Attempt) -> None:
        """Recompute the plan after every wait; what was approved is what runs.

        Between the request and now the run may have waited for a confirmation, an
        approval or a host lock: a role, the inventory or the policy may have changed.
        """
        with attempt.refusing():
            fresh = self._build(attempt.request)
        approved = attempt.plan
        changed = approvals.plan_changes(approved.to_dict(), fresh.to_dict())
        if changed:
            error = ApprovalPlanChangedError(
                f"the plan changed while run {attempt.run_id} waited ({', '.join(changed)}: "
                f"content {approved.content_digest[:19]}… is now {fresh.content_digest[:19]}…);"
                " nothing ran",
                remedy="Review what changed (`autoops plan …`), then run it again.",
                details={"changed": changed, "approved_digest": approved.content_digest,
                         "current_digest": fresh.content_digest})
            attempt.refuse(error, "approval_required")
            raise error

    def _execute(self, attempt: Attempt, decision: Decision, approval: confirmation.Clearance, *,
                 loaded: EnvSecrets, on_result: ResultCallback | None,
                 cancel: Callable[[], bool], authorised: list[str],
                 ready: runner.Standby | None = None) -> RunResult:
        ctx, the_plan, run_id = self.ctx, attempt.plan, attempt.run_id
        results: list[dict[str, Any]] = []

        def handle(batch: list[HostResult]) -> None:  # what arrived together: one write
            found = [ctx.redactor(result.to_dict()) for result in batch]
            attempt.record_many("task.result", found)
            results.extend(found)
            for data in found:
                if on_result is not None:
                    on_result(data)

        spec = self._spec(attempt, loaded)
        attempt.record("run.started", {
            "hosts": list(the_plan.hosts), "check_mode": the_plan.check_mode,
            "locked": needs_lock(the_plan.resolved.action.risk, the_plan.check_mode),
            "content_digest": the_plan.content_digest, "authorised_by": authorised,
            "sops": loaded.to_dict(), "node": spec.node.name if spec.node else None}
            | ({"executed_on": dict(spec.node.facts)} if spec.node else {}))
        halt_now = ctx.halts.watcher(the_plan.env, attempt.actor)
        try:
            outcome = runner.execute(spec, lambda r: handle([r]),
                                     lambda: cancel() or halt_now() is not None,
                                     on_worker=lambda pid, start: ctx.db.runs.set_worker(
                                         run_id, pid, start), on_batch=handle, ready=ready)
        except BaseException as exc:
            reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"error: {exc}"
            attempt.interrupted({"reason": reason}, _status_of(exc))
            raise
        outcome.errors = [ctx.redactor.text(e) for e in outcome.errors]
        outcome.warnings = [ctx.redactor.text(w) for w in outcome.warnings] + [
            f"too short to redact, keep it out of output: {name}" for name in loaded.unmaskable]
        halt = halt_now() if outcome.status == "canceled" else None
        status, error = self._finish(attempt, outcome, halt, results)
        result = RunResult(run_id=run_id, plan=the_plan, decision=decision, approval=approval,
                           status=status, runner_status=outcome.status, stats=outcome.stats,
                           results=results, error=error, warnings=outcome.warnings,
                           promotion=attempt.promotion,
                           node=spec.node.name if spec.node else None)
        for listener in self.finished:
            listener(result, attempt.actor)
        return result

    def _spec(self, attempt: Attempt, loaded: EnvSecrets) -> runner.RunSpec:
        """What the worker runs: the playbook, inventory, extra vars and the child environment.

        On an execution node, the ticket is the controller's signature (binding the content
        digest too); the node borrows the age key and the lent identities for the run.
        """
        the_plan, settings = attempt.plan, self.ctx.settings
        node = self.ctx.nodes(the_plan.env).choose(attempt.run_id, attempt.request.node)
        bound: dict[str, Any] = {
            "run_id": attempt.run_id, "action": the_plan.action_name, "env": the_plan.env,
            "check_mode": the_plan.check_mode, "params": the_plan.resolved.params,
            "hosts": the_plan.hosts}
        ticket = tickets.issue(self.ctx.ticket_key, **bound) if node is None else \
            tickets.sign_node(self.ctx.node_key(the_plan.env), **bound,
                              content=the_plan.content_digest, node=node.name,
                              expires=self.ctx.clock() + tickets.NODE_TICKET_TTL)
        sops_env, inline_key = self.ctx.secret_store.run_key(loaded)
        job = None
        extra: dict[str, Any] = {}
        if node is not None:
            identities, prints = self._lent_identities(the_plan.env)
            files = content_files(settings.project_dir, the_plan.inventory,
                                  self.ctx.content.owners)
            job = NodeJob(node.name, tuple(node.ssh_argv("serve")),
                          tuple(node.ssh_argv("cancel", attempt.run_id)),
                          tuple((name, str(real)) for name, real in files),
                          Loan(age_key=self.ctx.secret_store.lent_key(loaded),
                               identities=identities),
                          facts={**node.to_dict(), "lent_identities": prints})
            inline_key = None  # the node borrows it; nothing here opens the files
            extra["autoops_hosts"] = list(the_plan.hosts)  # the node checks the ticket first
        return runner.RunSpec(
            run_id=attempt.run_id, project_dir=settings.project_dir,
            playbook=settings.project_dir / the_plan.resolved.action.playbook,
            inventory=the_plan.inventory, limit=the_plan.limit,
            extravars={
                **the_plan.resolved.params,
                "autoops_run_id": attempt.run_id, "autoops_actor": attempt.actor,
                "autoops_env": the_plan.env, "autoops_action": the_plan.action_name,
                "autoops_check_mode": the_plan.check_mode,
                "autoops_ticket": ticket,  # the guard play passes on it, for this run only
                **extra,
            },
            check_mode=the_plan.check_mode, runs_dir=settings.runs_dir, python=settings.python,
            environ=settings.child_environ({**sops_env, **settings.locator_environ()}),
            age_key=inline_key, node=job)

    def _lent_identities(self, env: str) -> tuple[tuple[str, ...], list[str]]:
        """The SSH keys nodes/ENV.yml lends its nodes, read now, and their fingerprints.

        Only SSH private keys, and none of autoops' own key stores (age keys, grant and
        node signing keys): a node borrows a way into its hosts, nothing else.
        """
        texts, prints = [], []
        stores = self.ctx.settings.config_dir.resolve()
        for path in self.ctx.nodes(env).lend_identities:
            where = f"nodes/{env}.yml lends {path}"
            if stores in path.resolve().parents:
                raise NodesInvalidError(f"{where}, one of autoops' own keys; nothing was sent")
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise NodesInvalidError(f"{where}, which cannot be read: {exc}") from None
            if not _SSH_PRIVATE_KEY.match(text):
                raise NodesInvalidError(f"{where}, which is not an SSH private key; nothing "
                                        "was sent")
            texts.append(text)
            prints.append(_fingerprint(path))
        return tuple(texts), prints

    def _finish(self, attempt: Attempt, outcome: RunOutcome, halt: HaltFacts | None,
                results: list[dict[str, Any]]) -> tuple[ExitStatus, AutoopsError | None]:
        """Record how an executed run ended (run.interrupted when it was stopped, run.finished)."""
        status, error = classify(outcome, attempt.run_id, halt, results, attempt.plan.hosts)
        if halt is not None:
            attempt.record("run.interrupted", {
                "reason": f"halted: {error.message if error else ''}", "halt": asdict(halt),
                "stats": outcome.stats, "killed": len(outcome.killed)})
        elif status is ExitStatus.INTERRUPTED:
            attempt.record("run.interrupted", {"reason": "cancelled", "stats": outcome.stats})
        attempt.record("run.finished", {
            "status": status.name.lower(), "exit_status": int(status),
            "runner_status": outcome.status, "rc": outcome.rc, "stats": outcome.stats,
            "errors": outcome.errors, "error": error.to_dict() if error else None})
        self.ctx.db.runs.set_state(attempt.run_id, RunState.FINISHED)
        attempt.ended(status)  # autoops metrics: count it (run_stats) and rewrite the file
        return status, error


_SSH_PRIVATE_KEY = re.compile(r"\A-----BEGIN (OPENSSH|RSA|EC|DSA)? ?PRIVATE KEY-----\n")


def _fingerprint(path: Path) -> str:
    """``SHA256:…`` of an SSH key (what ``ssh-add -l`` on the node would show)."""
    try:
        done = subprocess.run(["ssh-keygen", "-l", "-f", str(path)], capture_output=True,
                              text=True, timeout=10, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    words = done.stdout.split()
    return words[1] if done.returncode == 0 and len(words) > 1 else "unknown"


def lock_targets(the_plan: Plan) -> tuple[list[str], list[str]]:
    """What a run locks: its hosts, by the machines they reach, and the app it changes.

    An action with an ``app`` parameter (deploy, deploy-rollback) also locks that app in
    its environment: one deploy or rollback of an app at a time, whatever hosts each
    targets. The app lock is a row like a host's (``app NAME``), so ``status`` shows it.
    """
    hosts = list(the_plan.hosts)
    addresses = list(the_plan.addresses) if the_plan.addresses else list(hosts)
    app = the_plan.resolved.params.get("app")
    if isinstance(app, str):
        hosts.append(f"app {app}")
        addresses.append(f"app:{the_plan.env}:{app}")
    return hosts, addresses


def _status_of(exc: BaseException) -> ExitStatus:
    """The exit status a run stopped by ``exc`` ends with (for its count in the metrics)."""
    if isinstance(exc, KeyboardInterrupt):
        return ExitStatus.INTERRUPTED
    return exc.status if isinstance(exc, AutoopsError) else ExitStatus.INTERNAL_ERROR


def _presented_grant(text: str | None) -> str | None:
    """How run.requested names a presented grant: its id, or "token" (a bearer credential)."""
    if text is None:
        return None
    return text.strip() if re.fullmatch(grants.GRANT_ID, text.strip()) else "token"
