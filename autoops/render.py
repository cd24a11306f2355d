"""Human-readable rendering of catalog, plans, run results and audit records.

Pure functions from data to text; the CLI prints what they return.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from autoops.catalog import Action
from autoops.errors import AutoopsError

STATUS_MARK = {"ok": "ok", "changed": "changed", "failed": "FAILED", "ignored": "ignored",
               "skipped": "skipped", "unreachable": "UNREACHABLE"}


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]
    return "\n".join(lines)


def action_list(actions: Iterable[Action]) -> str:
    rows = [(a.name, a.risk.name, ",".join(a.environments), a.description) for a in actions]
    return table(rows, ("ACTION", "RISK", "ENVIRONMENTS", "DESCRIPTION"))


def action_detail(action: Action, schemas: Mapping[str, Mapping[str, Any]],
                  by_env: Mapping[str, Mapping[str, Any]]) -> str:
    out = [f"{action.name}: {action.description}",
           f"  playbook:     {action.playbook}",
           f"  risk:         {action.risk.name}",
           f"  environments: {', '.join(action.environments)}",
           f"  check mode:   {'supported' if action.check_mode else 'not supported'}",
           f"  rollback:     {action.rollback or '-'}"]
    if action.aliases:
        out.append(f"  vm-safe verbs: {', '.join(action.aliases)}")
    base = schemas.get("*", {})
    props: Mapping[str, Any] = base.get("properties", {})
    out.append("  parameters:" if props else "  parameters:   none")
    required = set(base.get("required", []))
    for name, spec in props.items():
        flags = "required" if name in required else f"default {json.dumps(spec.get('default'))}"
        out.append(f"    {name} ({spec['type']}, {flags}): {spec.get('description', '')}")
        out.extend(f"      {rule}: {_rule_value(spec[rule])}"
                   for rule in ("enum", "pattern", "minimum", "maximum", "maxLength") if rule in spec)
        for env, schema in schemas.items():
            narrowed = schema.get("properties", {}).get(name, {})
            if env != "*" and narrowed != spec:
                changes = {k: v for k, v in narrowed.items() if spec.get(k) != v}
                rules = ", ".join(f"{k} {_rule_value(v)}" for k, v in changes.items())
                out.append(f"      in {env}: {rules}")
    out.append("  policy:")
    for env, decision in by_env.items():
        out.append(f"    {env:<12} {decision['outcome']:<18} {decision['rule']}: {decision['reason']}")
    return "\n".join(out)


def _rule_value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def plan_text(plan: Mapping[str, Any], decision: Mapping[str, Any]) -> str:
    params = ", ".join(f"{k}={json.dumps(v)}" for k, v in plan["params"].items()) or "none"
    hosts = plan["hosts"]
    shown = ", ".join(hosts[:20]) + (f" … (+{len(hosts) - 20})" if len(hosts) > 20 else "")
    lines = [
        f"action:   {plan['action']} ({plan['risk']}) — {plan['description']}",
        f"env:      {plan['env']}   inventory hosts: {len(hosts)}"
        + (f"   limit: {plan['limit']}" if plan["limit"] else ""),
        f"hosts:    {shown}",
        f"params:   {params}",
        f"playbook: {plan['playbook']}" + ("   (check mode, diff)" if plan["check_mode"] else ""),
        f"content:  {plan['content_digest'][:23]}…  revision {plan['revision'] or '-'}",
        f"decision: {decision['outcome'].upper()} by {decision['rule']}: {decision['reason']}",
    ]
    lines.extend(f"  - {r['rule']}: {r['outcome']} — {r['reason']}" for r in decision["rules"])
    return "\n".join(lines)


def result_line(result: Mapping[str, Any]) -> str:
    mark = STATUS_MARK.get(result["status"], result["status"])
    line = f"  {mark:<11} {result['host']:<20} {result['task']}"
    if result["status"] in {"failed", "unreachable", "ignored"} and result.get("msg"):
        line += f"\n{'':14}{_one_line(result['msg'])}"
    return line


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def run_summary(run: Mapping[str, Any]) -> str:
    """Per-host summary: task counts, then each host's reports (health, disk, …)."""
    stats: Mapping[str, Mapping[str, int]] = run["stats"]
    rows = []
    for host in run["plan"]["hosts"]:
        s = stats.get(host, {})
        state = ("unreachable" if s.get("dark") else "failed" if s.get("failures")
                 else "ok" if host in stats else "not run")
        rows.append((host, state, str(s.get("ok", 0)), str(s.get("changed", 0)),
                     str(s.get("failures", 0)), str(s.get("skipped", 0))))
    out = [table(rows, ("HOST", "RESULT", "OK", "CHANGED", "FAILED", "SKIPPED"))]
    out.extend(report_text(host, report)
               for host in run["plan"]["hosts"] for report in run["reports"].get(host, []))
    if run["plan"]["check_mode"]:
        diffs = [r for r in run["results"] if r.get("diff")]
        out.append(f"check mode: {len(diffs)} task(s) would change something"
                   + "".join(f"\n  {r['host']}: {r['task']}" for r in diffs))
    status = run["status"].upper()
    out.append(f"run {run['run_id']}: {status} (exit {run['exit_status']})")
    return "\n".join(out)


def report_text(host: str, report: Any) -> str:
    if isinstance(report, Mapping) and report.get("kind") == "health":
        return health_text(host, report)
    if isinstance(report, Mapping) and report.get("kind") == "disk":
        return disk_text(host, report)
    if isinstance(report, Mapping) and report.get("kind") == "service":
        return (f"{host} — service {report['service']} ({report['manager']}): {report['state']}"
                f", pid {report['pid']}" + (f" (was {report['pid_before']})"
                                             if report.get("operation") == "restart" else ""))
    if isinstance(report, Mapping):
        body = "\n".join(f"  {k}: {json.dumps(v) if not isinstance(v, str) else v}"
                         for k, v in report.items() if k != "kind")
        return f"{host} — {report.get('kind', 'report')}\n{body}"
    return f"{host}: {report}"


def health_text(host: str, rep: Mapping[str, Any]) -> str:
    mem = rep.get("memory", {})
    load = rep.get("load", [0, 0, 0])
    lines = [(
        f"{host} ({rep.get('hostname', '?')}) — up {duration(rep.get('uptime_seconds', 0))}, "
        f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {rep.get('cpus', '?')} CPU(s), "
        f"memory {mem.get('used_percent', 0):.0f}% used of {size(mem.get('total_kib', 0))}"
    )]
    lines.extend(mount_lines(rep.get("mounts", [])))
    lines.extend(f"  PROBLEM: {p}" for p in rep.get("problems", []))
    return "\n".join(lines)


def mount_lines(mounts: Iterable[Mapping[str, Any]]) -> list[str]:
    lines = []
    for m in mounts:
        inodes = m.get("inodes_used_percent")
        lines.append(f"  disk {m['mount']:<24} {m['used_percent']:>5.1f}% of {size(m['size_kib']):>7}"
                     f"  ({size(m['avail_kib'])} free"
                     + (f", inodes {inodes:.0f}%)" if inodes is not None else ")"))
    return lines


def disk_text(host: str, rep: Mapping[str, Any]) -> str:
    lines = [f"{host} — disk use", *mount_lines(rep.get("mounts", [])),
             f"  largest under {rep.get('path')}:"]
    lines.extend(f"    {size(e['kib']):>7}  {e['path']}" for e in rep.get("largest", []))
    if int(rep.get("unreadable") or 0):
        lines.append(f"  ({rep['unreadable']} entries could not be read)")
    return "\n".join(lines)


def size(kib: float) -> str:
    value, unit = float(kib), "K"
    for next_unit in ("M", "G", "T", "P"):
        if value < 1024:
            break
        value, unit = value / 1024, next_unit
    return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"


def duration(seconds: float) -> str:
    secs = int(seconds)
    days, rest = divmod(secs, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs % 60}s"


def audit_record(rec: Mapping[str, Any]) -> str:
    data = rec.get("data", {})
    head = f"{rec['seq']:>6} {rec['ts'][:19]}Z {rec['run_id']} {rec['type']:<15} " \
           f"{rec['actor']}@{rec['env']} {rec['action']}"
    detail = ""
    if rec["type"] == "task.result":
        detail = f" {data.get('host')} {data.get('status')}: {data.get('task')}"
    elif rec["type"] == "run.decision":
        dec = data.get("decision", {})
        detail = f" {dec.get('outcome')} ({dec.get('rule')}); approval: " \
                 f"{data.get('approval', {}).get('method')}"
    elif rec["type"] in {"run.finished", "run.interrupted"}:
        detail = f" {data.get('status') or data.get('reason')}"
    elif rec["type"] == "run.requested":
        detail = f" hosts={len(data.get('plan', {}).get('hosts', []))} " \
                 f"params={json.dumps(data.get('plan', {}).get('params', {}))}"
    return head + detail


def error_text(error: AutoopsError) -> str:
    return f"error[{error.code}]: {error.message}\n  remedy: {error.remedy}"


def secrets_init(doc: dict[str, Any]) -> str:
    key = "created" if doc["key_created"] else "uses"
    made = "created" if doc["file_created"] else "kept"
    return (f"{doc['env']}: {key} age key {doc['key']}\n"
            f"  recipient {doc['recipient']} ({doc['fingerprint']})\n"
            f"  sops-rules.yaml rule: inventories/{doc['env']}/**/*.sops.*\n"
            f"  {made} {doc['file']}; edit it with `autoops secrets edit --env {doc['env']}`")


def secrets_rotate(doc: dict[str, Any]) -> str:
    lines = [f"{doc['env']}: new data key for {len(doc['files'])} file(s)"]
    if doc["rekeyed"]:
        lines.append(f"  re-keyed {', '.join(doc['old_recipients'])} -> "
                     f"{', '.join(doc['new_recipients'])}")
    if doc["retired_key"]:
        lines.append(f"  old key moved to {doc['retired_key']}: destroy it once every copy "
                     "of the new key is in place")
    return "\n".join(lines)
