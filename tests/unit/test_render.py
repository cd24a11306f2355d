from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoops.cli import render
from autoops.cli.render import (
    audit_record,
    duration,
    error_text,
    health_text,
    size,
    table,
    terminal_text,
    visible,
)
from autoops.core.catalog import Action
from autoops.core.risk import Risk
from autoops.errors import AutoopsError, ParamInvalidError


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


# -- the terminal shows data, never obeys it --------------------------------------------

FORGED = "run 20261122T000000Z-deadbeef: OK (exit 0)"
HOSTILE = (f"\x1b[2J\x1b[H\n{FORGED}\x1b]0;pwned\x07\r\u202eevil\u2066\u2069\x9b31m"
           "\u200b\u2028\u2029\ufeff\x00\x7f\\x1b\t\v\f\x85")
# Characters that must never reach a terminal raw, named independently of str.isprintable.
FORBIDDEN = {*map(chr, range(0x20)), "\x7f", *map(chr, range(0x80, 0xA0)),
             *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A)),
             *map(chr, range(0x200B, 0x2010)), "\u2028", "\u2029", "\ufeff", "\u061c", "\u00ad"}
_ESCAPE = re.compile(r"\\(\\|n|r|t|x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8})")


def unvisible(text: str) -> str:
    """Invert visible(): the reference decoder that proves no two values look the same."""
    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        named = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}
        return named[code] if code in named else chr(int(code[1:], 16))
    return _ESCAPE.sub(one, text)


def inert(text: str) -> bool:
    return all(char.isprintable() and char not in FORBIDDEN for char in text)


# Every character, surrogates included, weighted towards the ones escaping is about.
TRICKY = st.sampled_from([*"\\xuUnrt0aF9 /:", "\x1b", "\n", "\r", "\t", "\x07", "\x00", "\x7f",
                          "\x9b", "\u202e", "\u2066", "\u200b", "\u2028", "\ufeff", "\udc80",
                          "\U000e0041", "\u00a0", "é", "…"])
CHARS = st.characters(exclude_categories=()) | TRICKY


@given(st.text(CHARS))
def test_visible_output_is_inert_and_one_line(text: str) -> None:
    shown = visible(text)
    assert inert(shown), repr(shown)
    assert "\n" not in shown


@given(st.text(CHARS))
def test_visible_is_reversible_so_values_stay_distinguishable(text: str) -> None:
    assert unvisible(visible(text)) == text


@given(st.text(CHARS), st.text(CHARS))
def test_different_values_never_look_the_same(a: str, b: str) -> None:
    assert (visible(a) == visible(b)) == (a == b)


@given(st.text(st.characters(exclude_categories=("C", "Z")) | st.just(" "))
       .filter(lambda t: "\\" not in t))
def test_visible_leaves_printable_text_alone(text: str) -> None:
    assert visible(text) == text


@pytest.mark.parametrize(("value", "shown"), [
    ("\x1b[2J\x1b[H", r"\x1b[2J\x1b[H"),
    ("a\nb\r\tc", r"a\nb\r\tc"),
    ("\x1b]0;pwned\x07", r"\x1b]0;pwned\x07"),
    ("\x9b31m\x7f\x00", r"\x9b31m\x7f\x00"),
    ("\u202eevil\u2066\u2069\u200b\ufeff\u2028", r"\u202eevil\u2066\u2069\u200b\ufeff\u2028"),
    ("\U000e0041\udc80", r"\U000e0041\udc80"),
    ("/var/log/nginx é…", "/var/log/nginx é…"),
    # a backslash is doubled only where it would read as an escape
    (r"C:\Users\ops\Documents", r"C:\Users\ops\Documents"),
    (r"^\d+\.log$ [\s\S]", r"^\d+\.log$ [\s\S]"),
    (r"C:\temp\new", r"C:\\temp\\new"),
    (r"\x1b is ESC", r"\\x1b is ESC"),
    (r"\xz \u12 \U1234", r"\xz \u12 \U1234"),
    ("\\\x1b", r"\\\x1b"),
    ("\\\\server\\share", r"\\\server\share"),
    ("ends in \\", "ends in \\"),
    (7, "7"),
    (None, "None"),
])
def test_visible_examples(value: object, shown: str) -> None:
    assert visible(value) == shown


def test_a_literal_escape_and_the_character_look_different() -> None:
    assert visible("\x1b") != visible("\\x1b")
    assert visible("\n") != visible("\\n")


@given(st.text(CHARS))
def test_terminal_text_keeps_only_line_breaks(text: str) -> None:
    safe = terminal_text(text)
    assert inert(safe.replace("\n", ""))
    assert safe.count("\n") == text.count("\n")


def test_terminal_text_changes_nothing_already_rendered() -> None:
    text = table([(HOSTILE, "x")], ("A", "B")) + "\n" + visible(HOSTILE)
    assert terminal_text(text) == text


def _action(s: str) -> Action:
    return Action(name=s, description=s, playbook=s, risk=Risk.SAFE, environments=(s, "local"),
                  check_mode=True, rollback=s, aliases=(s,),
                  params_schema={"required": [s], "properties": {s: {
                      "type": "string", "description": s, "pattern": s, "enum": [s, "b"]}}})


def _plan(s: str) -> dict[str, Any]:
    return {"action": s, "risk": s, "description": s, "env": s, "limit": s, "hosts": [s, "h2"],
            "params": {f"key {s}": s, "list": [s, 1]}, "playbook": s, "check_mode": True,
            "content_digest": s, "revision": s}


def _decision(s: str) -> dict[str, Any]:
    return {"outcome": s, "rule": s, "reason": s,
            "rules": [{"rule": s, "outcome": s, "reason": s, "satisfy": s}]}


def _lock(s: str) -> dict[str, Any]:
    return {"needed": True, "held_by": [{"run_id": s, "actor": s, "hosts": [s], "acquired": s}]}


def _run(s: str) -> dict[str, Any]:
    mount = {"mount": s, "used_percent": 50.0, "size_kib": 1024, "avail_kib": 512,
             "inodes_used_percent": 3.0}
    reports = [
        {"kind": "health", "hostname": s, "uptime_seconds": 60, "load": [0, 0, 0], "cpus": s,
         "memory": {"used_percent": 1, "total_kib": 1}, "mounts": [mount], "problems": [s]},
        {"kind": "disk", "path": s, "mounts": [mount], "largest": [{"path": s, "kib": 4}],
         "unreadable": 1},
        {"kind": "service", "service": s, "manager": s, "state": s, "pid": s, "pid_before": s,
         "operation": "restart"},
        {"kind": s, f"key {s}": s, "list": [s]},
        s,
    ]
    return {"run_id": s, "status": s, "exit_status": s, "stats": {s: {"ok": 1}},
            "plan": {"hosts": [s], "check_mode": True}, "reports": {s: reports},
            "results": [{"host": s, "task": s, "diff": {"x": s}}]}


def _audit(s: str, kind: str) -> dict[str, Any]:
    data = {"host": s, "status": s, "task": s, "decision": {"outcome": s, "rule": s},
            "approval": {"method": s}, "reason": s, "grant_id": s, "id": s, "key_id": s,
            "request_id": s, "scope": s, "use": s, "plan": {"hosts": [s], "params": {s: s}}}
    return {"seq": s, "ts": s, "run_id": s, "type": kind, "actor": s, "env": s, "action": s,
            "data": data}


def _grant(s: str) -> dict[str, Any]:
    return {"id": s, "env": s, "state": s, "actions": [s, "b"], "max_risk": s, "hosts": s,
            "params": {s: [s, "v"]}, "issued": s, "expires": s, "used": s, "uses": s,
            "issuer": s, "break_glass": True, "reason": s, "revoked": s, "revoked_by": s,
            "revoke_reason": s}


def _approval(s: str) -> dict[str, Any]:
    return {"id": s, "state": s, "env": s, "action": s, "requester": s, "decided_by": s,
            "expires": s, "reason": s, "plan": _plan(s), "plan_digest": s}


def _halt(s: str) -> dict[str, Any]:
    return {"scope": s, "actor": s, "since": s, "reason": s}


def _policy(s: str) -> dict[str, Any]:
    env = {"origins": {"unattended_max_risk": s, "windows": s, "grants": s}, "description": s,
           "unattended_max_risk": s, "confirm_max_risk": s, "two_person_min_risk": s,
           "typed_confirmation_max_risk": s, "approvers": {"users": [s], "groups": [s]},
           "approval_expires_in": s,
           "windows": {"above": s, "timezone": s,
                       "weekly": [{"days": [s, "mon"], "start": s, "end": s}],
                       "freezes": [{"start": s, "end": s, "above": s, "reason": s}]},
           "grants": {"max_expires_in": {s: s}, "break_glass_max_expires_in": s}}
    return {s: env}


def _audit_line(kind: str) -> Callable[[str], str]:
    return lambda s: audit_record(_audit(s, kind))


def _alert(s: str) -> dict[str, Any]:
    return {"id": s, "state": s, "severity": s, "env": s, "host": s, "check": s, "subject": s,
            "summary": s, "since": s, "seen": s, "history": s, "flapping": True, "acked_by": s,
            "silenced_until": s}


RENDERERS: dict[str, Callable[[str], str]] = {
    "table": lambda s: table([(s, s), ("a", 1)], ("A", "B")),
    "action_list": lambda s: render.action_list([{"name": s, "risk": s, "environments": [s],
                                                    "description": s}]),
    "action_detail": lambda s: render.action_detail(
        _action(s), {"*": _action(s).schema_for(None),
                     s: {"properties": {s: {"type": "string", "pattern": s, "maxLength": 9}}}},
        {s: {"outcome": s, "rule": s, "reason": s}}),
    "plan_text": lambda s: render.plan_text(_plan(s), _decision(s), _lock(s)),
    "result_line": lambda s: render.result_line({"status": "failed", "host": s, "task": s,
                                                 "msg": s}),
    "result_line_unknown_status": lambda s: render.result_line({"status": s, "host": s,
                                                                "task": s}),
    "run_summary": lambda s: render.run_summary(_run(s)),
    **{f"audit_record_{kind}": _audit_line(kind)
       for kind in ("task.result", "run.decision", "run.finished", "grant.created",
                    "halt.engaged", "run.requested", "lock.acquired")},
    "error_text": lambda s: error_text(AutoopsError(s, remedy=f"{s}\n{s}")),
    "secrets_init": lambda s: render.secrets_init(
        {"env": s, "key_created": True, "file_created": False, "key": s, "recipient": s,
         "fingerprint": s, "file": s}),
    "secrets_rotate": lambda s: render.secrets_rotate(
        {"env": s, "files": [s], "rekeyed": True, "old_recipients": [s], "new_recipients": [s],
         "retired_key": s}),
    "grant_key": lambda s: render.grant_key({"env": s, "created": True, "key_id": s,
                                             "private_key": s, "public_key": s,
                                             "public_written": True}),
    "grant_text": lambda s: render.grant_text(_grant(s)),
    "grant_table": lambda s: render.grant_table([_grant(s) | {"actions": [s]}]),
    "approval_table": lambda s: render.approval_table([_approval(s)]),
    "approval_text": lambda s: render.approval_text(_approval(s)),
    "halt_text": lambda s: render.halt_text({"halt": _halt(s), "engaged": True,
                                             "runs_stopped": [s], "runs_still_running": [s]}),
    "resume_text": lambda s: render.resume_text({"lifted": _halt(s),
                                                 "still_in_force": [_halt(s)]}),
    "status_text": lambda s: render.status_text(
        {"halts": [_halt(s)], "approvals_pending": [s],
         "runs": [{"run_id": s, "env": s, "action": s, "actor": s, "pid": s, "started": s}],
         "locks": [{"env": s, "host": s, "run_id": s, "actor": s}]}),
    "policy_text": lambda s: render.policy_text(_policy(s)),
    "alert_table": lambda s: render.alert_table([_alert(s)]),
    "alert_text": lambda s: render.alert_text(_alert(s)),
    "watch_text": lambda s: render.watch_text(
        {"env": s, "hosts": [s], "firing": [{}], "run_id": s, "channels": [],
         "notices": [{"notice": s, "severity": s, "host": s, "check": s, "subject": s}],
         "waiting": {s: s}}),
}


@pytest.mark.parametrize("name", RENDERERS)
def test_hostile_values_cannot_act_on_the_terminal(name: str) -> None:
    benign, hostile = RENDERERS[name]("x"), RENDERERS[name](HOSTILE)
    assert inert(hostile.replace("\n", "")), hostile
    # a line break in a value never makes a line of output, let alone a forged one
    assert hostile.count("\n") == benign.count("\n")
    assert not [line for line in hostile.split("\n") if line.lstrip().startswith(FORGED)]
    assert terminal_text(hostile) == hostile


@given(st.text(CHARS, max_size=40))
def test_any_value_in_a_run_summary_stays_data(value: str) -> None:
    text = render.run_summary(_run(value))
    assert inert(text.replace("\n", ""))
    assert text.count("\n") == render.run_summary(_run("x")).count("\n")
    assert text.split("\n")[-1].startswith(f"run {visible(value)}: ")


def test_disk_report_shows_the_hostile_path_escaped_on_its_own_line() -> None:
    text = render.disk_text("h", {"path": "/srv", "largest": [{"path": f"/srv/{HOSTILE}",
                                                                "kib": 4}]})
    line = text.split("\n")[-1]
    assert line.startswith("       4.0K  /srv/\\x1b[2J\\x1b[H\\nrun 20261122T000000Z-deadbeef")
    assert unvisible(line.removeprefix("       4.0K  ")) == f"/srv/{HOSTILE}"


def test_an_error_is_two_lines_whatever_its_message_and_remedy() -> None:
    text = error_text(AutoopsError("bad\x1b[2J\nrun x: OK", remedy="usage: x\n\nmore\x07"))
    assert text.split("\n") == ["error[AUTOOPS-INTERNAL]: bad\\x1b[2J\\nrun x: OK",
                                "  remedy: usage: x\\n\\nmore\\x07"]


def test_promotion_evidence_is_one_line_per_fact_and_inert() -> None:
    text = render.promotion_text({
        "app": "app", "commit": "a" * 40, "from": "staging", "to": "production",
        "allowed": False, "deploy_run_id": "r-1", "soak": "30m", "soak_started": None,
        "soak_ends": None, "source_last_watch": None,
        "refusals": ["staging has critical findings firing: web1 service \x1b[2Jx: down"]})
    lines = text.splitlines()
    assert lines[0] == "promote app aaaaaaaaaaaa from staging to production: refused"
    assert len(lines) == 4
    assert "\x1b" not in text
