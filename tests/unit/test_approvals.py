from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from autoops.core.catalog import Catalog
from autoops.core.plan import Plan
from autoops.core.policy import Decision, Policy, Request, evaluate
from autoops.core.risk import Risk
from autoops.errors import (
    ApprovalDecidedError,
    ApprovalExpiredError,
    ApprovalPendingError,
    ApprovalPlanChangedError,
    ApprovalRejectedError,
    ApprovalSelfError,
    ApprovalUnknownError,
    ApprovalUsedError,
)
from autoops.guard.approvals import SecondPerson, plan_digest, request_to_dict
from autoops.guard.confirmation import satisfy
from autoops.state.db import StateDB
from tests.conftest import REPO


def _plan_and_decision(env: str, risk: Risk) -> tuple[Plan, Decision]:
    resolved = Catalog.load(REPO / "catalog.yml", REPO).resolve("health", {}, env)
    plan = Plan(resolved, env, Path("/inv"), None, ("h",), False, "sha256:x", None)
    decision = evaluate(Policy.load(REPO / "policy.yml"), Request(
        env, "health", risk, ("local", "staging", "production"), "a", False,
        datetime(2026, 11, 23, 10, 0, tzinfo=UTC)))  # Monday: inside production's window
    return plan, decision


def never(_p: Any, _d: Any) -> str:
    raise AssertionError("must not ask")


def test_allowed_needs_nobody() -> None:
    assert satisfy(*_plan_and_decision("local", Risk.SAFE), never).method == "unattended"


def test_denied_is_never_satisfied_and_nobody_is_asked() -> None:
    plan, _decision = _plan_and_decision("production", Risk.HIGH)
    plan = Plan(plan.resolved, "qa", plan.inventory, None, ("h",), False, "sha256:x", None)
    approval = satisfy(plan, evaluate(Policy.load(REPO / "policy.yml"), Request(
        "qa", "health", Risk.HIGH, ("qa",), "a", False, datetime(2026, 11, 23, tzinfo=UTC))),
        never)
    assert not approval.satisfied
    assert approval.method == "none"


def test_a_missing_second_person_is_not_asked_for_a_confirmation() -> None:
    approval = satisfy(*_plan_and_decision("production", Risk.DESTRUCTIVE), never)
    assert not approval.satisfied
    assert approval.method == "second-person"


@pytest.mark.parametrize(("typed", "ok"), [("production", True), (" production ", True),
                                           ("Production", False), ("prod", False),
                                           ("", False), (None, False)])
def test_typed_confirmation(typed: str | None, ok: bool) -> None:
    plan, decision = _plan_and_decision("production", Risk.HIGH)
    assert satisfy(plan, decision, lambda _p, _d: typed).satisfied is ok


def test_no_terminal_means_not_satisfied() -> None:
    plan, decision = _plan_and_decision("production", Risk.HIGH)
    approval = satisfy(plan, decision, None)
    assert not approval.satisfied
    assert approval.detail == "no terminal to confirm on"


# -- the second person ----------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def second(tmp_path: Path, clock: Clock) -> SecondPerson:
    return SecondPerson(StateDB(tmp_path / "state.db"), clock)


def _prune_plan(**changes: Any) -> Plan:
    resolved = Catalog.load(REPO / "catalog.yml", REPO).resolve(
        "backup-prune", changes.pop("params", {"keep": 7}), "production")
    fields: dict[str, Any] = {"resolved": resolved, "env": "production",
                              "inventory": Path("/inv"), "limit": None, "hosts": ("db1", "db2"),
                              "check_mode": False, "content_digest": "sha256:aa",
                              "revision": "r1", **changes}
    return Plan(**fields)


def test_approve_then_run_once(second: SecondPerson) -> None:
    plan = _prune_plan()
    row = second.request(plan, "alice", timedelta(hours=2))
    assert row.request_id.startswith("a-")
    with pytest.raises(ApprovalPendingError):
        second.check(row.request_id, plan, "alice")
    second.decide(row.request_id, "bob", approve=True)
    facts = second.check(row.request_id, plan, "alice")
    assert (facts.request_id, facts.approver) == (row.request_id, "bob")
    second.use(row.request_id, "run-1")
    with pytest.raises(ApprovalUsedError, match="run-1"):
        second.check(row.request_id, plan, "alice")
    with pytest.raises(ApprovalUsedError):
        second.use(row.request_id, "run-2")


def test_nobody_approves_their_own_request_or_runs_their_own_approval(
        second: SecondPerson) -> None:
    plan = _prune_plan()
    row = second.request(plan, "alice", timedelta(hours=2))
    with pytest.raises(ApprovalSelfError, match="cannot also approve"):
        second.decide(row.request_id, "alice", approve=True)
    second.decide(row.request_id, "bob", approve=True)
    with pytest.raises(ApprovalSelfError, match="cannot also run"):
        second.check(row.request_id, plan, "bob")
    with pytest.raises(ApprovalDecidedError, match="already approved by bob"):
        second.decide(row.request_id, "carol", approve=False, reason="late")


def test_rejected_and_expired_requests(second: SecondPerson, clock: Clock) -> None:
    plan = _prune_plan()
    rejected = second.request(plan, "alice", timedelta(hours=2))
    second.decide(rejected.request_id, "bob", approve=False, reason="not during the sale")
    with pytest.raises(ApprovalRejectedError, match="not during the sale"):
        second.check(rejected.request_id, plan, "alice")
    late = second.request(plan, "alice", timedelta(hours=2))
    clock.now += timedelta(hours=2)
    with pytest.raises(ApprovalExpiredError):
        second.decide(late.request_id, "bob", approve=True)
    approved = second.request(plan, "alice", timedelta(hours=2))
    second.decide(approved.request_id, "bob", approve=True)
    clock.now += timedelta(hours=3)
    with pytest.raises(ApprovalExpiredError):
        second.check(approved.request_id, plan, "alice")
    assert request_to_dict(second.get(late.request_id), clock())["state"] == "expired"


@pytest.mark.parametrize(("change", "named"), [
    ({"params": {"keep": 6}}, "params"),
    ({"hosts": ("db1", "db2", "db3")}, "hosts"),
    ({"revision": "r2"}, "revision"),
    ({"content_digest": "sha256:bb"}, "content_digest"),
    ({"limit": "db1"}, "limit"),
])
def test_a_changed_plan_is_not_the_approved_one(second: SecondPerson, change: dict[str, Any],
                                               named: str) -> None:
    row = second.request(_prune_plan(), "alice", timedelta(hours=2))
    second.decide(row.request_id, "bob", approve=True)
    with pytest.raises(ApprovalPlanChangedError, match=f"changed: {named}"):
        second.check(row.request_id, _prune_plan(**change), "alice")
    assert plan_digest(_prune_plan()) == plan_digest(_prune_plan())


@pytest.mark.parametrize("request_id", ["a-000000000000", "a-x", "'; DROP TABLE x; --", ""])
def test_unknown_requests(second: SecondPerson, request_id: str) -> None:
    with pytest.raises(ApprovalUnknownError):
        second.get(request_id)
