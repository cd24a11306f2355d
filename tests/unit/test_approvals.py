from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from autoops.approvals import satisfy
from autoops.catalog import Catalog
from autoops.plan import Plan
from autoops.policy import Decision, Policy, Request, evaluate
from autoops.risk import Risk
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
