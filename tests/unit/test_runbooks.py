"""Runbooks: loading refuses what the catalog would not run; the matcher and breaker decide."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from autoops.core.catalog import Catalog
from autoops.errors import ReplayInvalidError, RunbookInvalidError
from autoops.heal import matcher, runbooks
from autoops.services import healing
from autoops.services.healing import read_findings
from tests.conftest import REPO

CATALOG = Catalog.load(REPO / "catalog.yml", REPO)
T0 = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
GOOD: dict[str, Any] = {"description": "restart it", "match": {"check": "service"},
                        "steps": [{"action": "restart-service",
                                   "params": {"service": {"from": "subject"}}}]}


def write(tmp_path: Path, doc: Any, name: str = "book") -> Path:
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return path


def finding(**over: Any) -> matcher.Finding:
    base: dict[str, Any] = {"at": T0, "env": "lab", "host": "web1", "check": "service",
                            "subject": "autoops-demo", "severity": "critical",
                            "groups": ("web",)}
    return matcher.Finding(**(base | over))


def test_the_shipped_runbooks_load() -> None:
    loaded = runbooks.load_all(REPO / "runbooks", CATALOG)
    assert [r.name for r in loaded] == ["disk-filling", "service-down"]
    (down,) = [r for r in loaded if r.name == "service-down"]
    assert down.breaker == runbooks.Breaker(3, timedelta(hours=1))


@pytest.mark.parametrize(("change", "words"), [
    ({"surprise": 1}, "surprise"),
    ({"steps": [{"action": "rm-rf"}]}, "unknown action 'rm-rf'"),
    ({"steps": [{"action": "restart-service", "params": {"signal": "KILL"}}]},
     "restart-service takes no parameter signal"),
    ({"steps": [{"action": "restart-service", "params": {"service": {"from": "env"}}}]},
     "steps/0/params/service"),
    ({"steps": []}, "steps"),
    ({"match": {"check": "service", "severity": ["fatal"]}}, "severity"),
    ({"breaker": {"attempts": 3, "within": "soon"}}, "'soon' is not a duration"),
    ({"breaker": {"attempts": 0, "within": "1h"}}, "attempts"),
])
def test_a_bad_runbook_is_refused_with_its_line(tmp_path: Path, change: dict[str, Any],
                                                words: str) -> None:
    path = write(tmp_path, GOOD | change)
    with pytest.raises(RunbookInvalidError) as caught:
        runbooks.load(path, CATALOG)
    assert str(path) in caught.value.message
    assert words in caught.value.message, caught.value.message
    assert caught.value.code == "AUTOOPS-RUNBOOK-INVALID"


def test_a_runbook_name_is_its_file_name(tmp_path: Path) -> None:
    with pytest.raises(RunbookInvalidError, match="file name is its name"):
        runbooks.load(write(tmp_path, GOOD, "Restart Me"), CATALOG)
    with pytest.raises(RunbookInvalidError, match=r"book\.yml:3: "):
        runbooks.load(write(tmp_path, "---\nmatch: [\n"), CATALOG)


@pytest.mark.parametrize(("match", "fits"), [
    ({"check": "service"}, True),
    ({"check": "disk"}, False),
    ({"check": "service", "severity": ["warning"]}, False),
    ({"check": "service", "environments": ["staging"]}, False),
    ({"check": "service", "environments": ["lab"], "hosts": ["web1"]}, True),
    ({"check": "service", "hosts": ["web2"]}, False),
    ({"check": "service", "groups": ["db", "web"]}, True),
    ({"check": "service", "groups": ["db"]}, False),
    ({"check": "service", "subjects": ["caddy"]}, False),
    ({"check": "service", "subjects": ["autoops-demo"]}, True),
])
def test_every_condition_of_a_match_must_hold(tmp_path: Path, match: dict[str, Any],
                                              fits: bool) -> None:
    book = runbooks.load(write(tmp_path, GOOD | {"match": match}), CATALOG)
    assert matcher.matches(book, finding()) is fits


def test_parameters_come_whole_from_the_finding_and_the_catalog_judges_them(
        tmp_path: Path) -> None:
    book = runbooks.load(write(tmp_path, GOOD), CATALOG)
    hostile = finding(subject="demo; reboot")
    choice = matcher.choose([book], hostile, CATALOG, matcher.Breakers())
    assert choice.outcome == "refused"
    assert choice.steps[0].params == {"service": "demo; reboot"}, "one value, never split"
    templated = runbooks.load(write(tmp_path, GOOD | {"steps": [{
        "action": "restart-service", "params": {"service": "{{ lookup('pipe', 'id') }}"}}]}),
        CATALOG)
    assert matcher.choose([templated], finding(), CATALOG,
                          matcher.Breakers()).outcome == "refused"


def test_the_first_runbook_that_matches_wins(tmp_path: Path) -> None:
    narrow = runbooks.load(write(tmp_path, GOOD | {"match": {
        "check": "service", "hosts": ["web1"]}}, "a-web1"), CATALOG)
    wide = runbooks.load(write(tmp_path, GOOD, "b-any"), CATALOG)
    assert matcher.choose([narrow, wide], finding(), CATALOG,
                          matcher.Breakers()).runbook == "a-web1"
    assert matcher.choose([narrow, wide], finding(host="web2"), CATALOG,
                          matcher.Breakers()).runbook == "b-any"


def test_the_breaker_counts_per_host_within_its_window(tmp_path: Path) -> None:
    book = runbooks.load(write(tmp_path, GOOD | {"breaker": {"attempts": 2, "within": "30m"}}),
                         CATALOG)
    breakers = matcher.Breakers()
    outcomes = [matcher.choose([book], finding(at=T0 + timedelta(minutes=m), host=h), CATALOG,
                               breakers).outcome
                for m, h in [(0, "web1"), (10, "web1"), (20, "web1"), (20, "web2"),
                             (29, "web1"), (30, "web1"), (41, "web1")]]
    assert outcomes == ["heal", "heal", "escalate", "heal", "escalate", "heal", "heal"]


@pytest.mark.parametrize(("line", "words"), [
    ("not json", "not JSON"),
    ("[1, 2]", "a JSON object"),
    ('{"at": "2026-11-02T03:00:00+00:00"}', "missing or not text: env, host"),
    (json.dumps({"at": "2026-11-02T03:00:00", "env": "lab", "host": "h", "check": "disk",
                 "subject": "/", "severity": "critical"}), "has no time zone"),
    (json.dumps({"at": "yesterday", "env": "lab", "host": "h", "check": "disk",
                 "subject": "/", "severity": "critical"}), "not an ISO 8601 time"),
    (json.dumps({"at": "2026-11-02T03:00:00Z", "env": "lab", "host": "h", "check": "disk",
                 "subject": "/", "severity": "critical", "groups": "web"}), "groups"),
])
def test_a_bad_recorded_finding_names_its_line(tmp_path: Path, line: str, words: str) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text("\n" + line + "\n")
    with pytest.raises(ReplayInvalidError) as caught:
        read_findings(path)
    assert f"{path}:2:" in caught.value.message
    assert words in caught.value.message


@given(st.one_of(st.text(max_size=200), st.dictionaries(
    st.sampled_from(["at", "env", "host", "check", "subject", "severity", "notice", "groups"]),
    st.one_of(st.text(max_size=30), st.integers(), st.none(), st.lists(st.text(max_size=5))),
).map(json.dumps)))
def test_any_line_is_a_finding_or_a_replay_error(line: str) -> None:
    try:
        found = healing.parse_finding(line, "x:1")
    except ReplayInvalidError as exc:
        assert exc.message.startswith("x:1: ")
    else:
        assert found.at.tzinfo is not None
