"""``autoops watch``: read the fleet, judge it, remember it, tell people.

The reading is the SAFE ``watch`` action, through the normal gate and audit; at most
one message of problems and one of recoveries per run go out, through the outbox.

One watch per environment at a time: an overlapping cron start stops at once (exit 8)
instead of queueing behind the first. Notifiers are configured in the environment's
SOPS secrets (``notify_telegram_token``, ``notify_telegram_chat_id``, optional
``notify_telegram_base_url``; ``notify_webhook_url``, ``notify_webhook_secret``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from autoops.common.files import only_one
from autoops.errors import BadInputError, NotifyFailedError, NotifyNoneError, WatchBusyError
from autoops.exits import ExitStatus
from autoops.notify import outbox
from autoops.notify.messages import Item, Message, group
from autoops.notify.outbox import Notifier
from autoops.notify.telegram import Telegram
from autoops.notify.transport import DeliveryError
from autoops.notify.webhook import Webhook
from autoops.services.alerting import Alerts
from autoops.services.context import Context
from autoops.services.metrics import Metrics
from autoops.services.requests import RunRequest
from autoops.services.running import Runs
from autoops.watch import restarts
from autoops.watch.findings import FindingKey, Notice, Reading, Severity, State, Thresholds
from autoops.watch.judge import judge_host

TEST_CLASSES: dict[str, tuple[str, Severity, str]] = {
    "disk": ("/var", Severity.CRITICAL, "/var is 97.0% full (warning at 85, critical at 95)"),
    "inodes": ("/var", Severity.WARNING, "inodes on /var are 88.0% used"),
    "memory": ("", Severity.WARNING, "memory is 92.0% used"),
    "load": ("", Severity.WARNING, "5-minute load is 2.40 per CPU"),
    "reachable": ("", Severity.CRITICAL, "no reading: the host was unreachable"),
    "service": ("app", Severity.CRITICAL, "app is not running (systemd says failed/failed)"),
    "restarts": ("app", Severity.CRITICAL, "app restarted 5 time(s) in the last 15m"),
    "proxy": ("/var/log/caddy/access.log", Severity.CRITICAL,
              "42 of 120 requests in the last 5m were 5xx (35.0%, 40 of them 502)"),
    "heartbeat": ("nightly-backup", Severity.CRITICAL,
                  "nightly-backup missed its run due 03:00 UTC (grace 30m)"),
    "tls": ("127.0.0.1:443", Severity.WARNING, "the certificate expires in 6.0 days"),
    "backup": ("/var/backups/autoops", Severity.CRITICAL,
               "the newest verified backup is 1d6h old (allowed 1d2h)"),
}
"""A made-up but typical finding per failure class, for ``alerts test``."""

NOTIFY_SECRETS = ("notify_telegram_token", "notify_telegram_chat_id", "notify_telegram_base_url",
                  "notify_webhook_url", "notify_webhook_secret")


@dataclass
class WatchResult:
    run_id: str
    env: str
    hosts: list[str]
    firing: list[dict[str, Any]]
    notices: list[dict[str, Any]]
    channels: list[str]
    delivered: list[str] = field(default_factory=list)
    waiting: dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> ExitStatus:
        """0 when all is well, 5 while anything fires (what cron and front-ends test)."""
        return ExitStatus.PLAYBOOK_FAILED if self.firing else ExitStatus.OK

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "env": self.env, "hosts": self.hosts,
                "firing": self.firing, "notices": self.notices, "channels": self.channels,
                "delivered": self.delivered, "waiting": self.waiting,
                "status": "firing" if self.firing else "ok", "exit_status": int(self.status)}


class Watch:
    def __init__(self, ctx: Context, runs: Runs, alerts: Alerts) -> None:
        self.ctx = ctx
        self.runs = runs
        self.alerts = alerts

    def watch(self, env: str, actor: str | None = None) -> WatchResult:
        """One watch run of ``env``: read, judge, remember, notify (now or later)."""
        self.ctx.scope(env)
        with self._only_one(env):
            result = self.runs.run(RunRequest(action="watch", env=env, actor=actor))
            now = self.ctx.clock()
            items = self._judge(env, result.plan.hosts, result.reports, now)
            if items:  # what people are told, in the audit too: `incident report` reads it
                self.ctx.record_admin("alert.notified", env, {"watch_run": result.run_id,
                                      "notices": [_notice(i) for i in items]},
                                      action="watch", actor=actor)
            notifiers = self.notifiers(env)
            messages = group(result.run_id, env, now, items, redact=self.ctx.redactor.text)
            outbox.enqueue(self.ctx.db.outbox, messages, notifiers, now)
            delivery = outbox.deliver(self.ctx.db.outbox, notifiers, env, self.ctx.clock)
        firing = [a for a in self.alerts.listing(env) if a["state"] == State.FIRING]
        # autoops metrics: count this completed watch run (its status, as WatchResult's), rewrite the file
        Metrics(self.ctx).watch_ended(env, ExitStatus.PLAYBOOK_FAILED if firing else ExitStatus.OK)
        return WatchResult(
            result.run_id, env, list(result.plan.hosts), firing,
            [{k: v for k, v in _notice(i).items() if k != "summary"} for i in items],
            sorted(notifiers), delivery.delivered, delivery.waiting)

    def _judge(self, env: str, hosts: Sequence[str], reports: Mapping[str, list[Any]],
               now: datetime) -> list[Item]:
        """Step every finding of ``env`` with this run's readings; the notices to send."""
        items: list[Item] = []
        seen: set[str] = set()
        patience: dict[str, Thresholds] = {}
        for host in hosts:
            report = (reports.get(host) or [None])[-1]
            judgement = judge_host(env, host, report, now, self._history(env, host))
            if report is not None:  # an unreachable host keeps what it had
                self.ctx.db.samples.replace(
                    env, host, {name: json.dumps(restarts.to_list(kept))
                                for name, kept in judgement.samples.items()},
                    now.isoformat())
                patience[host] = judgement.limits.default
            for judged in judgement.found:
                seen.add(judged.key.id)
                items += self._observe(judged.key, judged.reading,
                                       judgement.limits.of(judged.key.check))
        for row in self.ctx.db.findings.all(env):
            # What was not judged: a declaration removed or fixed, a mount gone, a host
            # taken out of the inventory. Without this it would fire for ever.
            if row.finding_id in seen or (row.host in hosts and row.host not in patience):
                continue  # judged now, or on a host that sent nothing (unknown, not fine)
            was = json.loads(row.body)
            if was.get("state") == State.OK:
                continue
            why = ("no longer checked: its declaration was removed or changed"
                   if row.host in hosts else "the host is no longer in the inventory")
            key = FindingKey(row.env, row.host, row.check, row.subject)
            items += self._observe(key, Reading(True, now, Severity(was["severity"]), why),
                                   patience.get(row.host, Thresholds()))
        return items

    def _observe(self, key: FindingKey, reading: Reading, limits: Thresholds) -> list[Item]:
        step = self.alerts.observe(key, reading, limits)
        if step.notice is None:
            return []
        return [Item(key.id, key.env, key.host, key.check, key.subject, step.finding.severity,
                     step.notice, step.finding.summary, step.finding.since)]

    def _history(self, env: str, host: str) -> dict[str, list[restarts.Sample]]:
        return {name: restarts.from_list(json.loads(body))
                for name, body in self.ctx.db.samples.of_host(env, host).items()}

    def test_alerts(self, env: str, classes: Sequence[str] | None = None,
                    actor: str | None = None) -> dict[str, Any]:
        """One test alert per failure class through every configured notifier, sent now.

        Not through the outbox: a test that fails should say so at once, not be
        delivered hours later by some watch run. Audited as ``alert.tested``.
        """
        self.ctx.scope(env)
        who = self.ctx.actor(actor)
        unknown = sorted(set(classes or ()) - set(TEST_CLASSES))
        if unknown:
            raise BadInputError(f"no failure class {', '.join(unknown)}",
                                remedy=f"Choose from {', '.join(TEST_CLASSES)}.")
        notifiers = self.notifiers(env)
        if not notifiers:
            raise NotifyNoneError(f"no notifier is configured for {env}")
        now = self.ctx.clock()
        run = f"test-{now:%Y%m%dT%H%M%SZ}"
        sent: dict[str, list[str]] = {name: [] for name in notifiers}
        failed: dict[str, str] = {}
        for name in classes or TEST_CLASSES:
            subject, severity, summary = TEST_CLASSES[name]
            item = Item(FindingKey(env, "test-host", name, subject).id, env, "test-host", name,
                        subject, severity, Notice.FIRING, f"TEST: {summary}", now)
            message = Message(f"t-{run}-{name}", "test", env, now, (item,))
            for channel, notifier in notifiers.items():
                if channel in failed:
                    continue
                try:
                    for index in range(len(notifier.parts(message))):
                        notifier.send_part(message, index)
                except DeliveryError as exc:
                    failed[channel] = self.ctx.redactor.text(str(exc))
                else:
                    sent[channel].append(name)
        doc = {"env": env, "classes": list(classes or TEST_CLASSES), "sent": sent,
               "failed": failed}
        self.ctx.record_admin("alert.tested", env, doc, action="alerts", actor=who)
        if failed:
            raise NotifyFailedError("; ".join(f"{c}: {why}" for c, why in sorted(failed.items())),
                                    details=doc)
        return doc

    def notifiers(self, env: str) -> dict[str, Notifier]:
        """The notifiers ``env``'s secrets configure (none is a valid, quiet, choice)."""
        found = self.ctx.secret_store.values_named(env, NOTIFY_SECRETS)
        self.ctx.redactor.add(tuple(found.values()))
        configured: dict[str, Notifier] = {}
        if found.get("notify_telegram_token") and found.get("notify_telegram_chat_id"):
            configured["telegram"] = Telegram(
                found["notify_telegram_token"], found["notify_telegram_chat_id"],
                base_url=found.get("notify_telegram_base_url") or "https://api.telegram.org")
        if found.get("notify_webhook_url") and found.get("notify_webhook_secret"):
            configured["webhook"] = Webhook(found["notify_webhook_url"],
                                            found["notify_webhook_secret"])
        return configured

    def _only_one(self, env: str) -> contextlib.AbstractContextManager[None]:
        """Hold ``watch-ENV.lock`` for the run; a second watch of ``env`` stops at once."""
        return only_one(self.ctx.settings.state_dir / f"watch-{env}.lock", lambda: WatchBusyError(
            f"another `autoops watch --env {env}` is running; this one did nothing"))


def _notice(item: Item) -> dict[str, Any]:
    return {"alert": item.alert_id, "host": item.host, "check": item.check,
            "subject": item.subject, "severity": item.severity.value,
            "notice": item.notice.value, "summary": item.summary}


__all__ = ["NOTIFY_SECRETS", "Notice", "Watch", "WatchResult"]
