"""incident report: which audit records tell one finding's story, and the Markdown of it."""

from __future__ import annotations

from typing import Any

from autoops.services.incidents import markdown, timeline

ALERT: dict[str, Any] = {"id": "f-1", "env": "production", "host": "web1", "check": "service",
                         "subject": "app", "state": "firing", "severity": "critical",
                         "since": "2026-11-02T03:00:00+00:00", "acked_by": "alice",
                         "summary": "app is STOPPED | \x1b[2Jgone"}


def rec(seq: int, ts: str, type_: str, data: dict[str, Any], **over: Any) -> dict[str, Any]:
    return {"seq": seq, "ts": f"2026-11-02T{ts}:00+00:00", "type": type_, "env": "production",
            "actor": "cron", "action": over.pop("action", "watch"), "run_id": over.pop("run", "r"),
            "data": data, **over}


def deploy(seq: int, ts: str, run: str, host: str) -> list[dict[str, Any]]:
    return [rec(seq, ts, "run.requested", {"plan": {"hosts": [host]}}, action="deploy", run=run),
            rec(seq + 1, ts, "run.finished", {"status": "ok", "exit_status": 0}, action="deploy",
                run=run)]


RECORDS = [
    *deploy(1, "00:00", "d-old", "web1"),  # three hours before: not part of it
    *deploy(3, "02:40", "d-near", "web1"),  # twenty minutes before: shown
    *deploy(5, "02:45", "d-other", "web2"),  # another host: not shown
    rec(7, "03:00", "alert.notified", {"watch_run": "w1", "notices": [
        {"alert": "f-1", "notice": "firing", "severity": "critical", "summary": "app down"},
        {"alert": "f-2", "notice": "firing", "severity": "warning", "summary": "other"}]}),
    rec(8, "03:01", "run.finished", {"status": "ok", "exit_status": 0}, action="restart-service",
        run="h-run"),
    rec(9, "03:01", "heal.finished", {"alert": "f-1", "attempt": "h-1", "outcome": "verifying",
                                      "runs": [{"action": "restart-service", "run_id": "h-run"}]}),
    rec(10, "03:02", "alert.acked", {"alert": "f-1", "reason": "on it"}, actor="alice"),
    rec(11, "03:03", "alert.acked", {"alert": "f-9", "reason": "not this one"}),
    rec(12, "03:04", "alert.notified", {"watch_run": "w2", "notices": []}, env="staging"),
]


def test_only_what_is_about_the_finding_is_in_its_timeline() -> None:
    events = timeline(ALERT, RECORDS)
    assert [e["seq"] for e in events] == [4, 7, 8, 9, 10]
    assert events[0]["what"] == "run d-near (deploy) finished: ok, exit 0"
    assert events[1]["what"] == "firing (critical): app down — watch run w1"
    assert events[3]["what"] == "heal h-1 verifying"
    assert events[4]["what"] == "acked: on it"


def test_the_markdown_cannot_be_broken_by_what_a_host_said() -> None:
    text = markdown(ALERT, timeline(ALERT, RECORDS))
    assert text.startswith("# Incident f-1: web1 service app (production)\n")
    assert "\x1b" not in text
    assert "app is STOPPED \\|  [2Jgone" in text
    assert text.count("\n- `") == 5
    assert "nothing recorded" in markdown(ALERT, [])
