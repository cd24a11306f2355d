from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoops.errors import PolicyInvalidError
from autoops.policy import TYPED_CONFIRMATION, Outcome, Policy, Request, evaluate
from autoops.risk import Risk
from tests.conftest import REPO

CASES: list[dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "policy_cases.yml").read_text())
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _policy(case: dict[str, Any]) -> Policy:
    if "policy" in case:
        return Policy.from_mapping({"version": 1, "environments": case["policy"]})
    return Policy.load(REPO / "policy.yml")


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['env']}-{c['risk']}-{c['outcome']}")
def test_decision_table(case: dict[str, Any]) -> None:
    request = Request(env=case["env"], action="act", risk=Risk.parse(case["risk"]),
                      action_environments=tuple(case.get("environments",
                                                         ["local", "lab", "staging",
                                                          "production"])),
                      actor="alice", check_mode=case.get("check_mode", False), now=NOW)
    decision = evaluate(_policy(case), request)
    assert decision.outcome is Outcome(case["outcome"])
    assert decision.deciding_rule.rule == case["rule"]
    assert (TYPED_CONFIRMATION in decision.requirements) == (decision.outcome is
                                                             Outcome.APPROVAL_REQUIRED)
    assert decision.to_dict()["rule"] == case["rule"]


def test_every_rule_is_covered_by_the_table() -> None:
    assert {c["rule"] for c in CASES} == {"env-declared", "action-env", "risk-unattended",
                                          "risk-confirm", "risk-ceiling"}


def test_evaluate_is_pure_and_deterministic() -> None:
    policy = Policy.load(REPO / "policy.yml")
    request = Request("production", "deploy", Risk.HIGH, ("production",), "bob", False, NOW)
    assert evaluate(policy, request) == evaluate(policy, request)


@pytest.mark.parametrize(("text", "message"), [
    (("version: 1\nenvironments:\n  local:\n    unattended_max_risk: HIGH\n"
     "    confirm_max_risk: HIGH\n    colour: blue\n"), ":6: at environments/local: unknown key(s) 'colour'"),
    (("version: 1\nenvironments:\n  local:\n    unattended_max_risk: EXTREME\n"
     "    confirm_max_risk: HIGH\n"), ":4:"),
    ("version: 2\nenvironments: {}\n", ":1:"),
    (("version: 1\nenvironments:\n  local:\n    unattended_max_risk: HIGH\n"
     "    confirm_max_risk: LOW\n"), ":5: local: confirm_max_risk LOW is below"),
    (("version: 1\nenvironments:\n  Prod:\n    unattended_max_risk: SAFE\n"
     "    confirm_max_risk: SAFE\n"), "at environments"),
    ("version: 1\nversion: 1\n", ":2: duplicate key 'version'"),
    ("version: [1\n", "policy.yml:"),
])
def test_broken_policy_names_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "policy.yml"
    path.write_text(text)
    with pytest.raises(PolicyInvalidError) as err:
        Policy.load(path)
    assert str(path) in err.value.message
    assert message in err.value.message
    assert err.value.code == "AUTOOPS-POLICY-INVALID"
