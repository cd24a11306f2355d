"""The notification outbox: each message, per channel, until it is delivered.

A message is put here before it is sent, under its idempotency key: a second watch
run with the same message adds nothing, an undelivered one is tried again later, and
the parts of a long message already sent are never sent again.
"""

from __future__ import annotations

from dataclasses import dataclass

from autoops.state.base import Connections

_COLUMNS = "message_key, channel, env, body, created, parts_sent, attempts, last_error, delivered"


@dataclass(frozen=True)
class OutboxRow:
    message_key: str
    channel: str
    env: str
    body: str  # JSON of the message
    created: str
    parts_sent: int = 0
    attempts: int = 0
    last_error: str | None = None
    delivered: str | None = None


class OutboxTable:
    def __init__(self, database: Connections) -> None:
        self.database = database

    def enqueue(self, row: OutboxRow) -> bool:
        """Keep a message for a channel; False when it is already there (same key)."""
        with self.database.connect() as db:
            cur = db.execute("INSERT OR IGNORE INTO outbox (message_key, channel, env, body, "
                             "created) VALUES (?,?,?,?,?)",
                             (row.message_key, row.channel, row.env, row.body, row.created))
        return cur.rowcount == 1

    def pending(self, env: str) -> list[OutboxRow]:
        with self.database.connect() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM outbox WHERE env=? AND "  # noqa: S608
                              "delivered IS NULL ORDER BY created, rowid",
                              (env,)).fetchall()
        return [OutboxRow(*row) for row in rows]

    def all(self, env: str | None = None) -> list[OutboxRow]:
        with self.database.connect() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM outbox WHERE ?1 IS NULL OR env=?1 "  # noqa: S608
                              "ORDER BY created, rowid", (env,)).fetchall()
        return [OutboxRow(*row) for row in rows]

    def part_sent(self, key: str, channel: str, parts_sent: int) -> None:
        with self.database.connect() as db:
            db.execute("UPDATE outbox SET parts_sent=? WHERE message_key=? AND channel=? "
                       "AND parts_sent < ?", (parts_sent, key, channel, parts_sent))

    def attempt_failed(self, key: str, channel: str, error: str) -> None:
        with self.database.connect() as db:
            db.execute("UPDATE outbox SET attempts=attempts+1, last_error=? WHERE message_key=? "
                       "AND channel=?", (error[:500], key, channel))

    def delivered(self, key: str, channel: str, when: str) -> None:
        with self.database.connect() as db:
            db.execute("UPDATE outbox SET delivered=?, attempts=attempts+1, last_error=NULL "
                       "WHERE message_key=? AND channel=?", (when, key, channel))
