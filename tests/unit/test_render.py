from __future__ import annotations

import pytest

from autoops.errors import ParamInvalidError
from autoops.render import audit_record, duration, error_text, health_text, size, table


@pytest.mark.parametrize(("kib", "text"), [(0, "0.0K"), (512, "512K"), (2048, "2.0M"),
                                           (264212084, "252G")])
def test_size(kib: float, text: str) -> None:
    assert size(kib) == text


@pytest.mark.parametrize(("secs", "text"), [(59, "0m 59s"), (3700, "1h 1m"), (90000, "1d 1h")])
def test_duration(secs: int, text: str) -> None:
    assert duration(secs) == text


def test_table_aligns_columns() -> None:
    assert table([("a", "bbb")], ("X", "Y")).splitlines() == ["X  Y", "a  bbb"]


def test_health_text_shows_problems() -> None:
    text = health_text("h", {"hostname": "h", "uptime_seconds": 60, "load": [1, 2, 3],
                             "cpus": 2, "memory": {"used_percent": 50, "total_kib": 1024},
                             "mounts": [{"mount": "/", "used_percent": 96.0, "size_kib": 1024,
                                         "avail_kib": 10, "inodes_used_percent": 5.0}],
                             "problems": ["disk / is 96.0% full (limit 90%)"]})
    assert "disk /" in text
    assert "PROBLEM: disk / is 96.0% full" in text


def test_error_text_has_code_and_remedy() -> None:
    text = error_text(ParamInvalidError("bad"))
    assert text.startswith("error[AUTOOPS-PARAM-INVALID]: bad")
    assert "remedy: Run `autoops show ACTION`" in text


def test_audit_record_line() -> None:
    line = audit_record({"seq": 7, "ts": "2026-11-22T08:00:00.000000Z", "run_id": "r",
                         "type": "task.result", "actor": "a", "env": "local", "action": "x",
                         "data": {"host": "h", "status": "ok", "task": "T"}})
    assert line.split() == ["7", "2026-11-22T08:00:00Z", "r", "task.result", "a@local", "x",
                            "h", "ok:", "T"]


def test_guardrail_records_name_their_grant_request_or_scope() -> None:
    base = {"seq": 1, "ts": "2026-11-22T08:00:00.000000Z", "run_id": "r", "actor": "a",
            "env": "production", "action": "grant"}
    created = audit_record({**base, "type": "grant.created",
                            "data": {"id": "g-0123456789ab", "key_id": "ed25519:ab",
                                     "reason": "CHG-1", "token": "never shown"}})
    assert created.endswith("id=g-0123456789ab key_id=ed25519:ab reason=CHG-1")
    used = audit_record({**base, "type": "grant.used",
                         "data": {"grant_id": "g-0123456789ab", "use": 2}})
    assert used.endswith("grant_id=g-0123456789ab use=2")
    halted = audit_record({**base, "type": "halt.engaged", "data": {"scope": "*", "reason": "x"}})
    assert halted.endswith("scope=* reason=x")
