"""The guarded run path, end to end: resolve → plan → policy → approval → audit → run.

This is the library entry point the CLI, cron, front-ends and agents share. Every
requested run leaves ``run.requested`` and ``run.decision`` in the audit log before
anything executes, and ends with ``run.finished`` (or ``run.interrupted``).
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from autoops.audit.log import AuditLog, Query
from autoops.audit.witness import Witness
from autoops.common import durations, identity
from autoops.common.identity import Principal
from autoops.common.names import ACTOR_NAME
from autoops.common.procs import is_alive, kill_recorded, marked, process_start_time, still_alive
from autoops.core import inventory, policy
from autoops.core.catalog import Catalog
from autoops.core.plan import Content, Plan, fleet_map
from autoops.core.plan import build as build_plan
from autoops.core.policy import Decision, HaltFacts, Outcome, Policy
from autoops.core.risk import Risk
from autoops.errors import (
    ApprovalPlanChangedError,
    ApprovalRequiredError,
    ApproverNotAllowedError,
    AutoopsError,
    BadInputError,
    ConfirmationMismatchError,
    EnvUnknownError,
    FrozenError,
    GrantMalformedError,
    HaltedError,
    HostsUnreachableError,
    InterruptedRunError,
    PlaybookFailedError,
    PolicyDeniedError,
    SecretsError,
    ServiceRefusedError,
    WindowClosedError,
)
from autoops.exits import ExitStatus
from autoops.guard import approvals, grants
from autoops.guard.grants import Grant
from autoops.guard.grantstore import GrantStore
from autoops.guard.halts import Halts
from autoops.guard.locks import Locks, needs_lock
from autoops.run import runner
from autoops.run.runner import HostResult, RunOutcome
from autoops.secrets.redact import Redactor
from autoops.secrets.store import EnvSecrets, Secrets
from autoops.settings import Settings
from autoops.state.approvals import ApprovalState
from autoops.state.db import StateDB
from autoops.state.locks import LockHolder
from autoops.state.runs import RunRow, RunState

ResultCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class RunRequest:
    """What somebody asked for; parameters are still raw (strings from a command line)."""

    action: str
    env: str
    params: Mapping[str, Any] = field(default_factory=dict)
    limit: str | None = None
    check_mode: bool = False
    actor: str | None = None
    one_host: bool = False  # refuse unless the limit resolves to exactly one host (vm-safe)
    wait: float = 0  # seconds to wait for another run's host lock
    grant: str | None = None  # a grant token (or the id of one this machine has seen)
    approval: str | None = None  # an approved two-person request id


@dataclass
class RunResult:
    run_id: str
    plan: Plan
    decision: Decision
    approval: approvals.Approval
    status: ExitStatus
    runner_status: str
    stats: dict[str, dict[str, int]]
    results: list[dict[str, Any]]
    error: AutoopsError | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def reports(self) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {}
        for res in self.results:
            if res.get("report") is not None:
                found.setdefault(res["host"], []).append(res["report"])
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "plan": self.plan.to_dict(),
            "decision": self.decision.to_dict(),
            "approval": self.approval.to_dict(),
            "status": self.status.name.lower(),
            "exit_status": int(self.status),
            "runner_status": self.runner_status,
            "stats": self.stats,
            "reports": self.reports,
            "results": self.results,
            "warnings": self.warnings,
            "error": self.error.to_dict() if self.error else None,
        }


def new_run_id(now: datetime) -> str:
    """Sortable and unguessable: ``20261122T081500Z-3fa9c1d2``."""
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(4)}"


class Autoops:
    """One project (catalog, policy, inventories) and one state directory."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self.redactor = Redactor()

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog.load(self.settings.catalog_path, self.settings.project_dir)

    @cached_property
    def policy(self) -> Policy:
        return Policy.load(self.settings.policy_path)

    @cached_property
    def content(self) -> Content:
        """The project's content; in service mode only root and the service may own it."""
        owners = None
        if self.settings.service is not None:
            owners = frozenset({0, *_uids(self.settings.service.user)})
        return Content(self.settings.project_dir, self.settings.child_environ(), owners)

    @cached_property
    def db(self) -> StateDB:
        return StateDB(self.settings.db_path)

    @cached_property
    def locks(self) -> Locks:
        return Locks(self.db, alive=self._holder_alive)

    @cached_property
    def halts(self) -> Halts:
        return Halts(self.db, self.clock)

    @cached_property
    def grants(self) -> GrantStore:
        return GrantStore(self.settings, self.db, self.policy, self.clock)

    @cached_property
    def second_person(self) -> approvals.SecondPerson:
        return approvals.SecondPerson(self.db, self.clock)

    @cached_property
    def secrets(self) -> Secrets:
        return Secrets(self.settings, set(self.policy.environments), self.clock)

    @cached_property
    def audit(self) -> AuditLog:
        """The audit log; with a witness configured, each durable record is also witnessed."""
        witness = Witness(self.settings.witness) if self.settings.witness else None
        return AuditLog(self.settings.audit_path, self.db, self.redactor, witness=witness)

    # -- planning ---------------------------------------------------------------------

    def actor_of(self, request: RunRequest) -> str:
        return self._actor(request.actor)

    def _actor(self, given: str | None) -> str:
        return self.principal(given).name

    def refuse_in_service_mode(self, command: str, sub: str | None = None) -> None:
        """Commands that would hand the caller the service account's powers are refused.

        ``secrets edit`` runs an editor as the service user (an editor runs shells);
        ``lab`` starts containers and writes into the project.
        """
        if self.settings.service is None:
            return
        if command == "lab" or (command, sub) == ("secrets", "edit"):
            what = "secrets edit" if command == "secrets" else "lab"
            raise ServiceRefusedError(
                f"`autoops {what}` is not available in service mode",
                remedy="Use `autoops secrets set --env ENV NAME` (value on stdin)."
                if command == "secrets" else "The lab is a development tool: use same-user mode.")

    def principal(self, given: str | None = None) -> Principal:
        """Who is acting.

        In service mode the invoking Unix user, whatever ``given`` says (``--actor`` is
        then only a recorded label); in same-user mode ``given`` or the OS user — an
        assertion, not proof.
        """
        label = _checked_actor(given) if given else None
        if self.settings.service is not None:
            name = self.settings.os_user
            return Principal(name, identity.unix_groups(name), label)
        name = label or _checked_actor(self.settings.os_user)
        groups = (identity.unix_groups(name) if identity.same(name, self.settings.os_user)
                  else frozenset())
        return Principal(name, groups)

    def plan(self, request: RunRequest) -> tuple[Plan, Decision]:
        """Validate, resolve hosts and decide, without running or recording anything.

        A grant or approval passed with the request is checked (not used) and counts.
        """
        actor = self.actor_of(request)
        the_plan = self._build(request)
        return the_plan, self.decide(the_plan, actor, self._authority(request, the_plan, actor))

    def lock_view(self, the_plan: Plan) -> dict[str, Any]:
        """Whether running ``the_plan`` takes a host lock, and which live runs hold its hosts now."""
        needed = needs_lock(the_plan.resolved.action.risk, the_plan.check_mode)
        held = (self.locks.holders(the_plan.env, the_plan.hosts, the_plan.addresses or None)
                if needed else [])
        return {"needed": needed, "held_by": [{**holder.to_dict(), "hosts": hosts}
                                              for holder, hosts in held]}

    def _build(self, request: RunRequest) -> Plan:
        resolved = self.catalog.resolve(request.action, request.params, request.env)
        the_plan = build_plan(resolved, request.env, self.content,
                              set(self.policy.environments), request.limit,
                              check_mode=request.check_mode, host_cache=self.db.hosts)
        if request.one_host and len(the_plan.hosts) != 1:
            raise BadInputError(
                f"--limit {request.limit!r} matches {len(the_plan.hosts)} hosts, not exactly one",
                remedy="Name one inventory host, or use `autoops run --limit` for several.")
        return the_plan

    def _authority(self, request: RunRequest, the_plan: Plan, actor: str) -> Authority:
        """Check the grant and approval a request presents; raise if either is refused."""
        grant = None
        if request.grant:
            grant, _token = self.grants.resolve(request.grant)
            self.grants.check(grant, self.clock())
            action = the_plan.resolved.action
            grants.check_scope(grant, env=the_plan.env, action=action.name, risk=action.risk,
                               hosts=the_plan.hosts, params=the_plan.resolved.params)
        second = (self.second_person.check(request.approval, the_plan, actor)
                  if request.approval else None)
        return Authority(grant, second)

    def decide(self, the_plan: Plan, actor: str, authority: Authority | None = None) -> Decision:
        action = the_plan.resolved.action
        grant = authority.grant if authority else None
        return policy.evaluate(self.policy, policy.Request(
            env=the_plan.env, action=action.name, risk=action.risk,
            action_environments=action.environments, actor=actor,
            check_mode=the_plan.check_mode, now=self.clock(),
            halt=self.halts.for_env(the_plan.env, actor),
            grant=policy.GrantFacts(grant.id, grant.break_glass, grant.reason) if grant else None,
            second_person=authority.second_person if authority else None))

    def policy_by_env(self, action_name: str) -> dict[str, dict[str, Any]]:
        """What the policy says about an action in every declared environment, now."""
        action = self.catalog.get(action_name)
        return {
            env: policy.evaluate(self.policy, policy.Request(
                env=env, action=action.name, risk=action.risk,
                action_environments=action.environments, actor=self.settings.os_user,
                check_mode=False, now=self.clock(), halt=self.halts.for_env(env))).to_dict()
            for env in self.policy.environments
        }

    # -- running ----------------------------------------------------------------------

    def run(self, request: RunRequest, *, confirm: approvals.Confirm | None = None,
            on_result: ResultCallback | None = None,
            cancel: Callable[[], bool] = lambda: False,
            on_start: Callable[[], None] = lambda: None) -> RunResult:
        """Plan, decide, get approval, record, execute and record the result.

        Refusals raise (after being audited); a run that executed returns a RunResult
        whose ``status`` says how it went. The policy is checked when the run is
        requested and again once its hosts are locked, just before anything executes.
        """
        self.recover_interrupted()
        who = self.principal(request.actor)
        actor = who.name
        the_plan = self._build(request)
        run_id = new_run_id(self.clock())
        self.db.runs.register(RunRow(
            run_id=run_id, pid=os.getpid(), pid_start=process_start_time(os.getpid()) or "",
            env=the_plan.env, action=the_plan.action_name, actor=actor,
            started=self.clock().isoformat(), status=RunState.RUNNING, data_dir=None))
        record = self._recorder(run_id, actor, the_plan)
        record("run.requested", {
            "plan": the_plan.to_dict(), "os_user": self.settings.os_user,
            "account": self.settings.account, "mode": self.settings.mode,
            "actor_label": who.label, "controller": socket.gethostname(), "pid": os.getpid(),
            "environ_ignored": list(self.settings.ignored_environ),
            "grant": _presented_grant(request.grant), "approval": request.approval})
        loaded = self._load_secrets(run_id, the_plan.env, record)
        authority, decision = self._checked(run_id, request, the_plan, actor, record)
        if decision.outcome is Outcome.APPROVAL_REQUIRED and \
                policy.SECOND_PERSON in decision.requirements:
            self._request_second_person(run_id, the_plan, actor, decision, record)
        try:
            approval = approvals.satisfy(the_plan, decision, confirm)
        except KeyboardInterrupt:
            record("run.interrupted", {"reason": "interrupted while waiting for approval"})
            self.db.runs.set_state(run_id, RunState.INTERRUPTED)
            raise
        record("run.decision", {"decision": decision.to_dict(), "approval": approval.to_dict(),
                                "grant": authority.grant_summary()})
        if not approval.satisfied:
            error = _refusal(decision, approval, the_plan)
            error.details.update(decision=decision.to_dict())
            self._refused(run_id, record, error, error.status.name.lower())
            raise error
        locked = self._lock(run_id, actor, the_plan, request=request, authority=authority,
                            record=record)
        try:
            authorised = self._recheck(run_id, request, the_plan, actor, record)
            on_start()
            return self._execute(run_id, actor, the_plan, decision, approval, loaded=loaded,
                                 record=record, on_result=on_result, cancel=cancel,
                                 authorised=authorised)
        finally:
            if locked:
                self.locks.release(run_id)

    def _checked(self, run_id: str, request: RunRequest, the_plan: Plan, actor: str,
                 record: Callable[..., dict[str, Any]]) -> tuple[Authority, Decision]:
        try:
            authority = self._authority(request, the_plan, actor)
        except AutoopsError as refused:
            self._refused(run_id, record, refused, refused.status.name.lower())
            raise
        return authority, self.decide(the_plan, actor, authority)

    def _request_second_person(self, run_id: str, the_plan: Plan, actor: str,
                               decision: Decision, record: Callable[..., dict[str, Any]]) -> None:
        """Record a two-person request bound to this plan and stop the run (status 4)."""
        ttl = self.policy.environments[the_plan.env].approval_ttl
        row = self.second_person.request(the_plan, actor, ttl)
        record("approval.requested", {"request_id": row.request_id,
                                      "plan_digest": row.plan_digest, "expires": row.expires})
        approval = approvals.Approval(False, policy.SECOND_PERSON,
                                      f"waiting for a second person: request {row.request_id}")
        record("run.decision", {"decision": decision.to_dict(), "approval": approval.to_dict(),
                                "grant": None})
        error = ApprovalRequiredError(
            f"{the_plan.action_name} in {the_plan.env} needs a second person: approval request "
            f"{row.request_id} recorded (expires {row.expires}); nothing ran",
            remedy=f"Another person runs `autoops approve {row.request_id}`; then run the same "
                   f"command again with --approval {row.request_id}.",
            details={"approval_request": row.request_id, "decision": decision.to_dict()})
        self._refused(run_id, record, error, "approval_required")
        raise error

    def _recheck(self, run_id: str, request: RunRequest, the_plan: Plan, actor: str,
                 record: Callable[..., dict[str, Any]]) -> list[str]:
        """The last check before execution: time, halts, grant and approval, then use them.

        Between the request and now the run may have waited for a confirmation or a
        lock: a window may have closed, a halt been engaged or the grant revoked.
        """
        authority, decision = self._checked(run_id, request, the_plan, actor, record)
        stopped = [r for r in decision.rules if r.outcome is Outcome.DENIED]
        if stopped:
            error = _denial(stopped[0])
            error.message += " (at the check before execution)"
            error.details.update(decision=decision.to_dict())
            self._refused(run_id, record, error, error.status.name.lower())
            raise error
        self._same_plan(run_id, request, the_plan, record)
        used = []
        try:
            if authority.grant is not None:
                grant = authority.grant
                number = self.grants.use(grant, run_id, self.clock())
                record("grant.used", {"grant_id": grant.id, "use": number,
                                      "max_uses": grant.uses, "break_glass": grant.break_glass,
                                      "issuer": grant.issuer, "reason": grant.reason})
                used.append(f"grant:{grant.id}")
            if authority.second_person is not None:
                self.second_person.use(authority.second_person.request_id, run_id)
                used.append(f"second-person:{authority.second_person.request_id}")
        except AutoopsError as refused:
            self._refused(run_id, record, refused, refused.status.name.lower())
            raise
        return used

    def _same_plan(self, run_id: str, request: RunRequest, the_plan: Plan,
                   record: Callable[..., dict[str, Any]]) -> None:
        """Recompute the plan after every wait; what was approved is what runs.

        Between the request and now the run may have waited for a confirmation, an
        approval or a host lock: a role, the inventory or the policy may have changed.
        """
        try:
            fresh = self._build(request)
        except AutoopsError as refused:
            self._refused(run_id, record, refused, refused.status.name.lower())
            raise
        changed = approvals.plan_changes(the_plan.to_dict(), fresh.to_dict())
        if changed:
            error = ApprovalPlanChangedError(
                f"the plan changed while run {run_id} waited ({', '.join(changed)}: "
                f"content {the_plan.content_digest[:19]}… is now {fresh.content_digest[:19]}…);"
                " nothing ran",
                remedy="Review what changed (`autoops plan …`), then run it again.",
                details={"changed": changed, "approved_digest": the_plan.content_digest,
                         "current_digest": fresh.content_digest})
            self._refused(run_id, record, error, "approval_required")
            raise error

    def _lock(self, run_id: str, actor: str, the_plan: Plan, *, request: RunRequest,
              authority: Authority, record: Callable[..., dict[str, Any]]) -> bool:
        """Lock the plan's hosts when the run can change something; False when it cannot.

        While it waits, a halt or the revocation of its grant ends the wait.
        """
        if not needs_lock(the_plan.resolved.action.risk, the_plan.check_mode):
            return False
        holder = LockHolder(run_id=run_id, actor=actor, pid=os.getpid(),
                            pid_start=process_start_time(os.getpid()) or "",
                            acquired=self.clock().isoformat())

        def stale(gone: LockHolder) -> None:
            record("lock.stale_released", {"holder": gone.to_dict(), "hosts": list(the_plan.hosts),
                                           "reason": f"process {gone.pid} of run {gone.run_id} "
                                                     "is gone"})

        def still_wanted() -> None:
            self.recover_interrupted()  # a dead holder's processes die before its locks go
            halt = self.halts.for_env(the_plan.env, actor)
            if halt is not None:
                raise _halted(halt, f"run {run_id} stopped waiting for a host lock")
            if authority.grant is not None:
                self.grants.check(authority.grant, self.clock())
        try:
            self.locks.acquire(the_plan.env, the_plan.hosts, holder, wait=request.wait,
                               addresses=the_plan.addresses or None,
                               on_stale=stale, check=still_wanted)
        except AutoopsError as refused:
            self._refused(run_id, record, refused, refused.status.name.lower())
            raise
        except KeyboardInterrupt:
            record("run.interrupted", {"reason": "interrupted while waiting for a host lock"})
            self.db.runs.set_state(run_id, RunState.INTERRUPTED)
            raise
        return True

    def _load_secrets(self, run_id: str, env: str,
                      record: Callable[..., dict[str, Any]]) -> EnvSecrets:
        """Decrypt before any prompt: a key that cannot open the files stops the run here."""
        try:
            loaded = self.secrets.load_for_run(env)
        except SecretsError as refused:
            self._refused(run_id, record, refused, "refused")
            raise
        self.redactor.add(loaded.values)
        return loaded

    def _refused(self, run_id: str, record: Callable[..., dict[str, Any]], error: AutoopsError,
                 status: str) -> None:
        """End a run that never executed: its run.finished names the error."""
        error.details.update(run_id=run_id)
        record("run.finished", {"status": status, "exit_status": int(error.status),
                                "error": error.to_dict()})
        self.db.runs.set_state(run_id, RunState.REFUSED)

    def _recorder(self, run_id: str, actor: str,
                  the_plan: Plan) -> Callable[..., dict[str, Any]]:
        def record(type_: str, data: dict[str, Any], *, durable: bool = True) -> dict[str, Any]:
            return self.audit.append(run_id=run_id, type_=type_, actor=actor, env=the_plan.env,
                                     action=the_plan.action_name, data=data, durable=durable)
        return record

    def _execute(self, run_id: str, actor: str, the_plan: Plan, decision: Decision,
                 approval: approvals.Approval, *, loaded: EnvSecrets,
                 record: Callable[..., dict[str, Any]], on_result: ResultCallback | None,
                 cancel: Callable[[], bool], authorised: list[str]) -> RunResult:
        results: list[dict[str, Any]] = []

        def handle(result: HostResult) -> None:
            data = self.redactor(result.to_dict())
            record("task.result", data, durable=False)
            results.append(data)
            if on_result is not None:
                on_result(data)

        sops_env, inline_key = self.secrets.run_key(loaded)
        spec = runner.RunSpec(
            run_id=run_id, project_dir=self.settings.project_dir,
            playbook=self.settings.project_dir / the_plan.resolved.action.playbook,
            inventory=the_plan.inventory, limit=the_plan.limit,
            extravars={
                **the_plan.resolved.params,
                "autoops_run_id": run_id, "autoops_actor": actor, "autoops_env": the_plan.env,
                "autoops_action": the_plan.action_name, "autoops_check_mode": the_plan.check_mode,
            },
            check_mode=the_plan.check_mode, runs_dir=self.settings.runs_dir,
            python=self.settings.python, environ=self.settings.child_environ(sops_env),
            age_key=inline_key)
        record("run.started", {"hosts": list(the_plan.hosts), "check_mode": the_plan.check_mode,
                               "locked": needs_lock(the_plan.resolved.action.risk,
                                                    the_plan.check_mode),
                               "content_digest": the_plan.content_digest,
                               "authorised_by": authorised, "sops": loaded.to_dict()})
        halted = self.halts.watcher(the_plan.env, actor)
        try:
            outcome = runner.execute(spec, handle, lambda: cancel() or halted() is not None,
                                     on_worker=lambda pid, start: self.db.runs.set_worker(
                                         run_id, pid, start))
        except BaseException as exc:
            reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"error: {exc}"
            record("run.interrupted", {"reason": reason})
            self.db.runs.set_state(run_id, RunState.INTERRUPTED)
            raise
        outcome.errors = [self.redactor.text(e) for e in outcome.errors]
        outcome.warnings = [self.redactor.text(w) for w in outcome.warnings] + [
            f"too short to redact, keep it out of output: {name}" for name in loaded.unmaskable]
        halt = halted() if outcome.status == "canceled" else None
        status, error = classify(outcome, run_id, halt)
        if halt is not None:
            record("run.interrupted", {"reason": f"halted: {error.message if error else ''}",
                                       "halt": asdict(halt), "stats": outcome.stats,
                                       "killed": len(outcome.killed)})
        elif status is ExitStatus.INTERRUPTED:
            record("run.interrupted", {"reason": "cancelled", "stats": outcome.stats})
        record("run.finished", {
            "status": status.name.lower(), "exit_status": int(status),
            "runner_status": outcome.status, "rc": outcome.rc, "stats": outcome.stats,
            "errors": outcome.errors, "error": error.to_dict() if error else None})
        self.db.runs.set_state(run_id, RunState.FINISHED)
        return RunResult(run_id=run_id, plan=the_plan, decision=decision, approval=approval,
                         status=status, runner_status=outcome.status, stats=outcome.stats,
                         results=results, error=error, warnings=outcome.warnings)

    def recover_interrupted(self) -> list[str]:
        """Record runs whose autoops died without finishing (kill -9, power loss).

        Whatever is left of such a run — its worker, ansible-playbook, ansible's setsid()
        workers — is killed first, by recorded pid and start time and by the run's mark
        in their environment; only then are its host locks released. A run with a
        process that cannot be killed keeps its locks and stays "running".
        """
        recovered = []
        for row in self.db.runs.running():
            if row.pid_start and is_alive(row.pid, row.pid_start):
                continue
            left = self.run_processes(row)
            killed = kill_recorded(left)
            survivors = still_alive(left)
            if survivors:
                continue  # not ours to kill (another user's): never release its locks
            self.audit.append(run_id=row.run_id, type_="run.interrupted", actor=row.actor,
                              env=row.env, action=row.action, data={
                                  "reason": f"autoops process {row.pid} ended without "
                                            "recording run.finished (killed or crashed)",
                                  "killed": killed, "recovered_by_pid": os.getpid()})
            self.db.runs.set_state(row.run_id, RunState.INTERRUPTED)
            self.db.locks.unlock(row.run_id)
            for leftover in self.settings.runs_dir.glob(f"{row.run_id}.*"):
                shutil.rmtree(leftover, ignore_errors=True)
            recovered.append(row.run_id)
        return recovered

    def run_processes(self, row: RunRow) -> list[tuple[int, str]]:
        """The live processes of a run: its worker and everything carrying its mark."""
        found = set(marked(row.run_id))
        if row.worker_pid and row.worker_start and is_alive(row.worker_pid, row.worker_start):
            found.add((row.worker_pid, row.worker_start))
        own = (os.getpid(), process_start_time(os.getpid()) or "")
        return sorted(found - {own})

    def _holder_alive(self, holder: LockHolder) -> bool:
        """A lock holder lives while its autoops does, or any process of its run does."""
        if is_alive(holder.pid, holder.pid_start):
            return True
        row = self.db.runs.get(holder.run_id)
        return bool(still_alive(self.run_processes(row))) if row else bool(marked(holder.run_id))

    # -- secrets ----------------------------------------------------------------------

    def secrets_init(self, env: str) -> dict[str, Any]:
        result = self.secrets.init(env)
        self._record_admin("secrets.initialised", env, {
            "fingerprint": result["fingerprint"], "file": result["file"],
            "key_created": result["key_created"], "file_created": result["file_created"]})
        return result

    def secrets_edit(self, env: str, file: str | None = None, *,
                     terminal: bool) -> dict[str, Any]:
        """``terminal``: the caller has one (the CLI checks its streams; sops needs it)."""
        result = self.secrets.edit(env, file, terminal=terminal)
        if result["changed"]:  # names only: values never reach the log
            self._record_admin("secrets.edited", env, result)
        return result

    def secrets_set(self, env: str, name: str, value: str,
                    file: str | None = None) -> dict[str, Any]:
        result = self.secrets.set_value(env, name, value, file)
        self._record_admin("secrets.set", env, {  # the name only, never the value
            k: result[k] for k in ("file", "name", "created")})
        return result

    def secrets_unset(self, env: str, name: str, file: str | None = None) -> dict[str, Any]:
        result = self.secrets.unset_value(env, name, file)
        self._record_admin("secrets.unset", env, {k: result[k] for k in ("file", "name")})
        return result

    def secrets_rotate(self, env: str, new_recipient: str | None = None,
                       new_key: bool = False) -> dict[str, Any]:
        result = self.secrets.rotate(env, new_recipient, new_key)
        self._record_admin("secrets.rotated", env, {
            k: result[k] for k in ("files", "old_recipients", "new_recipients", "rekeyed",
                                   "retired_key")})
        return result

    def _record_admin(self, type_: str, env: str, data: dict[str, Any], *,
                      action: str = "secrets", actor: str | None = None) -> None:
        self.audit.append(run_id=new_run_id(self.clock()), type_=type_,
                          actor=actor or self.settings.os_user, env=env, action=action, data={
                              **data, "os_user": self.settings.os_user,
                              "controller": socket.gethostname()})

    # -- emergency stop ---------------------------------------------------------------

    def halt(self, env: str | None, reason: str, actor: str | None = None,
             wait: float = 10.0, *, sleep: Callable[[float], None] = time.sleep,
             against: str | None = None) -> dict[str, Any]:
        """Engage the emergency stop and wait (up to ``wait`` s) for runs in scope to end.

        Anyone may engage a halt. ``against`` stops only that actor's runs (an agent, a
        cron job). A run counts as stopped only once none of its processes lives.
        """
        who = self._actor(actor)
        scope = self._scope(env)
        target = _checked_actor(against) if against else None
        row, engaged = self.halts.engage(scope, _reason(reason), who, target)
        if engaged:
            self._record_admin("halt.engaged", scope, {"scope": scope, "reason": row.reason,
                                                       "against": row.against or None},
                               action="halt", actor=who)

        def covered(run: RunRow) -> bool:
            return scope in {"*", run.env} and (not row.against or identity.same(run.actor,
                                                                                row.against))
        in_scope = {r.run_id for r in self.db.runs.running() if covered(r)}
        left = self._live_runs(in_scope)
        deadline = time.monotonic() + wait
        while left and time.monotonic() < deadline:
            sleep(0.1)
            self.recover_interrupted()
            left = self._live_runs(in_scope)
        return {"halt": asdict(row), "engaged": engaged, "runs_stopped": sorted(in_scope - left),
                "runs_still_running": sorted(left)}

    def _live_runs(self, run_ids: set[str]) -> set[str]:
        """Those of ``run_ids`` still recorded as running or with a live process."""
        live = set()
        for run_id in run_ids:
            row = self.db.runs.get(run_id)
            if row is not None and (row.status == RunState.RUNNING or
                                    still_alive(self.run_processes(row))):
                live.add(run_id)
        return live

    def resume(self, env: str | None, reason: str, actor: str | None = None,
               against: str | None = None) -> dict[str, Any]:
        """Lift a halt: only an approver of its scope, and never the actor it stops."""
        who = self.principal(actor)
        scope = self._scope(env)
        halt = self.halts.get(scope, against)
        if halt is None:
            raise BadInputError(f"no emergency stop is in force for {scope!r}"
                                + (f" against {against}" if against else ""),
                                remedy="`autoops status` lists the halts in force.")
        if halt.against and identity.same(who.name, halt.against):
            raise ApproverNotAllowedError(
                f"{who.name} cannot lift the halt engaged against {who.name}",
                remedy="Another person (an approver, if policy.yml names them) lifts it.")
        self._approver_check(who, list(self.policy.environments) if scope == "*" else [scope],
                             "lift the halt of")
        lifted = self.halts.lift(scope, against)
        if lifted is None:
            raise BadInputError(f"the halt of {scope!r} was lifted by someone else meanwhile")
        self._record_admin("halt.lifted", scope, {"scope": scope, "reason": _reason(reason),
                                                   "halt": asdict(lifted)},
                           action="halt", actor=who.name)
        return {"lifted": asdict(lifted), "still_in_force": [asdict(h) for h in
                                                             self.halts.active()]}

    def _approver_check(self, who: Principal, envs: list[str], what: str) -> None:
        """Refuse unless ``who`` is among the approvers each of ``envs`` names (if any)."""
        for env in envs:
            approvers = self.policy.environments[env].approvers
            if approvers is not None and not who.is_one_of(approvers.users, approvers.groups):
                raise ApproverNotAllowedError(
                    f"{who.name} may not {what} {env}: its approvers are "
                    f"{approvers.describe()}")

    def status(self) -> dict[str, Any]:
        """Halts, runs in progress, host locks and pending approvals."""
        self.recover_interrupted()
        return {
            "halts": [asdict(h) for h in self.halts.active()],
            "runs": [{"run_id": r.run_id, "env": r.env, "action": r.action, "actor": r.actor,
                      "pid": r.pid, "started": r.started} for r in self.db.runs.running()],
            "locks": [{"env": env, "host": host, "address": address, **holder.to_dict()}
                      for env, host, address, holder in self.db.locks.held()],
            "approvals_pending": [d["id"] for d in self.approval_list(pending_only=True)],
        }

    def inventory_check(self) -> dict[str, Any]:
        """Every environment's hosts and machines; raise if one belongs to two environments."""
        fleet = fleet_map(self.content, set(self.policy.environments))
        inventory.check_overlaps(fleet)
        return {"ok": True, "environments": fleet}

    def effective_policy(self, env: str | None = None) -> dict[str, Any]:
        """The policy as it applies (built-in defaults < `defaults:` < each environment)."""
        envs = self.policy.to_dict()
        if env is not None:
            envs = {self._scope(env): envs[env]}
        return {"path": str(self.settings.policy_path), "environments": envs}

    def _scope(self, env: str | None) -> str:
        if env is None:
            return "*"
        if env not in self.policy.environments:
            raise EnvUnknownError(f"unknown environment {env!r}")
        return env

    # -- grants -----------------------------------------------------------------------

    def grant_init_keys(self, env: str | None) -> list[dict[str, Any]]:
        envs = [self._scope(env)] if env else list(self.policy.environments)
        done = self.grants.init_keys(envs)
        for key in done:
            if key["created"]:
                self._record_admin("grant.keys_created", key["env"], {
                    "key_id": key["key_id"], "public_key": key["public_key"]}, action="grant")
        return done

    def grant_create(self, *, env: str, actions: list[str], max_risk: str, hosts: str | None,
                     params: list[str], expires_in: str, uses: int | None, break_glass: bool,
                     reason: str, actor: str | None = None) -> dict[str, Any]:
        self._scope(env)
        names = [self.catalog.get(a).name for a in actions]
        try:
            risk = Risk.parse(max_risk)
        except ValueError as exc:
            raise BadInputError(f"--max-risk: {exc}") from None
        try:
            grant, token = self.grants.create(
                env=env, actions=names, max_risk=risk, hosts=hosts,
                params=grants.parse_param_constraints(params),
                expires_in=durations.parse_duration(expires_in), uses=uses,
                break_glass=break_glass, reason=_reason(reason), issuer=self._actor(actor))
        except (GrantMalformedError, ValueError) as exc:  # an option, not a token, is wrong
            raise BadInputError(f"grant create: {exc}",
                                remedy="`autoops grant create --help` shows each option's form.",
                                ) from None
        doc = grant.to_dict()
        self._record_admin("grant.created", env, doc, action="grant", actor=grant.issuer)
        return {"grant": doc, "token": token}

    def grant_revoke(self, grant_id: str, reason: str, actor: str | None = None) -> dict[str, Any]:
        who = self._actor(actor)
        row = self.grants.revoke(grant_id, who, _reason(reason))
        self._record_admin("grant.revoked", row.env, {"grant_id": row.grant_id,
                                                      "reason": row.revoke_reason},
                           action="grant", actor=who)
        return self.grants.describe(row, self.clock())

    # -- two-person approvals ---------------------------------------------------------

    def approval_decide(self, request_id: str, *, approve: bool, reason: str | None = None,
                        actor: str | None = None) -> dict[str, Any]:
        who = self.principal(actor)
        if not approve:
            reason = _reason(reason or "")
        pending = self.second_person.get(request_id)
        if pending.env in self.policy.environments:
            self._approver_check(who, [pending.env], "approve or reject requests in")
        row = self.second_person.decide(request_id, who.name, approve=approve, reason=reason)
        self._record_admin("approval.approved" if approve else "approval.rejected", row.env, {
            "request_id": row.request_id, "requester": row.requester,
            "plan_digest": row.plan_digest, "reason": reason}, action=row.action,
            actor=who.name)
        return approvals.request_to_dict(row, self.clock())

    def approval_list(self, *, pending_only: bool = False) -> list[dict[str, Any]]:
        now = self.clock()
        docs = [approvals.request_to_dict(r, now) for r in self.db.approvals.all()]
        return [d for d in docs if d["state"] == ApprovalState.PENDING or not pending_only]

    # -- audit ------------------------------------------------------------------------

    def audit_query(self, query: Query, limit: int | None = None) -> list[dict[str, Any]]:
        self.recover_interrupted()
        return self.audit.query(query, limit)


def classify(outcome: RunOutcome, run_id: str,
             halt: HaltFacts | None = None) -> tuple[ExitStatus, AutoopsError | None]:
    """Map the runner's outcome to an exit status; failures win over unreachable hosts."""
    failed = sorted(h for h, s in outcome.stats.items() if s.get("failures"))
    dark = sorted(h for h, s in outcome.stats.items() if s.get("dark"))
    details = {"run_id": run_id}
    if outcome.status == "canceled" and halt is not None:
        error = _halted(halt, f"run {run_id} was cancelled")
        error.details.update(details)
        return ExitStatus.HALTED, error
    if outcome.status == "canceled":
        return ExitStatus.INTERRUPTED, InterruptedRunError(
            f"run {run_id} was cancelled", details=details)
    if failed:
        return ExitStatus.PLAYBOOK_FAILED, PlaybookFailedError(
            f"run {run_id}: tasks failed on {', '.join(failed)}", details=details)
    if dark:
        return ExitStatus.UNREACHABLE, HostsUnreachableError(
            f"run {run_id}: unreachable: {', '.join(dark)}", details=details)
    if outcome.status != "successful" or outcome.rc != 0:
        detail = outcome.errors[-1] if outcome.errors else f"ansible-playbook exit {outcome.rc}"
        return ExitStatus.PLAYBOOK_FAILED, PlaybookFailedError(
            f"run {run_id}: the playbook did not complete: {detail}", details=details)
    return ExitStatus.OK, None


def _refusal(decision: Decision, approval: approvals.Approval,
             the_plan: Plan) -> AutoopsError:
    rule = decision.deciding_rule
    if decision.outcome is Outcome.DENIED:
        return _denial(rule)
    if approval.detail.startswith("the typed text"):
        return ConfirmationMismatchError(
            f"confirmation did not match {the_plan.env!r}; nothing ran")
    return ApprovalRequiredError(
        f"{the_plan.action_name} in {the_plan.env} needs approval ({rule.rule}: {rule.reason}); "
        f"{approval.detail}; nothing ran")


def _uids(user: str) -> set[int]:
    try:
        return {pwd.getpwnam(user).pw_uid}
    except KeyError:
        return set()


def _checked_actor(name: str) -> str:
    """An actor name as it may appear in the audit log."""
    if not re.fullmatch(ACTOR_NAME, name):
        raise BadInputError(f"--actor {name!r} is not a valid actor name",
                            remedy="Use letters, digits and . _ @ + - (at most 64).")
    return name


def _presented_grant(text: str | None) -> str | None:
    """How run.requested names a presented grant: its id, or "token" (a bearer credential)."""
    if text is None:
        return None
    return text.strip() if re.fullmatch(grants.GRANT_ID, text.strip()) else "token"


def _reason(text: str) -> str:
    """A reason for the audit log: one line, not empty, at most 500 characters."""
    flat = " ".join(text.split())
    if not flat or len(flat) > 500:
        raise BadInputError("--reason must say why, in one line of at most 500 characters")
    return flat


def _denial(rule: policy.RuleResult) -> AutoopsError:
    """The error for a rule that denies: halts exit 7, windows and freezes have own codes."""
    kind: type[AutoopsError] = {"halt": HaltedError, "window": WindowClosedError,
                                "freeze": FrozenError}.get(rule.rule, PolicyDeniedError)
    return kind(f"denied by policy rule {rule.rule}: {rule.reason}; nothing ran",
                remedy=f"To let it through: {rule.satisfy}." if rule.satisfy else None)


def _halted(halt: HaltFacts, what: str) -> HaltedError:
    return HaltedError(f"{what}: {halt.describe()}", details={"halt": asdict(halt)})


@dataclass(frozen=True)
class Authority:
    """What a request presented in place of a human now: a grant, a second person."""

    grant: Grant | None = None
    second_person: policy.SecondPersonFacts | None = None

    def grant_summary(self) -> dict[str, Any] | None:
        grant = self.grant
        if grant is None:
            return None
        return {"grant_id": grant.id, "issuer": grant.issuer, "break_glass": grant.break_glass,
                "reason": grant.reason, "expires": grant.to_dict()["expires"],
                "max_uses": grant.uses}
