from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoops.core.policy import (
    SECOND_PERSON,
    TYPED_CONFIRMATION,
    Decision,
    GrantFacts,
    HaltFacts,
    Outcome,
    Policy,
    Request,
    SecondPersonFacts,
    evaluate,
)
from autoops.core.risk import Risk
from autoops.errors import PolicyInvalidError
from autoops.exits import ExitStatus
from tests.conftest import REPO

CASES: list[dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "policy_cases.yml").read_text())
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
RULES = {"env-declared", "action-env", "halt", "freeze", "window", "risk-unattended",
         "risk-confirm", "risk-ceiling", "two-person"}


def _policy(case: dict[str, Any]) -> Policy:
    if "policy" in case:
        return Policy.from_mapping({"version": 1, "environments": case["policy"],
                                    "defaults": case.get("defaults", {})})
    return Policy.load(REPO / "policy.yml")


def _request(case: dict[str, Any]) -> Request:
    halt = case.get("halt")
    grant = case.get("grant")
    second = case.get("second_person")
    now = datetime.fromisoformat(case["now"]) if "now" in case else MONDAY
    return Request(
        env=case["env"], action="act", risk=Risk.parse(case["risk"]),
        action_environments=tuple(case.get("environments",
                                           ["local", "lab", "staging", "production"])),
        actor="alice", check_mode=case.get("check_mode", False), now=now,
        halt=HaltFacts(halt["scope"], halt["reason"], "carol", "2026-11-23T09:00:00+00:00")
        if halt else None,
        grant=GrantFacts(grant["id"], grant.get("break_glass", False), "because")
        if grant else None,
        second_person=SecondPersonFacts(second["id"], second["approver"]) if second else None)


def _case_id(case: dict[str, Any]) -> str:
    extra = "-".join(k for k in ("halt", "grant", "second_person", "now", "policy") if k in case)
    return f"{case['env']}-{case['risk']}-{case['outcome']}-{case['rule']}" + (f"-{extra}"
                                                                               if extra else "")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_decision_table(case: dict[str, Any]) -> None:
    decision = evaluate(_policy(case), _request(case))
    assert decision.outcome is Outcome(case["outcome"]), decision.to_dict()
    assert decision.deciding_rule.rule == case["rule"], decision.to_dict()
    assert decision.to_dict()["rule"] == case["rule"]
    if "requirements" in case:
        assert list(decision.requirements) == case["requirements"]
    assert bool(decision.requirements) == (decision.outcome is Outcome.APPROVAL_REQUIRED)
    if "via" in case:
        assert list(decision.authorised_by) == case["via"]
    if "reason_contains" in case:
        assert case["reason_contains"] in decision.deciding_rule.reason
    for rule in decision.rules:  # every rule that stops a run says what would satisfy it
        assert rule.outcome is Outcome.ALLOWED or rule.satisfy, rule


def test_every_rule_is_covered_by_the_table() -> None:
    assert {c["rule"] for c in CASES} == RULES


def test_every_rule_is_named_once_an_action_is_allowed_in_the_env() -> None:
    request = Request("production", "deploy", Risk.HIGH, ("production",), "bob", False, MONDAY)
    decision = evaluate(Policy.load(REPO / "policy.yml"), request)
    assert [r.rule for r in decision.rules] == [
        "env-declared", "action-env", "halt", "freeze", "window", "risk-confirm", "two-person"]
    assert decision.requirements == (TYPED_CONFIRMATION,)
    assert SECOND_PERSON not in decision.requirements


def test_evaluate_is_pure_and_deterministic() -> None:
    policy = Policy.load(REPO / "policy.yml")
    request = Request("production", "deploy", Risk.HIGH, ("production",), "bob", False, MONDAY)
    assert evaluate(policy, request) == evaluate(policy, request)


def test_effective_policy_merges_builtin_defaults_and_environment() -> None:
    policy = Policy.from_mapping({"version": 1, "defaults": {"approval_expires_in": "1h"},
                                  "environments": {
                                      "production": {"unattended_max_risk": "SAFE",
                                                     "confirm_max_risk": "HIGH"},
                                      "staging": {"unattended_max_risk": "LOW",
                                                  "confirm_max_risk": "HIGH",
                                                  "approval_expires_in": "30m"}}})
    prod, staging = policy.environments["production"], policy.environments["staging"]
    assert prod.two_person_min_risk is Risk.CRITICAL
    assert staging.two_person_min_risk is None
    assert prod.approval_ttl == timedelta(hours=1)
    assert staging.approval_ttl == timedelta(minutes=30)
    assert prod.origins["approval_expires_in"] == "defaults"
    assert staging.origins["approval_expires_in"] == "environment"
    assert prod.origins["two_person_min_risk"] == "built-in"
    assert prod.grant_ceiling(Risk.DESTRUCTIVE, break_glass=False) == timedelta(hours=2)
    assert prod.grant_ceiling(Risk.SAFE, break_glass=True) == timedelta(hours=2)
    assert (prod.self_heal, prod.origins["self_heal"]) == (False, "built-in")
    doc = policy.to_dict()["production"]
    assert doc["two_person_min_risk"] == "CRITICAL"
    assert doc["self_heal"] is False
    assert doc["grants"]["max_expires_in"]["SAFE"] == "30d"


_OK = "version: 1\nenvironments:\n  local:\n    unattended_max_risk: HIGH\n    confirm_max_risk: HIGH\n"


@pytest.mark.parametrize(("text", "message"), [
    (_OK + "    colour: blue\n", ":6: at environments/local: unknown key(s) 'colour'"),
    (("version: 1\nenvironments:\n  local:\n    unattended_max_risk: EXTREME\n"
     "    confirm_max_risk: HIGH\n"), ":4:"),
    ("version: 2\nenvironments: {}\n", ":1:"),
    (("version: 1\nenvironments:\n  local:\n    unattended_max_risk: HIGH\n"
     "    confirm_max_risk: LOW\n"), ":5: local: confirm_max_risk LOW is below"),
    (("version: 1\nenvironments:\n  Prod:\n    unattended_max_risk: SAFE\n"
     "    confirm_max_risk: SAFE\n"), "at environments"),
    ("version: 1\nversion: 1\n", ":2: duplicate key 'version'"),
    ("version: [1\n", "policy.yml:"),
    ("version: 1\nenvironments:\n  local:\n    unattended_max_risk: HIGH\n", "confirm_max_risk is required"),
    (_OK + "    two_person_min_risk: LOW\n", ":6: local: two_person_min_risk LOW must be above"),
    (_OK + "    approval_expires_in: 0s\n", ":6: local: approval_expires_in:"),
    (_OK + "    approval_expires_in: soon\n", ":6:"),
    (_OK + "    self_heal: sometimes\n", ":6:"),
    (_OK + "    windows: {timezone: Mars/Base, above: LOW, weekly: [{days: [mon], start: '09:00', "
     "end: '10:00'}]}\n", ":6: local: "),
    (_OK + "    windows: {timezone: UTC, above: LOW, weekly: [{days: [moon], start: '09:00', "
     "end: '10:00'}]}\n", ":6: local: "),
    (_OK + "    windows: {timezone: UTC, above: LOW, weekly: [{days: [mon], start: '25:00', "
     "end: '10:00'}]}\n", ":6:"),
    (_OK + "    freezes: [{start: '2026-12-24T00:00', end: '2026-12-23T00:00', reason: x}]\n",
     ":6: local: freezes"),
    (_OK + "    grants: {break_glass_max_expires_in: 3h}\n", "may not exceed 2h"),
    (_OK + "    grants: {max_expires_in: {DESTRUCTIVE: 30d}}\n", ":6: local: grants"),
])
def test_broken_policy_names_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "policy.yml"
    path.write_text(text)
    with pytest.raises(PolicyInvalidError) as err:
        Policy.load(path)
    assert str(path) in err.value.message
    assert message in err.value.message
    assert err.value.code == "AUTOOPS-POLICY-INVALID"


@pytest.mark.parametrize(("outcome", "status"), [
    (Outcome.ALLOWED, ExitStatus.OK), (Outcome.DENIED, ExitStatus.DENIED),
    (Outcome.APPROVAL_REQUIRED, ExitStatus.APPROVAL_REQUIRED)])
def test_a_decision_names_its_exit_status(outcome: Outcome, status: ExitStatus) -> None:
    assert Decision(outcome, Risk.SAFE, ()).exit_status is status
