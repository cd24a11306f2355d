"""Putting messages in the outbox, and delivering what is there: now, or on a later run.

Within one delivery a receiver's "retry after N seconds" (Telegram's 429) is honoured
with tenacity, up to ``max_wait`` seconds in all; anything else that fails stays in
the outbox with its error and is tried on the next run. Parts are counted as they go,
so a long message cut in three never repeats the part that already arrived.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import tenacity

from autoops.notify.messages import Message
from autoops.notify.transport import DeliveryError, RetryAfterError
from autoops.state.outbox import OutboxRow, OutboxTable


class Notifier(Protocol):
    name: str

    def parts(self, message: Message) -> Sequence[object]: ...

    def send_part(self, message: Message, index: int) -> None: ...


@dataclass
class Delivery:
    """What one delivery did: messages delivered, and what is still waiting, with why."""

    delivered: list[str] = field(default_factory=list)  # "KEY CHANNEL"
    waiting: dict[str, str] = field(default_factory=dict)  # "KEY CHANNEL" → last error


def enqueue(table: OutboxTable, messages: Iterable[Message], channels: Iterable[str],
            now: datetime) -> int:
    """Keep each message for each channel; returns how many were new (the rest were there)."""
    names = list(channels)
    return sum(table.enqueue(OutboxRow(m.key, channel, m.env, json.dumps(m.to_dict()),
                                       now.isoformat()))
               for m in messages for channel in names)


def deliver(table: OutboxTable, notifiers: Mapping[str, Notifier], env: str,
            now: Callable[[], datetime], *, max_wait: float = 30.0,
            sleep: Callable[[float], None] = time.sleep) -> Delivery:
    """Send everything pending for ``env``, oldest first; never raises for a receiver."""
    report = Delivery()
    budget = [max_wait]
    for row in table.pending(env):
        label = f"{row.message_key} {row.channel}"
        notifier = notifiers.get(row.channel)
        if notifier is None:
            table.attempt_failed(row.message_key, row.channel, "no such notifier configured")
            report.waiting[label] = "no such notifier configured"
            continue
        message = Message.from_dict(json.loads(row.body))
        try:
            _send(table, notifier, row, message, _retrying(budget, sleep))
        except DeliveryError as exc:
            table.attempt_failed(row.message_key, row.channel, str(exc))
            report.waiting[label] = str(exc)
            continue
        table.delivered(row.message_key, row.channel, now().isoformat())
        report.delivered.append(label)
    return report


def _send(table: OutboxTable, notifier: Notifier, row: OutboxRow, message: Message,
          retrying: tenacity.Retrying) -> None:
    count = len(notifier.parts(message))
    for index in range(row.parts_sent, count):
        retrying(notifier.send_part, message, index)
        table.part_sent(row.message_key, row.channel, index + 1)


def _retrying(budget: list[float], sleep: Callable[[float], None]) -> tenacity.Retrying:
    """Retry a 429 after the wait it names, while the run's waiting budget lasts."""
    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        seconds = error.seconds if isinstance(error, RetryAfterError) else 1.0
        budget[0] -= seconds
        return seconds

    class OutOfBudget(tenacity.stop.stop_base):
        def __call__(self, state: tenacity.RetryCallState) -> bool:
            error = state.outcome.exception() if state.outcome else None
            return not isinstance(error, RetryAfterError) or error.seconds > budget[0]

    return tenacity.Retrying(retry=tenacity.retry_if_exception_type(RetryAfterError),
                             stop=tenacity.stop_after_attempt(5) | OutOfBudget(),
                             wait=wait, sleep=sleep, reraise=True)
