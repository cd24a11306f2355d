"""From a watch run's notices to the messages people get: one for problems, one for recoveries."""

from __future__ import annotations

import hashlib
import html
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from autoops.watch.findings import Notice, Severity

_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
_TAG = {Severity.CRITICAL: "🔴 CRITICAL", Severity.WARNING: "🟠 WARNING", Severity.INFO: "🔵 INFO"}


@dataclass(frozen=True)
class Item:
    """One notice about one finding, as a message lists it."""

    alert_id: str
    env: str
    host: str
    check: str
    subject: str
    severity: Severity
    notice: Notice
    summary: str
    since: datetime | None = None


@dataclass(frozen=True)
class Message:
    """What one notifier sends once: a group of items of one kind, from one watch run."""

    key: str  # the idempotency key: one message per (watch run, kind), whatever happens
    kind: str  # "problems" | "recoveries" | "escalations" | "rollbacks" | "test"
    env: str
    at: datetime
    items: tuple[Item, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "env": self.env, "at": self.at.isoformat(),
                "items": [{**item.__dict__, "severity": item.severity.value,
                           "notice": item.notice.value,
                           "since": item.since.isoformat() if item.since else None}
                          for item in self.items]}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Message:
        items = tuple(Item(**{**item, "severity": Severity(item["severity"]),
                              "notice": Notice(item["notice"]),
                              "since": datetime.fromisoformat(item["since"])
                              if item["since"] else None}) for item in doc["items"])
        return cls(doc["key"], doc["kind"], doc["env"], datetime.fromisoformat(doc["at"]), items)


def group(run_id: str, env: str, at: datetime, items: Iterable[Item],
          redact: Callable[[str], str] = lambda text: text) -> list[Message]:
    """At most two messages for a watch run: what is wrong (worst first), what recovered."""
    clean = [Item(i.alert_id, i.env, i.host, i.check, i.subject, i.severity, i.notice,
                  redact(i.summary), i.since) for i in items]
    problems = sorted((i for i in clean if i.notice is not Notice.RESOLVED),
                      key=lambda i: (_ORDER[i.severity], i.host, i.check, i.subject))
    recoveries = sorted((i for i in clean if i.notice is Notice.RESOLVED),
                        key=lambda i: (i.host, i.check, i.subject))
    return [Message(_key(run_id, kind), kind, env, at, tuple(found))
            for kind, found in (("problems", problems), ("recoveries", recoveries)) if found]


def _key(run_id: str, kind: str) -> str:
    return "n-" + hashlib.sha256(f"{run_id}\0{kind}".encode()).hexdigest()[:20]


def telegram_html(message: Message) -> str:
    """The message as Telegram HTML: severity tags, every value escaped."""
    def esc(text: str) -> str:
        return html.escape(text, quote=False)
    if message.kind == "recoveries":
        head = f"✅ <b>{len(message.items)} recovered</b> in {esc(message.env)}"
    elif message.kind == "escalations":
        head = (f"🆘 <b>{len(message.items)} need(s) a person</b> in {esc(message.env)}: "
                "self-healing stopped")
    elif message.kind == "rollbacks":
        head = f"↩️ <b>deploy rolled back</b> in {esc(message.env)}"
    elif message.kind == "test":
        head = f"🧪 <b>autoops test alert</b> for {esc(message.env)}"
    else:
        head = f"🚨 <b>{len(message.items)} problem(s)</b> in {esc(message.env)}"
    lines = [head]
    for item in message.items:
        what = esc(item.check + (f" {item.subject}" if item.subject else ""))
        tag = "✅ RESOLVED" if item.notice is Notice.RESOLVED else _TAG[item.severity]
        extra = {Notice.REPEAT: " (still firing)", Notice.FLAPPING: " (flapping)"}.get(
            item.notice, "")
        lines.append(f"<b>{tag}</b> {esc(item.host)}: {what}{extra}\n{esc(item.summary)}"
                     f" <code>{esc(item.alert_id)}</code>")
    return "\n\n".join(lines)


def split(text: str, limit: int = 4096) -> list[str]:
    """Parts of at most ``limit`` characters, cut between items (then lines) where it can.

    Never inside an HTML tag pair of one line: a line longer than the limit is cut as
    plain text (its tags stripped), so Telegram never sees half a tag.
    """
    parts: list[str] = []
    current = ""
    for block in text.split("\n\n"):
        for piece in _fit(block, limit):
            candidate = f"{current}\n\n{piece}" if current else piece
            if len(candidate) <= limit:
                current = candidate
            else:
                parts.append(current)
                current = piece
    if current:
        parts.append(current)
    return parts


def _fit(block: str, limit: int) -> list[str]:
    if len(block) <= limit:
        return [block]
    out: list[str] = []
    for line in block.split("\n"):
        if len(line) > limit:  # one enormous line: plain text, cut to size
            plain = html.escape(html.unescape(_untag(line)), quote=False)
            out.extend(_cut(plain, limit))
        else:
            out.append(line)
    return out


def _cut(text: str, limit: int) -> list[str]:
    """Cut escaped text to ``limit``-sized parts without splitting an entity (&amp;)."""
    parts = []
    while len(text) > limit:
        cut = text.rfind("&", limit - 8, limit)
        end = cut if cut > 0 and ";" not in text[cut:limit] else limit
        parts.append(text[:end])
        text = text[end:]
    return [*parts, text] if text else parts


def _untag(text: str) -> str:
    out, inside = [], False
    for char in text:
        if char == "<":
            inside = True
        elif char == ">" and inside:
            inside = False
        elif not inside:
            out.append(char)
    return "".join(out)
