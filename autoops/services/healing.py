"""``autoops heal`` and ``autoops runbooks list|replay``: self-healing, and what it would do.

``heal --env ENV`` takes what fires in ENV (nobody acknowledged or silenced it), picks
each finding's runbook and runs its steps as ordinary catalog actions on that host
through the gate (so an unattended fix runs only as far as policy or a grant lets it).
An attempt is written to ``state.db`` before its first step and is *verifying* once the
steps ran: it *held* when the finding resolves (watch's own recover_after) within the
runbook's ``verify_within``, else it *failed*. A refused or failed step, or a breaker
that is open, escalates: one message per heal run through the notifiers, and the
audit log. An attempt whose autoops died is *interrupted* at the next heal and counts
for the breaker. One heal per environment at a time.

``replay`` feeds recorded findings (JSON lines, oldest first: ``at``, ``env``, ``host``,
``check``, ``subject``, ``severity``, optional ``notice`` and ``groups``) through the
matcher and the circuit breaker in a dry run: nothing runs, nothing is recorded. It is
how a runbook is tried on last month's incidents before it may touch a host.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from autoops.common import procs
from autoops.common.durations import format_duration
from autoops.common.files import only_one
from autoops.core import inventory
from autoops.errors import AutoopsError, HealBusyError, ReplayInvalidError
from autoops.exits import ExitStatus
from autoops.heal import matcher, runbooks
from autoops.heal.runbooks import Runbook
from autoops.notify import outbox
from autoops.notify.messages import Item, Message
from autoops.services.alerting import Alerts
from autoops.services.context import Context
from autoops.services.requests import RunRequest
from autoops.services.running import Runs
from autoops.services.watching import Watch
from autoops.state.heals import HealRow
from autoops.watch.findings import Notice, Severity

_REQUIRED = ("at", "env", "host", "check", "subject", "severity")


OPEN = frozenset({"running", "verifying"})  # an attempt that still decides its finding
RAN = frozenset({"running", "verifying", "held", "failed", "interrupted"})  # the breaker counts


class Healing:
    def __init__(self, ctx: Context, runs: Runs, alerts: Alerts, watch: Watch) -> None:
        self.ctx, self.runs, self.alerts, self.watch = ctx, runs, alerts, watch
        self._group_cache: dict[str, dict[str, tuple[str, ...]]] = {}

    def after_watch(self, env: str, actor: str | None = None) -> dict[str, Any] | None:
        """The heal run policy.yml's ``self_heal: true`` asks of every watch of ``env``."""
        if not self.ctx.policy.environments[self.ctx.scope(env)].self_heal:
            return None
        return self.heal(env, actor)

    def heal(self, env: str, actor: str | None = None) -> dict[str, Any]:
        """One heal run of ``env``: settle earlier attempts, then heal or escalate what fires."""
        self.ctx.scope(env)
        who = self.ctx.actor(actor)
        with self._only_one(env):
            self._group_cache.pop(env, None)  # the inventory as it is now, once per run
            now = self.ctx.clock()
            loaded = {r.name: r for r in self.runbooks()}
            firing = {a["id"]: a for a in self.alerts.listing(env) if a["state"] == "firing"}
            settled = self._settle(env, now, loaded, firing, who)
            attempts = self.ctx.db.heals.of_env(env)
            breakers = matcher.Breakers()
            for row in attempts:
                if row.outcome in RAN and row.runbook in loaded:
                    breakers.record(loaded[row.runbook], _finding_of(row))
            done: list[dict[str, Any]] = []
            for alert in firing.values():
                if alert.get("acked_by") or _silenced(alert, now):
                    continue  # a person has it
                mine = [r for r in attempts if r.finding_id == alert["id"]
                        and r.started >= (alert.get("since") or "")]
                if any(r.outcome in OPEN for r in mine):
                    continue  # a fix is being verified
                if any(r.outcome == "escalated" for r in mine):
                    continue  # told once for this incident
                found = matcher.Finding(at=now, env=env, host=alert["host"],
                                        check=alert["check"], subject=alert["subject"],
                                        severity=alert["severity"],
                                        groups=self._groups(env, loaded).get(alert["host"], ()))
                choice = matcher.choose(list(loaded.values()), found, self.ctx.catalog, breakers)
                if choice.outcome == "heal":
                    done.append(self._attempt(alert, choice, loaded[str(choice.runbook)], who))
                elif choice.outcome in {"escalate", "refused"}:
                    done.append(self._escalate(alert, choice, who, now))
            escalations = [d for d in done if d["outcome"] in {"escalated", "failed"}]
            escalations += [d for d in settled if d["outcome"] == "failed"]
            delivery = self._tell(env, escalations, now)
        return {"env": env, "settled": settled, "attempts": done,
                "escalated": [d["attempt"] for d in escalations], **delivery}

    def _groups(self, env: str, loaded: dict[str, Runbook]) -> dict[str, tuple[str, ...]]:
        """Inventory groups per host, read (once per heal run) only if a runbook asks."""
        if not any(r.match.groups for r in loaded.values()):
            return {}
        if env not in self._group_cache:
            content = self.ctx.content
            path = inventory.inventory_path(content.project_dir / "inventories", env,
                                            set(self.ctx.policy.environments))
            self._group_cache[env] = inventory.host_groups(content.project_dir, path,
                                                           content.environ)
        return self._group_cache[env]

    def _attempt(self, alert: dict[str, Any], choice: matcher.Choice, runbook: Runbook,
                 who: str) -> dict[str, Any]:
        detail: dict[str, Any] = {**_detail(alert, choice), "runs": []}
        attempt_id = self._record(alert, runbook.name, "running", detail, self.ctx.clock())
        self.ctx.record_admin("heal.started", alert["env"], {"attempt": attempt_id,
                              "alert": alert["id"],
                              "runbook": runbook.name, **detail}, action="heal", actor=who)
        outcome = "verifying"
        for step in choice.steps:
            request = RunRequest(action=step.action, env=alert["env"], params=dict(step.params),
                                 limit=alert["host"], actor=who)
            try:
                result = self.runs.run(request)
            except AutoopsError as exc:  # refused by the gate: policy, window, halt, lock
                detail["runs"].append({"action": step.action, "refused": exc.code,
                                       "reason": exc.message})
                outcome = "failed"
                break
            detail["runs"].append({"action": step.action, "run_id": result.run_id,
                                   "exit_status": int(result.status)})
            if result.status != ExitStatus.OK:
                outcome = "failed"
                break
        if outcome == "failed":
            last = detail["runs"][-1]
            detail["reason"] = (f"{last['action']} was refused: {last['reason']}"
                                if "refused" in last else
                                f"{last['action']} ended with exit status {last['exit_status']} "
                                f"(run {last['run_id']})")
        ended = self.ctx.clock().isoformat() if outcome == "failed" else None
        self.ctx.db.heals.finish(attempt_id, outcome, detail, ended)
        self.ctx.record_admin("heal.finished", alert["env"], {"attempt": attempt_id,
                              "alert": alert["id"],
                              "outcome": outcome, **detail}, action="heal", actor=who)
        return {"attempt": attempt_id, "runbook": runbook.name, "outcome": outcome, **detail}

    def _escalate(self, alert: dict[str, Any], choice: matcher.Choice, who: str,
                  now: datetime) -> dict[str, Any]:
        detail = {**_detail(alert, choice), "reason": choice.reason}
        attempt_id = self._record(alert, str(choice.runbook), "escalated", detail, now)
        self.ctx.record_admin("heal.escalated", alert["env"], {"attempt": attempt_id,
                              "alert": alert["id"],
                              "runbook": choice.runbook, **detail}, action="heal", actor=who)
        return {"attempt": attempt_id, "runbook": choice.runbook, "outcome": "escalated",
                **detail}

    def _record(self, alert: dict[str, Any], runbook: str, outcome: str,
                detail: dict[str, Any], now: datetime) -> str:
        """A new attempt row, with this process's pid and start time; its id.

        Only a ``running`` attempt is left open (``ended`` unset) for its outcome to come.
        """
        attempt_id = "h-" + hashlib.sha256(
            f"{alert['id']}\0{now.isoformat()}\0{outcome}".encode()).hexdigest()[:16]
        pid = os.getpid()
        ended = None if outcome == "running" else now.isoformat()
        self.ctx.db.heals.add(HealRow(attempt_id, alert["env"], alert["host"], alert["id"],
                                      runbook, now.isoformat(), ended, outcome, detail, pid,
                                      procs.process_start_time(pid) or ""))
        return attempt_id

    def _settle(self, env: str, now: datetime, loaded: dict[str, Runbook],
                firing: dict[str, dict[str, Any]], who: str) -> list[dict[str, Any]]:
        """Earlier attempts that can now say how they ended."""
        settled = []
        for row in self.ctx.db.heals.of_env(env):
            outcome = None
            if row.outcome == "running" and not procs.is_alive(row.pid, row.pid_start):
                outcome = "interrupted"  # its autoops died; the runs were recovered as such
            elif row.outcome == "verifying" and row.finding_id not in firing:
                outcome = "held"
            elif row.outcome == "verifying":
                within = loaded[row.runbook].verify_within if row.runbook in loaded else None
                if within is None or now - datetime.fromisoformat(row.started) > within:
                    outcome = "failed"
            if outcome is None:
                continue
            detail = dict(row.detail)
            if outcome == "failed":
                detail["reason"] = (f"{row.runbook}'s fix did not hold: still firing "
                                    f"after {format_duration(now - datetime.fromisoformat(row.started))}")
            self.ctx.db.heals.finish(row.attempt_id, outcome, detail, now.isoformat())
            self.ctx.record_admin("heal.finished", env, {"attempt": row.attempt_id,
                                  "alert": row.finding_id,
                                  "outcome": outcome, **detail}, action="heal",
                                  actor=who)
            settled.append({"attempt": row.attempt_id, "runbook": row.runbook,
                            "outcome": outcome, **detail})
        return settled

    def _tell(self, env: str, escalations: list[dict[str, Any]],
              now: datetime) -> dict[str, Any]:
        """One message for this heal run's escalations, through the outbox."""
        notifiers = self.watch.notifiers(env)
        if escalations:
            items = tuple(Item(
                e["attempt"], env, e["host"], e["check"], e["subject"],
                Severity.CRITICAL, Notice.FIRING,
                self.ctx.redactor.text(f"{e['runbook']}: {e.get('reason', '')}"), now)
                for e in escalations)
            key = "e-" + hashlib.sha256("\0".join(e["attempt"] for e in escalations).encode()
                                        ).hexdigest()[:20]
            outbox.enqueue(self.ctx.db.outbox, [Message(key, "escalations", env, now, items)],
                           notifiers, now)
        delivery = outbox.deliver(self.ctx.db.outbox, notifiers, env, self.ctx.clock)
        return {"channels": sorted(notifiers), "delivered": delivery.delivered,
                "waiting": delivery.waiting}

    def _only_one(self, env: str) -> contextlib.AbstractContextManager[None]:
        return only_one(self.ctx.settings.state_dir / f"heal-{env}.lock", lambda: HealBusyError(
            f"another `autoops heal --env {env}` is running; this one did nothing"))

    @property
    def directory(self) -> Path:
        return self.ctx.settings.project_dir / "runbooks"

    def runbooks(self) -> list[Runbook]:
        return runbooks.load_all(self.directory, self.ctx.catalog)

    def listing(self) -> list[dict[str, Any]]:
        return [{"name": r.name, "description": r.description, "check": r.match.check,
                 "severity": list(r.match.severities),
                 "environments": list(r.match.environments) or ["any"],
                 "steps": [s.action for s in r.steps],
                 "breaker": {"attempts": r.breaker.attempts,
                             "within": format_duration(r.breaker.within),
                             "within_seconds": int(r.breaker.within.total_seconds())}}
                for r in self.runbooks()]

    def replay(self, path: Path) -> dict[str, Any]:
        """Each recorded finding's choice, in order; a bad line refuses the whole file."""
        findings = read_findings(path)
        loaded, catalog = self.runbooks(), self.ctx.catalog
        breakers = matcher.Breakers()
        choices = [matcher.choose(loaded, f, catalog, breakers).to_dict() for f in findings]
        counts: dict[str, int] = {}
        for choice in choices:
            counts[choice["outcome"]] = counts.get(choice["outcome"], 0) + 1
        return {"file": str(path), "runbooks": [r.name for r in loaded], "choices": choices,
                "outcomes": dict(sorted(counts.items()))}


def read_findings(path: Path) -> list[matcher.Finding]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReplayInvalidError(f"{path}: cannot read: {exc}") from None
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        found.append(parse_finding(line, f"{path}:{number}"))
    return found


def parse_finding(line: str, where: str) -> matcher.Finding:
    try:
        doc = json.loads(line)
    except ValueError as exc:
        raise ReplayInvalidError(f"{where}: not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ReplayInvalidError(f"{where}: a finding is a JSON object")
    missing = [key for key in _REQUIRED if not isinstance(doc.get(key), str)]
    if missing:
        raise ReplayInvalidError(f"{where}: missing or not text: {', '.join(missing)}")
    try:
        at = datetime.fromisoformat(doc["at"])
    except ValueError:
        raise ReplayInvalidError(f"{where}: at: {doc['at']!r} is not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise ReplayInvalidError(f"{where}: at: {doc['at']!r} has no time zone")
    groups = doc.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise ReplayInvalidError(f"{where}: groups: a list of group names")
    notice = doc.get("notice", "firing")
    if not isinstance(notice, str):
        raise ReplayInvalidError(f"{where}: notice: text (firing, repeat, resolved, …)")
    return matcher.Finding(at=at, env=doc["env"], host=doc["host"], check=doc["check"],
                           subject=doc["subject"], severity=doc["severity"], notice=notice,
                           groups=tuple(groups))


def _detail(alert: dict[str, Any], choice: matcher.Choice) -> dict[str, Any]:
    """What an attempt row and its audit records say about the finding and the steps."""
    return {"finding": _label(alert), "host": alert["host"], "check": alert["check"],
            "subject": alert["subject"],
            "steps": [{"action": s.action, "params": dict(s.params)} for s in choice.steps]}


def _label(alert: dict[str, Any]) -> str:
    subject = f" {alert['subject']}" if alert["subject"] else ""
    return f"{alert['host']}: {alert['check']}{subject}"


def _silenced(alert: dict[str, Any], now: datetime) -> bool:
    until = alert.get("silenced_until")
    return isinstance(until, str) and datetime.fromisoformat(until) > now


def _finding_of(row: HealRow) -> matcher.Finding:
    """An earlier attempt, as the breaker counts it."""
    return matcher.Finding(at=datetime.fromisoformat(row.started), env=row.env, host=row.host,
                           check=str(row.detail.get("check", "")),
                           subject=str(row.detail.get("subject", "")), severity="critical")
