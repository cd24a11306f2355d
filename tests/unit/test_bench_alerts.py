"""bench/alerts.py: the recorded day meets its goals, and the bench notices a day that does not.

The bench is a script, not a package module: it is loaded from its file. Tiny days
are written by hand, so what each one must send is obvious from its pattern.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


alerts = _load("alerts")
make_day = _load("make_day")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    status = alerts.main([*args, "--json"])
    return status, json.loads(capsys.readouterr().out)


def write_day(tmp_path: Path, patterns: dict[tuple[str, str], str],
              incidents: list[tuple[str, str, int, int]]) -> Path:
    """A day of one host: ``x`` fails (critical) that run, ``.`` reads fine."""
    length = len(next(iter(patterns.values())))
    findings = [{"host": "web-01", "check": "reachable", "subject": ""}] + [
        {"host": "web-01", "check": check, "subject": subject} for check, subject in patterns]
    lines = [{"kind": "header", "env": "production", "start": "2026-12-02T00:00:00+00:00",
              "every_minutes": 5, "runs": length, "findings": findings}]
    for index in range(length):
        minute = index * 5
        lines.append({"run": index, "at": f"2026-12-02T{minute // 60:02d}:{minute % 60:02d}:00+00:00",
                      "verdicts": [{"host": "web-01", "check": check, "subject": subject,
                                    "severity": "critical", "ok": False,
                                    "summary": f"{check} {subject} is broken"}
                                   for (check, subject), pattern in patterns.items()
                                   if pattern[index] == "x"]})
    path = tmp_path / "day.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    truth = {"real_incident_runs": 3, "episodes": [
        {"id": f"i{n}", "kind": "incident", "host": "web-01", "check": check, "subject": subject,
         "start": start, "runs": runs, "note": "by hand"}
        for n, (check, subject, start, runs) in enumerate(incidents)]}
    (tmp_path / "day-truth.json").write_text(json.dumps(truth))
    return path


BLIP_AND_INCIDENT = {("disk", "/"): "..xx..............",
                     ("load", ""): "........xxx.......",
                     ("proxy", "/var/log/caddy/access.log"): ".................."}


def test_the_recorded_day_meets_its_goals(capsys: pytest.CaptureFixture[str]) -> None:
    status, doc = run(capsys)
    ours = doc["autoops"]
    assert status == 0, doc["goals"]
    assert doc["runs"] == 288
    assert doc["hosts"] == 20
    assert ours["missed"] == 0
    assert ours["ratio"] >= 10
    assert doc["raw_failures"] >= 10 * ours["messages"]
    assert ours["noise"] == 0, "no blip or flap fired"
    assert {p["delay_runs"] for p in ours["incidents"]} == {2}, "the third failing reading fires"
    assert len(ours["incidents"]) >= 20
    assert ours["flapping"] >= 1
    every, change = doc["naive"]
    assert every["notices"] == doc["raw_failures"]
    assert max(every["ratio"], change["ratio"]) < 10, "the naive alerters are the noisy context"
    assert every["noise"] > 0
    assert change["noise"] > 0


def test_the_committed_day_is_what_make_day_makes(capsys: pytest.CaptureFixture[str]) -> None:
    assert make_day.main(["--check"]) == 0, capsys.readouterr().out


def test_a_two_run_blip_says_nothing_and_a_three_run_incident_fires_and_recovers_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    day = write_day(tmp_path, BLIP_AND_INCIDENT, [("load", "", 8, 3)])
    status, doc = run(capsys, "--day", str(day))
    ours = doc["autoops"]
    assert ours["by_notice"] == {"firing": 1, "resolved": 1}
    assert (ours["problem_messages"], ours["recovery_messages"]) == (1, 1)
    assert ours["missed"] == 0
    assert ours["noise"] == 0
    (incident,) = ours["incidents"]
    assert (incident["delay_runs"], incident["delay_minutes"], incident["firing"],
            incident["resolved_run"]) == (2, 10, 1, 12)
    assert doc["raw_failures"] == 5
    assert status == 1, "5 failing readings for 2 messages is not 10x fewer"
    assert (doc["goals"]["ratio_met"], doc["goals"]["missed_met"]) == (False, True)
    every, change = doc["naive"]
    assert (every["notices"], every["noise"]) == (5, 2)
    assert change["by_notice"] == {"firing": 2, "resolved": 2}


def test_an_incident_shorter_than_the_patience_is_missed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    day = write_day(tmp_path, BLIP_AND_INCIDENT, [("load", "", 8, 3)])
    status, doc = run(capsys, "--day", str(day), "--fail-after", "4")
    assert status == 1
    assert doc["autoops"]["missed"] == 1
    assert doc["autoops"]["notices"] == 0
    assert doc["goals"]["missed_met"] is False
    assert alerts.main(["--day", str(day), "--fail-after", "4"]) == 1
    assert "MISSED" in capsys.readouterr().out


def test_a_flap_says_so_once_and_never_fires(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    day = write_day(tmp_path, {("proxy", "/var/log/caddy/access.log"): ".x" * 12 + "." * 14},
                    [])
    status, doc = run(capsys, "--day", str(day))
    assert doc["autoops"]["by_notice"] == {"flapping": 1}
    assert doc["autoops"]["noise"] == 0
    assert doc["raw_failures"] == 12
    assert status == 0, "12 failing readings, 1 message, nothing real missed"


def test_a_truth_that_disagrees_with_the_day_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    day = write_day(tmp_path, BLIP_AND_INCIDENT, [])  # the 3-run load incident is not told
    assert alerts.main(["--day", str(day)]) == 2
    assert "disagree" in capsys.readouterr().err


def test_settled_readings_left_out_change_no_notice() -> None:
    """What the replay skips for speed would have said nothing: stepping it all agrees."""
    day = alerts.load_day(alerts.DAY)
    truth = json.loads((REPO / "bench" / "data" / "day-truth.json").read_text())
    flapped = sorted({e["host"] for e in truth["episodes"] if e["kind"] == "flap"})
    small = day.only({"db-03", "app-05", flapped[0]})  # all day and repeats, worse, a flap
    limits = alerts.Thresholds()
    fast, stepped = alerts.replay(small, limits)
    full, every = alerts.replay(small, limits, every_reading=True)
    assert stepped < every
    assert fast.notices == full.notices
    assert {n for _, _, n in full.notices} >= {alerts.Notice.FIRING, alerts.Notice.REPEAT,
                                               alerts.Notice.RESOLVED, alerts.Notice.FLAPPING}
    assert [m.to_dict() for m in fast.messages] == [m.to_dict() for m in full.messages]
