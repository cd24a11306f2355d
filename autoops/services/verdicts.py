"""From a decision or a runner outcome to the error (and exit status) the caller sees."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from autoops.core.plan import Plan
from autoops.core.policy import Decision, HaltFacts, Outcome, RuleResult
from autoops.deploy import rollout
from autoops.errors import (
    ApprovalRequiredError,
    AutoopsError,
    ConfirmationMismatchError,
    FrozenError,
    HaltedError,
    HostsUnreachableError,
    InterruptedRunError,
    PlaybookFailedError,
    PolicyDeniedError,
    WindowClosedError,
)
from autoops.exits import ExitStatus
from autoops.guard.confirmation import Clearance
from autoops.run.runner import RunOutcome


def classify(outcome: RunOutcome, run_id: str, halt: HaltFacts | None = None,
             results: Sequence[Mapping[str, Any]] = (),
             hosts: Sequence[str] = ()) -> tuple[ExitStatus, AutoopsError | None]:
    """Map the runner's outcome to an exit status; failures win over unreachable hosts.

    A deploy whose rollout stopped and returned its hosts is AUTOOPS-DEPLOY-ROLLED-BACK
    (exit 5 like any failed playbook), naming the failed check and what went back.
    """
    failed = sorted(h for h, s in outcome.stats.items() if s.get("failures"))
    dark = sorted(h for h, s in outcome.stats.items() if s.get("dark"))
    details = {"run_id": run_id}
    if outcome.status == "canceled" and halt is not None:
        error = halted(halt, f"run {run_id} was cancelled")
        error.details.update(details)
        return ExitStatus.HALTED, error
    if outcome.status == "canceled":
        return ExitStatus.INTERRUPTED, InterruptedRunError(
            f"run {run_id} was cancelled", details=details)
    stopped = rollout.stopped(results) if failed else None
    if stopped is not None:
        return ExitStatus.PLAYBOOK_FAILED, stopped.error(run_id, hosts)
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


def refusal(decision: Decision, approval: Clearance, the_plan: Plan) -> AutoopsError:
    """Why a run that was not approved stops: the denying rule, or the missing approval."""
    rule = decision.deciding_rule
    if decision.outcome is Outcome.DENIED:
        return denial(rule)
    if approval.detail.startswith("the typed text"):
        return ConfirmationMismatchError(
            f"confirmation did not match {the_plan.env!r}; nothing ran")
    return ApprovalRequiredError(
        f"{the_plan.action_name} in {the_plan.env} needs approval ({rule.rule}: {rule.reason}); "
        f"{approval.detail}; nothing ran")


def denial(rule: RuleResult) -> AutoopsError:
    """The error for a rule that denies: halts exit 7, windows and freezes have own codes."""
    kind: type[AutoopsError] = {"halt": HaltedError, "window": WindowClosedError,
                                "freeze": FrozenError}.get(rule.rule, PolicyDeniedError)
    return kind(f"denied by policy rule {rule.rule}: {rule.reason}; nothing ran",
                remedy=f"To let it through: {rule.satisfy}." if rule.satisfy else None)


def halted(halt: HaltFacts, what: str) -> HaltedError:
    return HaltedError(f"{what}: {halt.describe()}", details={"halt": asdict(halt)})
