"""The replay suite: recorded incidents through this repository's runbooks, with the choices expected.

``incidents.jsonl`` holds the findings (a service that keeps falling over until the
breaker opens, then heals again once the window has passed; a second host; a service
production does not allowlist; a warning no runbook takes; a crash loop no restart
fixes; a disk filling; a hostile mount name; a flap). ``expected.json`` is, line by
line, the outcome, the runbook and the step each must lead to. A change to a runbook
or to the matcher that changes a choice fails here first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from autoops.engine import Autoops
from autoops.exits import ExitStatus
from autoops.settings import Settings
from tests.conftest import run_cli

HERE = Path(__file__).parent


def steps(choice: dict[str, Any]) -> str:
    return "; ".join(f"{s['action']} " + " ".join(f"{k}={v}" for k, v in s["params"].items())
                     for s in choice["steps"])


def test_the_recorded_incidents_lead_to_the_expected_choices(settings: Settings) -> None:
    doc = Autoops(settings).healing.replay(HERE / "incidents.jsonl")
    got = [[c["outcome"], c["runbook"], steps(c)] for c in doc["choices"]]
    assert got == json.loads((HERE / "expected.json").read_text())
    assert doc["runbooks"] == ["disk-filling", "service-down"]


def test_reasons_say_why_in_plain_words(settings: Settings) -> None:
    choices = Autoops(settings).healing.replay(HERE / "incidents.jsonl")["choices"]
    reasons = [c["reason"] for c in choices]
    assert reasons[4] == ("breaker open: 3 heals of web1 within 1h; the fix does not hold, "
                          "a person is told")
    assert "postgres" in reasons[7]
    assert reasons[9] == "no runbook matches: a person decides"
    assert "does not match" in reasons[14] or "pattern" in reasons[14], reasons[14]


def test_the_cli_replays_as_a_dry_run(settings: Settings) -> None:
    done = run_cli(settings, "runbooks", "replay", str(HERE / "incidents.jsonl"))
    assert done.status == ExitStatus.OK, done.err
    assert done.out.splitlines()[-1] == ("dry run, nothing ran: 2 escalate, 8 heal, 2 ignored, "
                                         "2 no-runbook, 2 refused")
    listed = json.loads(run_cli(settings, "runbooks", "list", "--json").out)
    assert [r["name"] for r in listed["runbooks"]] == ["disk-filling", "service-down"]
