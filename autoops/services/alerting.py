"""Alerts: findings as people see them — list, show, acknowledge, silence — each audited.

``observe`` is how a watch run feeds a reading in: it steps the finding (see
:mod:`autoops.watch.findings`) and keeps it, in one transaction, and returns the
notice people should get. What sends the notice is the notifiers'.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from autoops.common import durations
from autoops.errors import AlertNotFiringError, AlertUnknownError, BadInputError
from autoops.services.context import Context, reason_line
from autoops.state.findings import FindingRow
from autoops.watch import findings
from autoops.watch.findings import Finding, FindingKey, Reading, State, Step, Thresholds

SILENCE_CEILING_HOURS = 7 * 24
"""A silence longer than a week is a decision to delete the check, not to silence it."""


class Alerts:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def observe(self, key: FindingKey, reading: Reading,
                limits: Thresholds | None = None) -> Step:
        """Step one finding with a new reading and keep it; the notice is the caller's to send."""
        row = FindingRow(key.id, key.env, key.host, key.check, key.subject, "",
                         reading.at.isoformat())
        outcome: list[Step] = []

        def advance(old: str | None) -> str:
            previous = findings.from_dict(json.loads(old)) if old else None
            stepped = findings.step(previous, reading, limits or Thresholds())
            outcome.append(stepped)
            return json.dumps(findings.to_dict(stepped.finding), sort_keys=True)

        self.ctx.db.findings.change(row, advance)
        return outcome[-1]

    def listing(self, env: str | None = None, *, everything: bool = False) -> list[dict[str, Any]]:
        """Firing and pending findings (every finding with ``everything``), worst first."""
        if env is not None:
            self.ctx.scope(env)
        docs = [_doc(row) for row in self.ctx.db.findings.all(env)]
        if not everything:
            docs = [d for d in docs if d["state"] != State.OK]
        order = {"critical": 0, "warning": 1, "info": 2}
        return sorted(docs, key=lambda d: (d["state"] != State.FIRING, order[d["severity"]],
                                           d["env"], d["host"], d["check"], d["subject"]))

    def show(self, fid: str) -> dict[str, Any]:
        return _doc(self._row(fid))

    def ack(self, fid: str, reason: str, actor: str | None = None) -> dict[str, Any]:
        """Stop repeats of a firing alert until it resolves (a worse severity fires again)."""
        who = self.ctx.actor(actor)
        why = reason_line(reason)

        def acked(found: Finding) -> Finding:
            if found.state is not State.FIRING:
                raise AlertNotFiringError(f"{fid} is {found.state}, not firing: nothing to "
                                          "acknowledge")
            return findings.acknowledge(found, who)
        return self._change(fid, acked, "alert.acked", who, {"reason": why})

    def silence(self, fid: str, for_: str, reason: str,
                actor: str | None = None) -> dict[str, Any]:
        """Keep an alert quiet (firing or not) for a while; what still fires is said after."""
        who = self.ctx.actor(actor)
        why = reason_line(reason)
        try:
            length = durations.parse_duration(for_)
        except ValueError as exc:
            raise BadInputError(f"--for: {exc}") from None
        if length.total_seconds() > SILENCE_CEILING_HOURS * 3600:
            raise BadInputError(f"--for {for_} is longer than {SILENCE_CEILING_HOURS // 24} days",
                                remedy="Silence it for at most a week, or change the check.")
        until = self.ctx.clock() + length
        return self._change(fid, lambda found: findings.silence(found, until), "alert.silenced",
                            who, {"reason": why, "until": until.isoformat()})

    def unsilence(self, fid: str, reason: str, actor: str | None = None) -> dict[str, Any]:
        who = self.ctx.actor(actor)
        return self._change(fid, findings.unsilence, "alert.unsilenced", who,
                            {"reason": reason_line(reason)})

    def _row(self, fid: str) -> FindingRow:
        row = self.ctx.db.findings.get(fid.strip())
        if row is None:
            raise AlertUnknownError(f"no alert {fid!r}")
        return row

    def _change(self, fid: str, how: Callable[[Finding], Finding], type_: str, who: str,
                data: dict[str, Any]) -> dict[str, Any]:
        row = self._row(fid)

        def apply(old: str | None) -> str:
            assert old is not None  # noqa: S101 - the row exists; findings are never deleted
            return json.dumps(findings.to_dict(how(findings.from_dict(json.loads(old)))),
                              sort_keys=True)
        body = self.ctx.db.findings.change(row, apply)
        self.ctx.record_admin(type_, row.env, {"alert": row.finding_id, "host": row.host,
                                               "check": row.check, "subject": row.subject,
                                               **data}, action="alerts", actor=who)
        return _doc(FindingRow(row.finding_id, row.env, row.host, row.check, row.subject, body,
                               row.updated))


def _doc(row: FindingRow) -> dict[str, Any]:
    return {"id": row.finding_id, "env": row.env, "host": row.host, "check": row.check,
            "subject": row.subject, "updated": row.updated, **json.loads(row.body)}
