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


def _params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in params.items()) or "none"


def plan_text(plan: Mapping[str, Any], decision: Mapping[str, Any],
              lock: Mapping[str, Any] | None = None) -> str:
    params = _params(plan["params"])
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
    for rule in decision["rules"]:
        lines.append(f"  - {rule['rule']}: {rule['outcome']} — {rule['reason']}")
        if rule["outcome"] != "allowed" and rule.get("satisfy"):
            lines.append(f"      to satisfy: {rule['satisfy']}")
    if lock is not None:
        lines.append(_lock_line(lock, len(hosts)))
    return "\n".join(lines)


def _lock_line(lock: Mapping[str, Any], hosts: int) -> str:
    if not lock["needed"]:
        return "lock:     none (read-only runs do not lock hosts)"
    held = "; ".join(f"run {h['run_id']} of {h['actor']} holds {len(h['hosts'])} of them "
                     f"since {h['acquired']}" for h in lock["held_by"])
    return (f"lock:     takes {hosts} host(s); "
            + (f"BUSY: {held} (use --wait SECONDS)" if held else "all free now"))


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
    elif rec["type"].startswith(("grant.", "approval.", "halt.")):
        keys = ("grant_id", "id", "key_id", "request_id", "scope", "use", "reason")
        detail = " " + " ".join(f"{k}={data[k]}" for k in keys if data.get(k) is not None)
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


def grant_key(key: Mapping[str, Any]) -> str:
    made = "created" if key["created"] else "kept"
    return (f"{key['env']}: {made} signing key {key['key_id']}\n"
            f"  private: {key['private_key']} (0600; keep it off shared machines)\n"
            f"  public:  {key['public_key']}" + (" (written: commit it)"
                                                   if key["public_written"] else ""))


def grant_text(grant: Mapping[str, Any]) -> str:
    uses = "unlimited" if grant["uses"] is None else str(grant["uses"])
    lines = [f"grant {grant['id']} for {grant['env']}"
             + (f" — {grant['state'].upper()}" if "state" in grant else ""),
             f"  actions:   {', '.join(grant['actions'])} (up to {grant['max_risk']})",
             f"  hosts:     {grant['hosts'] or 'any host of ' + grant['env']}",
             "  params:    " + (", ".join(f"{k} in {{{','.join(v)}}}"
                                          for k, v in grant["params"].items()) or "unconstrained"),
             f"  valid:     {grant['issued']} to {grant['expires']}",
             f"  uses:      {grant.get('used', 0)} of {uses}",
             f"  issuer:    {grant['issuer']}" + ("   BREAK-GLASS" if grant["break_glass"] else ""),
             f"  reason:    {grant['reason']}"]
    if grant.get("revoked"):
        lines.append(f"  revoked:   {grant['revoked']} by {grant['revoked_by']}: "
                     f"{grant['revoke_reason']}")
    return "\n".join(lines)


def grant_table(grants: Sequence[Mapping[str, Any]]) -> str:
    rows = [(g["id"], g["env"], g["state"], ",".join(g["actions"]), g["max_risk"], g["expires"],
             f"{g['used']}/{'-' if g['uses'] is None else g['uses']}",
             "yes" if g["break_glass"] else "") for g in grants]
    return table(rows, ("GRANT", "ENV", "STATE", "ACTIONS", "MAX RISK", "EXPIRES", "USED",
                        "BREAK-GLASS")) if rows else "no grants"


def approval_table(requests: Sequence[Mapping[str, Any]]) -> str:
    rows = [(r["id"], r["state"], r["env"], r["action"], r["requester"], r["decided_by"] or "-",
             r["expires"][:19]) for r in requests]
    return table(rows, ("REQUEST", "STATE", "ENV", "ACTION", "REQUESTER", "DECIDED BY",
                        "EXPIRES")) if rows else "no approval requests"


def approval_text(request: Mapping[str, Any]) -> str:
    plan = request["plan"]
    params = _params(plan["params"])
    head = f"{request['id']}: {request['state'].upper()} by {request['decided_by']}"
    if request.get("reason"):
        head += f": {request['reason']}"
    return (f"{head}\n  {plan['action']} ({plan['risk']}) in {plan['env']} on "
            f"{len(plan['hosts'])} host(s): {', '.join(plan['hosts'][:10])}\n"
            f"  params: {params}\n  requested by {request['requester']}; plan "
            f"{request['plan_digest'][:23]}…; expires {request['expires']}")


def halt_text(doc: Mapping[str, Any]) -> str:
    halt = doc["halt"]
    scope = "every environment" if halt["scope"] == "*" else halt["scope"]
    lines = [("HALTED " if doc["engaged"] else "already halted: ")
             + f"{scope} by {halt['actor']} since {halt['since']}: {halt['reason']}"]
    if doc["runs_stopped"]:
        lines.append(f"  stopped: {', '.join(doc['runs_stopped'])}")
    if doc["runs_still_running"]:
        lines.append(f"  still running (waiting at a prompt or for a lock?): "
                     f"{', '.join(doc['runs_still_running'])}")
    return "\n".join(lines)


def resume_text(doc: Mapping[str, Any]) -> str:
    lifted = doc["lifted"]
    return (f"lifted the halt of {lifted['scope']} (engaged by {lifted['actor']}: "
            f"{lifted['reason']})" + "".join(f"\nstill in force: {h['scope']} by {h['actor']}: "
                                             f"{h['reason']}" for h in doc["still_in_force"]))


def status_text(doc: Mapping[str, Any]) -> str:
    lines = []
    for halt in doc["halts"]:
        scope = "ALL ENVIRONMENTS" if halt["scope"] == "*" else halt["scope"]
        lines.append(f"HALTED: {scope} by {halt['actor']} since {halt['since']}: "
                     f"{halt['reason']}")
    if not doc["halts"]:
        lines.append("no emergency stop in force")
    runs = [(r["run_id"], r["env"], r["action"], r["actor"], str(r["pid"]), r["started"][:19])
            for r in doc["runs"]]
    lines.append(table(runs, ("RUN", "ENV", "ACTION", "ACTOR", "PID", "STARTED"))
                 if runs else "no runs in progress")
    held = [(lk["env"], lk["host"], lk["run_id"], lk["actor"]) for lk in doc["locks"]]
    if held:
        lines.append(table(held, ("ENV", "LOCKED HOST", "RUN", "ACTOR")))
    if doc["approvals_pending"]:
        lines.append(f"approval requests pending: {', '.join(doc['approvals_pending'])}")
    return "\n".join(lines)


def policy_text(envs: Mapping[str, Mapping[str, Any]]) -> str:
    out = []
    for name, env in envs.items():
        origins = env["origins"]

        def src(key: str, origins: Mapping[str, str] = origins) -> str:
            return f"  ({origins[key]})" if origins.get(key, "environment") != "environment" else ""
        win = env["windows"]
        out += [f"{name}: {env['description']}",
                f"  unattended up to:     {env['unattended_max_risk']}{src('unattended_max_risk')}",
                f"  confirmation up to:   {env['confirm_max_risk']}{src('confirm_max_risk')}",
                f"  second person from:   {env['two_person_min_risk']}{src('two_person_min_risk')}",
                f"  approvals expire in:  {env['approval_expires_in']}{src('approval_expires_in')}"]
        if win["above"] is None:
            out.append(f"  change windows:       none{src('windows')}")
        else:
            out.append(f"  change windows:       above {win['above']}, {win['timezone']}")
            out.extend(f"    {','.join(w['days'])} {w['start']}-{w['end']}" for w in win["weekly"])
        out.extend(f"  freeze: {f['start']} to {f['end']} above {f['above']}: {f['reason']}"
                   for f in win["freezes"])
        ttl = env["grants"]["max_expires_in"]
        out.append("  grant lifetime ceilings: " + ", ".join(f"{k} {v}" for k, v in ttl.items())
                   + f"; break-glass {env['grants']['break_glass_max_expires_in']}"
                   + src("grants"))
    return "\n".join(out)
