"""``autoops incident report ID``: one finding's story, from the audit log, as Markdown.

Everything comes from the hash-chained audit log, so the report shows what was
recorded: the notices people were sent (``alert.notified``), acknowledgements and
silences, each heal attempt with the runs it made (and how they ended), and the deploys
and rollbacks on the same host while the incident lasted. ``audit verify`` is what says
the log is intact; the report names the records it used by sequence number.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from autoops.common.files import write_atomic
from autoops.errors import BadInputError
from autoops.services.alerting import Alerts
from autoops.services.context import Context

DEPLOYS = frozenset({"deploy", "deploy-rollback"})
AROUND = timedelta(hours=1)  # deploys this long before the first notice may have caused it


class Incidents:
    def __init__(self, ctx: Context, alerts: Alerts) -> None:
        self.ctx, self.alerts = ctx, alerts

    def report(self, alert_id: str, output: Path | None = None) -> dict[str, Any]:
        """The finding now, and its timeline: ``{"alert", "events", "markdown"}``.

        With ``output``, the Markdown is also written there, replacing it in one step.
        """
        alert = self.alerts.show(alert_id)  # AlertUnknownError for an id nobody knows
        events = timeline(alert, self.ctx.audit.records())
        text = markdown(alert, events)
        doc: dict[str, Any] = {"alert": alert, "events": events, "markdown": text}
        if output is not None:
            try:
                write_atomic(output, text.encode(), 0o644)
            except OSError as exc:
                raise BadInputError(f"cannot write {output}: {exc.strerror}",
                                    remedy="Name a file in a directory you can write.") from None
            doc["path"] = str(output)
        return doc


def timeline(alert: dict[str, Any], records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records about ``alert``, oldest first, each as {seq, ts, actor, what}."""
    fid, host, env = alert["id"], alert["host"], alert["env"]
    kept = list(records)
    # a heal's runs finish before the heal records them: first learn which runs are its
    heal_runs = {str(run["run_id"]) for rec in kept if rec.get("type") == "heal.finished"
                 and (rec.get("data") or {}).get("alert") == fid
                 for run in (rec.get("data") or {}).get("runs", []) if run.get("run_id")}
    events: list[dict[str, Any]] = []
    deploys: dict[str, dict[str, Any]] = {}
    for rec in kept:
        data = rec.get("data") or {}
        kind = rec.get("type", "")
        what = None
        if kind == "alert.notified" and rec.get("env") == env:
            for notice in data.get("notices", []):
                if notice.get("alert") == fid:
                    what = (f"{notice['notice']} ({notice['severity']}): {notice['summary']} "
                            f"— watch run {data.get('watch_run')}")
        elif kind.startswith(("alert.", "heal.")) and data.get("alert") == fid:
            what = _admin(kind, data)
        elif kind == "run.requested" and rec.get("env") == env and rec.get("action") in DEPLOYS:
            hosts = (data.get("plan") or {}).get("hosts", [])
            if host in hosts:
                deploys[str(rec.get("run_id"))] = rec
        elif kind == "run.finished" and (rec.get("run_id") in heal_runs
                                         or rec.get("run_id") in deploys):
            what = (f"run {rec.get('run_id')} ({rec.get('action')}) finished: "
                    f"{data.get('status')}, exit {data.get('exit_status')}")
        if what is not None:
            events.append({"seq": rec.get("seq"), "ts": rec.get("ts"), "actor": rec.get("actor"),
                           "type": kind, "what": what})
    about = [e for e in events if e["type"] != "run.finished"]
    if not about:
        return about
    first = datetime.fromisoformat(str(about[0]["ts"])) - AROUND  # what came long before: not it
    return [e for e in events if e["type"] != "run.finished"
            or datetime.fromisoformat(str(e["ts"])) >= first]


def _admin(kind: str, data: dict[str, Any]) -> str:
    reason = f": {data['reason']}" if data.get("reason") else ""
    if kind == "alert.silenced":
        return f"silenced until {data.get('until')}{reason}"
    if kind.startswith("alert."):
        return f"{kind.removeprefix('alert.')}{reason}"
    steps = ", ".join(f"{s['action']} " + " ".join(f"{k}={v}" for k, v in s["params"].items())
                      for s in data.get("steps", []))
    if kind == "heal.started":
        return f"heal {data.get('attempt')} by {data.get('runbook')}: {steps}"
    if kind == "heal.escalated":
        return f"escalated to a person by {data.get('runbook')}{reason}"
    return f"heal {data.get('attempt')} {data.get('outcome')}{reason}"


def markdown(alert: dict[str, Any], events: list[dict[str, Any]]) -> str:
    def cell(value: Any) -> str:  # one table cell or list line: no controls, no bar
        text = "".join(c if c.isprintable() else " " for c in str(value))
        return text.replace("|", "\\|")
    subject = f" {alert['subject']}" if alert["subject"] else ""
    title = (f"# Incident {alert['id']}: {alert['host']} {alert['check']}{subject} "
             f"({alert['env']})")
    row = (f"| {cell(alert['state'])} | {cell(alert['severity'])} | {cell(alert.get('since'))} "
           f"| {cell(alert.get('acked_by') or '-')} | {cell(alert.get('summary'))} |")
    lines = [title, "", "| now | severity | since | acknowledged by | summary |",
             "|---|---|---|---|---|", row, "", "## Timeline", ""]
    lines += [f"- `{e['ts']}` **{e['type']}** ({cell(e['actor'])}, audit #{e['seq']}): "
              f"{cell(e['what'])}" for e in events] or ["- nothing recorded about it yet"]
    return "\n".join(lines) + "\n"
