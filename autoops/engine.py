"""The guarded run path, end to end: resolve → plan → policy → approval → audit → run.

This is the library entry point the CLI, cron, front-ends and agents share. Every
requested run leaves ``run.requested`` and ``run.decision`` in the audit log before
anything executes, and ends with ``run.finished`` (or ``run.interrupted``).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from autoops import approvals, policy
from autoops.audit import AuditLog, Query
from autoops.catalog import Catalog
from autoops.errors import (
    ApprovalRequiredError,
    AutoopsError,
    BadInputError,
    ConfirmationMismatchError,
    HostsUnreachableError,
    InterruptedRunError,
    LockedError,
    PlaybookFailedError,
    PolicyDeniedError,
    SecretsError,
)
from autoops.locks import Locks, needs_lock
from autoops.plan import Plan
from autoops.plan import build as build_plan
from autoops.policy import Decision, Outcome, Policy
from autoops.procs import is_alive, process_start_time
from autoops.redact import Redactor
from autoops.secrets import EnvSecrets, Secrets
from autoops.settings import Settings
from autoops.state import LockHolder, RunRow, StateDB
from autoops.status import ExitStatus

if TYPE_CHECKING:  # runner imports ansible_runner: only a run that executes loads it
    from autoops.runner import HostResult, RunOutcome

ACTOR_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$"
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
    def db(self) -> StateDB:
        return StateDB(self.settings.db_path)

    @cached_property
    def locks(self) -> Locks:
        return Locks(self.db)

    @cached_property
    def secrets(self) -> Secrets:
        return Secrets(self.settings, set(self.policy.environments), self.clock)

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.settings.audit_path, self.db, self.redactor)

    # -- planning ---------------------------------------------------------------------

    def actor_of(self, request: RunRequest) -> str:
        actor = request.actor or self.settings.os_user
        if not re.fullmatch(ACTOR_PATTERN, actor):
            raise BadInputError(f"--actor {actor!r} is not a valid actor name",
                                remedy="Use letters, digits and . _ @ + - (at most 64).")
        return actor

    def plan(self, request: RunRequest) -> tuple[Plan, Decision]:
        """Validate, resolve hosts and decide, without running or recording anything."""
        actor = self.actor_of(request)
        resolved = self.catalog.resolve(request.action, request.params, request.env)
        the_plan = build_plan(resolved, request.env, self.settings.project_dir,
                              set(self.policy.environments), request.limit,
                              check_mode=request.check_mode, host_cache=self.db)
        if request.one_host and len(the_plan.hosts) != 1:
            raise BadInputError(
                f"--limit {request.limit!r} matches {len(the_plan.hosts)} hosts, not exactly one",
                remedy="Name one inventory host, or use `autoops run --limit` for several.")
        return the_plan, self.decide(the_plan, actor)

    def decide(self, the_plan: Plan, actor: str) -> Decision:
        action = the_plan.resolved.action
        return policy.evaluate(self.policy, policy.Request(
            env=the_plan.env, action=action.name, risk=action.risk,
            action_environments=action.environments, actor=actor,
            check_mode=the_plan.check_mode, now=self.clock()))

    def policy_by_env(self, action_name: str) -> dict[str, dict[str, Any]]:
        """What the policy says about an action in every declared environment."""
        action = self.catalog.get(action_name)
        return {
            env: policy.evaluate(self.policy, policy.Request(
                env=env, action=action.name, risk=action.risk,
                action_environments=action.environments, actor=self.settings.os_user,
                check_mode=False, now=self.clock())).to_dict()
            for env in self.policy.environments
        }

    # -- running ----------------------------------------------------------------------

    def run(self, request: RunRequest, *, confirm: approvals.Confirm | None = None,
            on_result: ResultCallback | None = None,
            cancel: Callable[[], bool] = lambda: False,
            on_start: Callable[[], None] = lambda: None) -> RunResult:
        """Plan, decide, get approval, record, execute and record the result.

        Refusals raise (after being audited); a run that executed returns a RunResult
        whose ``status`` says how it went.
        """
        self.recover_interrupted()
        the_plan, decision = self.plan(request)
        actor = self.actor_of(request)
        run_id = new_run_id(self.clock())
        self.db.register_run(RunRow(
            run_id=run_id, pid=os.getpid(), pid_start=process_start_time(os.getpid()) or "",
            env=the_plan.env, action=the_plan.action_name, actor=actor,
            started=self.clock().isoformat(), status="running", data_dir=None))
        record = self._recorder(run_id, actor, the_plan)
        record("run.requested", {
            "plan": the_plan.to_dict(), "os_user": self.settings.os_user,
            "controller": socket.gethostname(), "pid": os.getpid()})
        loaded = self._load_secrets(run_id, the_plan.env, record)
        try:
            approval = approvals.satisfy(the_plan, decision, confirm)
        except KeyboardInterrupt:
            record("run.interrupted", {"reason": "interrupted while waiting for approval"})
            self.db.set_run_status(run_id, "interrupted")
            raise
        record("run.decision", {"decision": decision.to_dict(), "approval": approval.to_dict()})
        if not approval.satisfied:
            error = _refusal(decision, approval, the_plan)
            error.details.update(decision=decision.to_dict())
            self._refused(run_id, record, error, error.status.name.lower())
            raise error
        locked = self._lock(run_id, actor, the_plan, request.wait, record)
        try:
            on_start()
            return self._execute(run_id, actor, the_plan, decision, approval, loaded=loaded,
                                 record=record, on_result=on_result, cancel=cancel)
        finally:
            if locked:
                self.locks.release(run_id)

    def _lock(self, run_id: str, actor: str, the_plan: Plan, wait: float,
              record: Callable[..., dict[str, Any]]) -> bool:
        """Lock the plan's hosts when the run can change something; False when it cannot."""
        if not needs_lock(the_plan.resolved.action.risk, the_plan.check_mode):
            return False
        holder = LockHolder(run_id=run_id, actor=actor, pid=os.getpid(),
                            pid_start=process_start_time(os.getpid()) or "",
                            acquired=self.clock().isoformat())

        def stale(gone: LockHolder) -> None:
            record("lock.stale_released", {"holder": gone.to_dict(), "hosts": list(the_plan.hosts),
                                           "reason": f"process {gone.pid} of run {gone.run_id} "
                                                     "is gone"})
        try:
            self.locks.acquire(the_plan.env, the_plan.hosts, holder, wait=wait, on_stale=stale)
        except LockedError as busy:
            self._refused(run_id, record, busy, "busy")
            raise
        except KeyboardInterrupt:
            record("run.interrupted", {"reason": "interrupted while waiting for a host lock"})
            self.db.set_run_status(run_id, "interrupted")
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
        self.db.set_run_status(run_id, "refused")

    def _recorder(self, run_id: str, actor: str,
                  the_plan: Plan) -> Callable[..., dict[str, Any]]:
        def record(type_: str, data: dict[str, Any], *, durable: bool = True) -> dict[str, Any]:
            return self.audit.append(run_id=run_id, type_=type_, actor=actor, env=the_plan.env,
                                     action=the_plan.action_name, data=data, durable=durable)
        return record

    def _execute(self, run_id: str, actor: str, the_plan: Plan, decision: Decision,
                 approval: approvals.Approval, *, loaded: EnvSecrets,
                 record: Callable[..., dict[str, Any]],
                 on_result: ResultCallback | None, cancel: Callable[[], bool]) -> RunResult:
        from autoops import runner  # noqa: PLC0415 - ansible_runner only when executing

        results: list[dict[str, Any]] = []

        def handle(result: HostResult) -> None:
            data = self.redactor(result.to_dict())
            record("task.result", data, durable=False)
            results.append(data)
            if on_result is not None:
                on_result(data)

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
            bin_dir=self.settings.python.parent, search_path=self.settings.search_path,
            environ=self.secrets.run_environ(loaded))
        record("run.started", {"hosts": list(the_plan.hosts), "check_mode": the_plan.check_mode,
                               "locked": needs_lock(the_plan.resolved.action.risk,
                                                    the_plan.check_mode),
                               "content_digest": the_plan.content_digest,
                               "sops": loaded.to_dict()})
        try:
            outcome = runner.execute(spec, handle, cancel)
        except BaseException as exc:
            reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"error: {exc}"
            record("run.interrupted", {"reason": reason})
            self.db.set_run_status(run_id, "interrupted")
            raise
        outcome.errors = [self.redactor.text(e) for e in outcome.errors]
        outcome.warnings = [self.redactor.text(w) for w in outcome.warnings] + [
            f"too short to redact, keep it out of output: {name}" for name in loaded.unmaskable]
        status, error = classify(outcome, run_id)
        if status is ExitStatus.INTERRUPTED:
            record("run.interrupted", {"reason": "cancelled", "stats": outcome.stats})
        record("run.finished", {
            "status": status.name.lower(), "exit_status": int(status),
            "runner_status": outcome.status, "rc": outcome.rc, "stats": outcome.stats,
            "errors": outcome.errors, "error": error.to_dict() if error else None})
        self.db.set_run_status(run_id, "finished")
        return RunResult(run_id=run_id, plan=the_plan, decision=decision, approval=approval,
                         status=status, runner_status=outcome.status, stats=outcome.stats,
                         results=results, error=error, warnings=outcome.warnings)

    def recover_interrupted(self) -> list[str]:
        """Record runs whose process died without finishing (kill -9, power loss)."""
        recovered = []
        for row in self.db.running():
            if row.pid_start and is_alive(row.pid, row.pid_start):
                continue
            self.audit.append(run_id=row.run_id, type_="run.interrupted", actor=row.actor,
                              env=row.env, action=row.action, data={
                                  "reason": f"autoops process {row.pid} ended without "
                                            "recording run.finished (killed or crashed)",
                                  "recovered_by_pid": os.getpid()})
            self.db.set_run_status(row.run_id, "interrupted")
            self.db.unlock(row.run_id)
            for leftover in self.settings.runs_dir.glob(f"{row.run_id}.*"):
                shutil.rmtree(leftover, ignore_errors=True)
            recovered.append(row.run_id)
        return recovered

    # -- secrets ----------------------------------------------------------------------

    def secrets_init(self, env: str) -> dict[str, Any]:
        result = self.secrets.init(env)
        self._record_admin("secrets.initialised", env, {
            "fingerprint": result["fingerprint"], "file": result["file"],
            "key_created": result["key_created"], "file_created": result["file_created"]})
        return result

    def secrets_edit(self, env: str, file: str | None = None) -> dict[str, Any]:
        result = self.secrets.edit(env, file)
        if result["changed"]:  # names only: values never reach the log
            self._record_admin("secrets.edited", env, result)
        return result

    def secrets_rotate(self, env: str, new_recipient: str | None = None,
                       new_key: bool = False) -> dict[str, Any]:
        result = self.secrets.rotate(env, new_recipient, new_key)
        self._record_admin("secrets.rotated", env, {
            k: result[k] for k in ("files", "old_recipients", "new_recipients", "rekeyed",
                                   "retired_key")})
        return result

    def _record_admin(self, type_: str, env: str, data: dict[str, Any]) -> None:
        self.audit.append(run_id=new_run_id(self.clock()), type_=type_,
                          actor=self.settings.os_user, env=env, action="secrets", data={
                              **data, "os_user": self.settings.os_user,
                              "controller": socket.gethostname()})

    # -- audit ------------------------------------------------------------------------

    def audit_query(self, query: Query, limit: int | None = None) -> list[dict[str, Any]]:
        self.recover_interrupted()
        return self.audit.query(query, limit)


def classify(outcome: RunOutcome, run_id: str) -> tuple[ExitStatus, AutoopsError | None]:
    """Map the runner's outcome to an exit status; failures win over unreachable hosts."""
    failed = sorted(h for h, s in outcome.stats.items() if s.get("failures"))
    dark = sorted(h for h, s in outcome.stats.items() if s.get("dark"))
    details = {"run_id": run_id}
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
        return PolicyDeniedError(f"denied by policy rule {rule.rule}: {rule.reason}")
    if approval.detail.startswith("the typed text"):
        return ConfirmationMismatchError(
            f"confirmation did not match {the_plan.env!r}; nothing ran")
    return ApprovalRequiredError(
        f"{the_plan.action_name} in {the_plan.env} needs approval ({rule.rule}: {rule.reason}); "
        f"{approval.detail}; nothing ran")
