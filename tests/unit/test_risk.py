from __future__ import annotations

import pytest

from autoops.core.risk import NAMES, Risk


def test_order_is_the_documented_one() -> None:
    assert list(NAMES) == ["SAFE", "LOW", "MEDIUM", "HIGH", "CRITICAL", "DESTRUCTIVE"]
    assert sorted(Risk) == [Risk.parse(n) for n in NAMES]


@pytest.mark.parametrize("text", ["safe", " High ", "DESTRUCTIVE"])
def test_parse_is_case_insensitive(text: str) -> None:
    assert Risk.parse(text).name == text.strip().upper()


def test_parse_rejects_unknown_names_listing_valid_ones() -> None:
    with pytest.raises(ValueError, match="SAFE, LOW"):
        Risk.parse("extreme")


@pytest.mark.parametrize(("base", "other", "expected"), [
    (Risk.LOW, Risk.HIGH, Risk.HIGH), (Risk.HIGH, Risk.LOW, Risk.HIGH),
    (Risk.SAFE, Risk.SAFE, Risk.SAFE)])
def test_context_only_raises(base: Risk, other: Risk, expected: Risk) -> None:
    assert base.raised_to(other) is expected
