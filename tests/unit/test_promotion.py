"""The promotion gate, table-driven from cases/promotion.yml."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoops.common.durations import parse_duration
from autoops.deploy.promotion import Deployed, Firing, evaluate

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "promotion.yml").read_text())
START = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def at(minutes: float | None) -> datetime | None:
    return None if minutes is None else START + timedelta(minutes=minutes)


def firing(lines: list[str]) -> list[Firing]:
    found = []
    for line in lines:
        where, _, summary = line.partition(": ")
        host, check, subject = [*where.split(" "), ""][:3]
        found.append(Firing(host, check, subject, summary))
    return found


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_promotion_case(case: dict[str, Any]) -> None:
    history = []
    for line in case["history"]:
        commit, operation, outcome, minute = line.split()
        finished = at(float(minute))
        assert finished is not None
        history.append(Deployed(f"run-{minute}", commit, operation, outcome, finished))
    now = at(case["now"])
    assert now is not None
    evidence = evaluate(app="app", source="staging", target="production",
                        soak=parse_duration(case.get("soak", "30m")), commit=case.get("commit"),
                        history=history, source_firing=firing(case.get("source_firing", [])),
                        target_firing=firing(case.get("target_firing", [])),
                        source_last_watch=at(case.get("watched")), now=now)
    assert evidence.allowed is bool(case.get("allowed")), evidence.refusals
    for expected in case.get("refused", []):
        assert any(expected in reason for reason in evidence.refusals), evidence.refusals
    if "commit_taken" in case:
        assert evidence.commit == case["commit_taken"]
    doc = evidence.to_dict()
    assert doc["allowed"] is evidence.allowed
    assert doc["refusals"] == list(evidence.refusals)
