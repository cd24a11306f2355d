"""Notifiers against real HTTP receivers on loopback: Telegram-compatible and a webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from autoops.notify import outbox
from autoops.notify.messages import Item, Message, group, split, telegram_html
from autoops.notify.telegram import Telegram
from autoops.notify.webhook import Webhook, sign
from autoops.state.db import StateDB
from autoops.state.outbox import OutboxTable
from autoops.watch.findings import Notice, Severity
from tests.integration.receivers import Receiver

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
TOKEN = "123456:SECRET-bot-token"


@pytest.fixture
def table(tmp_path: Path) -> OutboxTable:
    return StateDB(tmp_path / "state.db").outbox


def item(host: str = "web1", notice: Notice = Notice.FIRING,
         severity: Severity = Severity.CRITICAL, summary: str = "/var 97% full") -> Item:
    return Item(f"f-{host}", "staging", host, "disk", "/var", severity, notice, summary, NOW)


def test_a_watch_run_becomes_one_problem_message_and_one_recovery_message() -> None:
    items = [item("web2", severity=Severity.WARNING), item("db1", notice=Notice.RESOLVED),
             item("web1", summary="token hunter2 leaked"), item("web3", notice=Notice.FLAPPING)]
    problems, recoveries = group("run-1", "staging", NOW, items,
                                 redact=lambda t: t.replace("hunter2", "********"))
    assert [i.host for i in problems.items] == ["web1", "web3", "web2"]  # critical first
    assert [i.host for i in recoveries.items] == ["db1"]
    assert "hunter2" not in json.dumps(problems.to_dict())
    assert problems.key != recoveries.key
    assert group("run-1", "staging", NOW, items)[0].key == problems.key  # same run, same key
    assert Message.from_dict(problems.to_dict()) == group("run-1", "staging", NOW, items,
                                                          redact=lambda t: t.replace(
                                                              "hunter2", "********"))[0]


def test_values_are_escaped_and_long_messages_split_between_items() -> None:
    many = [item(f"web{n}", summary="<script>&" + "x" * 300) for n in range(40)]
    (message,) = group("run-2", "prod<b>", NOW, many)
    text = telegram_html(message)
    assert "<script>" not in text
    assert "prod&lt;b&gt;" in text
    parts = split(text)
    assert len(parts) > 1
    assert all(len(p) <= 4096 for p in parts)
    assert all(p.count("<b>") == p.count("</b>") for p in parts)
    assert sum(p.count("<code>f-web") for p in parts) == 40
    huge = split("<b>x</b> " + "&amp;" * 2000, limit=100)
    assert all(len(p) <= 100 and not p.endswith(("&", "&a", "&am", "&amp")) for p in huge)


def test_telegram_honours_retry_after_and_delivers_once(receiver: Receiver,
                                                        table: OutboxTable) -> None:
    receiver.script = [(429, {"ok": False, "error_code": 429,
                              "parameters": {"retry_after": 2}})]
    telegram = Telegram(TOKEN, "-100200", base_url=receiver.url)
    waited: list[float] = []
    messages = group("run-3", "staging", NOW, [item()])
    assert outbox.enqueue(table, messages, ["telegram"], NOW) == 1
    assert outbox.enqueue(table, messages, ["telegram"], NOW) == 0, "same key: kept once"
    report = outbox.deliver(table, {"telegram": telegram}, "staging", lambda: NOW,
                            sleep=waited.append)
    assert report.delivered == [f"{messages[0].key} telegram"]
    assert waited == [2.0]
    (path, _headers, body) = receiver.posts[0]
    assert path == f"/bot{TOKEN}/sendMessage"
    assert json.loads(body)["parse_mode"] == "HTML"
    assert json.loads(body)["chat_id"] == "-100200"
    outbox.deliver(table, {"telegram": telegram}, "staging", lambda: NOW, sleep=waited.append)
    assert len(receiver.posts) == 1, "delivered once, never again"


def test_a_receiver_that_is_down_gets_it_on_a_later_run(receiver: Receiver,
                                                        table: OutboxTable) -> None:
    down = Telegram(TOKEN, "1", base_url="http://127.0.0.1:9")  # discard port: refused
    messages = group("run-4", "staging", NOW, [item()])
    outbox.enqueue(table, messages, ["telegram"], NOW)
    first = outbox.deliver(table, {"telegram": down}, "staging", lambda: NOW)
    assert first.delivered == []
    (error,) = first.waiting.values()
    assert "cannot reach" in error
    assert TOKEN not in error, "the token is in the URL, never in an error"
    assert TOKEN not in json.dumps([r.__dict__ for r in table.all()])
    up = Telegram(TOKEN, "1", base_url=receiver.url)
    assert outbox.deliver(table, {"telegram": up}, "staging", lambda: NOW).delivered
    assert outbox.deliver(table, {"telegram": up}, "staging", lambda: NOW).delivered == []
    assert len(receiver.posts) == 1


def test_a_long_message_never_repeats_the_parts_that_arrived(receiver: Receiver,
                                                             table: OutboxTable) -> None:
    many = [item(f"web{n}", summary="y" * 400) for n in range(25)]
    messages = group("run-5", "staging", NOW, many)
    telegram = Telegram(TOKEN, "1", base_url=receiver.url)
    parts = telegram.parts(messages[0])
    assert len(parts) >= 3
    receiver.script = [(200, {"ok": True}), (500, {"ok": False, "description": "boom"})]
    outbox.enqueue(table, messages, ["telegram"], NOW)
    assert outbox.deliver(table, {"telegram": telegram}, "staging", lambda: NOW).waiting
    assert receiver.texts() == parts[:1]
    assert outbox.deliver(table, {"telegram": telegram}, "staging", lambda: NOW).delivered
    assert receiver.texts() == parts, "each part exactly once, in order"


def test_the_webhook_is_alertmanager_shaped_and_signed(receiver: Receiver,
                                                       table: OutboxTable) -> None:
    hook = Webhook(f"{receiver.url}/hook", "s3cret")
    messages = group("run-6", "staging", NOW, [item(), item("db1", notice=Notice.RESOLVED)])
    outbox.enqueue(table, messages, ["webhook"], NOW)
    assert len(outbox.deliver(table, {"webhook": hook}, "staging", lambda: NOW).delivered) == 2
    (p_path, p_headers, p_body), (_r, _h, r_body) = receiver.posts
    assert p_path == "/hook"
    expected = "sha256=" + hmac.new(b"s3cret", p_body, hashlib.sha256).hexdigest()
    assert p_headers["X-Autoops-Signature"] == expected == sign("s3cret", p_body)
    assert p_headers["Idempotency-Key"] == messages[0].key
    firing, resolved = json.loads(p_body), json.loads(r_body)
    assert (firing["version"], firing["status"], resolved["status"]) == ("4", "firing",
                                                                         "resolved")
    (alert,) = firing["alerts"]
    assert alert["labels"] == {"alertname": "disk", "env": "staging", "host": "web1",
                               "subject": "/var", "severity": "critical"}
    assert alert["fingerprint"] == "f-web1"
    assert resolved["alerts"][0]["endsAt"] == NOW.isoformat()


def test_a_channel_without_a_notifier_waits_with_a_reason(table: OutboxTable) -> None:
    outbox.enqueue(table, group("run-7", "staging", NOW, [item()]), ["pager"], NOW)
    report = outbox.deliver(table, {}, "staging", lambda: NOW)
    assert list(report.waiting.values()) == ["no such notifier configured"]
    (row,) = table.pending("staging")
    assert row.attempts == 1
