"""Human-readable rendering of catalog, plans, run results and audit records.

Pure functions from data to text; the CLI prints what they return. Every value is
shown through :func:`visible`, so data never acts on the terminal: the only control
characters in rendered text are the line breaks the renderer itself puts between lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from autoops.core.catalog import Action
from autoops.errors import AutoopsError

STATUS_MARK = {"ok": "ok", "changed": "changed", "failed": "FAILED", "ignored": "ignored",
               "skipped": "skipped", "unreachable": "UNREACHABLE"}

_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# What, after a backslash, makes one of visible()'s escapes (besides a second backslash).
_ESCAPE_TAIL = re.compile(r"[nrt]|x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}")


def _escape(char: str) -> str:
    code = ord(char)
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _hidden(char: str) -> bool:
    """Whether a character acts on the terminal or hides/reorders text instead of showing.

    ``str.isprintable`` is false for exactly the categories that matter: controls (C0,
    DEL, C1), format characters (bidirectional overrides and isolates, zero-width
    characters, the BOM, tag characters), line and paragraph separators, surrogates,
    private-use and unassigned code points, and every space but U+0020.
    """
    return not char.isprintable()


def visible(text: object) -> str:
    r"""``text`` as one line of inert, printable characters, for the terminal.

    Hidden characters (see :func:`_hidden`) become escapes: ``\n``, ``\r``, ``\t``,
    ``\xHH`` (below U+0100), ``\uHHHH`` or ``\UHHHHHHHH``. So a value can never start a
    line, move the cursor, change colours, set the window title or reorder text.

    A backslash in the data is doubled only where it would otherwise read as the start
    of an escape: before another backslash, before a hidden character, or before ``n``,
    ``r``, ``t``, ``x`` and two hex digits, ``u`` and four, ``U`` and eight. So paths such
    as ``C:\Users\ops`` and patterns such as ``^\d+\.log$`` show as they are, and the
    mapping stays reversible (the tests decode it back): different values never look
    the same. Apply it once, to the value: applied again, it doubles the backslashes of
    its own escapes.
    """
    text = text if isinstance(text, str) else str(text)
    if text.isprintable() and "\\" not in text:
        return text
    out = []
    for i, char in enumerate(text):
        if char != "\\":
            out.append(_escape(char) if _hidden(char) else char)
        else:
            out.append("\\\\" if _reads_as_escape(text, i + 1) else "\\")
    return "".join(out)


def _reads_as_escape(text: str, start: int) -> bool:
    """Whether a backslash before ``text[start:]`` would read as (part of) an escape."""
    after = text[start:start + 1]
    return after == "\\" or (after != "" and _hidden(after)) \
        or _ESCAPE_TAIL.match(text, start) is not None


def terminal_text(text: str) -> str:
    """Rendered text made safe to print: every hidden character but a line break escaped.

    The last line of defence at the terminal. Rendered text has shown each value through
    :func:`visible` already, so this leaves it unchanged; a string that reaches the
    terminal some other way still cannot act on it (though only :func:`visible` keeps
    its backslashes unambiguous).
    """
    if text.isprintable():
        return text
    return "".join(char if char == "\n" or not _hidden(char) else _escape(char) for char in text)


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """Columns aligned; every cell is data, shown through :func:`visible`."""
    cells = [[visible(c) for c in row] for row in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]
    return "\n".join(lines)


def _names(values: Iterable[Any], sep: str = ", ") -> str:
    return sep.join(visible(v) for v in values)


def action_list(actions: Iterable[Mapping[str, Any]]) -> str:
    rows = [(a["name"], a["risk"], ",".join(a["environments"]), a["description"]) for a in actions]
    return table(rows, ("ACTION", "RISK", "ENVIRONMENTS", "DESCRIPTION"))


def action_detail(action: Action, schemas: Mapping[str, Mapping[str, Any]],
                  by_env: Mapping[str, Mapping[str, Any]]) -> str:
    out = [f"{visible(action.name)}: {visible(action.description)}",
           f"  playbook:     {visible(action.playbook)}",
           f"  risk:         {visible(action.risk.name)}",
           f"  environments: {_names(action.environments)}",
           f"  check mode:   {'supported' if action.check_mode else 'not supported'}",
           f"  rollback:     {visible(action.rollback or '-')}"]
    if action.aliases:
        out.append(f"  vm-safe verbs: {_names(action.aliases)}")
    base = schemas.get("*", {})
    props: Mapping[str, Any] = base.get("properties", {})
    out.append("  parameters:" if props else "  parameters:   none")
    required = set(base.get("required", []))
    for name, spec in props.items():
        flags = "required" if name in required else f"default {json.dumps(spec.get('default'))}"
        out.append(f"    {visible(name)} ({visible(spec['type'])}, {flags}): "
                   f"{visible(spec.get('description', ''))}")
        out.extend(f"      {rule}: {_rule_value(spec[rule])}"
                   for rule in ("enum", "pattern", "minimum", "maximum", "maxLength") if rule in spec)
        for env, schema in schemas.items():
            narrowed = schema.get("properties", {}).get(name, {})
            if env != "*" and narrowed != spec:
                changes = {k: v for k, v in narrowed.items() if spec.get(k) != v}
                rules = ", ".join(f"{visible(k)} {_rule_value(v)}" for k, v in changes.items())
                out.append(f"      in {visible(env)}: {rules}")
    out.append("  policy:")
    for env, decision in by_env.items():
        out.append(f"    {visible(env):<12} {visible(decision['outcome']):<18} "
                   f"{visible(decision['rule'])}: {visible(decision['reason'])}")
    return "\n".join(out)


def _rule_value(value: Any) -> str:
    if isinstance(value, list):
        return _names(value)
    return visible(value)


def _params(params: Mapping[str, Any]) -> str:
    # json.dumps escapes every control and non-ASCII character: the values print inert.
    return ", ".join(f"{visible(k)}={json.dumps(v)}" for k, v in params.items()) or "none"


def plan_text(plan: Mapping[str, Any], decision: Mapping[str, Any],
              lock: Mapping[str, Any] | None = None) -> str:
    params = _params(plan["params"])
    hosts = plan["hosts"]
    shown = _names(hosts[:20]) + (f" … (+{len(hosts) - 20})" if len(hosts) > 20 else "")
    lines = [
        (f"action:   {visible(plan['action'])} ({visible(plan['risk'])}) — "
         f"{visible(plan['description'])}"),
        f"env:      {visible(plan['env'])}   inventory hosts: {len(hosts)}"
        + (f"   limit: {visible(plan['limit'])}" if plan["limit"] else ""),
        f"hosts:    {shown}",
        f"params:   {params}",
        *(f"pinned:   {visible(name)} {visible(pin['given'])} is commit {visible(pin['commit'])}"
          for name, pin in (plan.get("pinned") or {}).items()),
        f"playbook: {visible(plan['playbook'])}" + ("   (check mode, diff)" if plan["check_mode"] else ""),
        (f"content:  {visible(plan['content_digest'][:23])}…  "
         f"revision {visible(plan['revision'] or '-')}"),
        (f"decision: {visible(decision['outcome'].upper())} by {visible(decision['rule'])}: "
         f"{visible(decision['reason'])}"),
    ]
    for rule in decision["rules"]:
        lines.append(f"  - {visible(rule['rule'])}: {visible(rule['outcome'])} — "
                     f"{visible(rule['reason'])}")
        if rule["outcome"] != "allowed" and rule.get("satisfy"):
            lines.append(f"      to satisfy: {visible(rule['satisfy'])}")
    if lock is not None:
        lines.append(_lock_line(lock, len(hosts)))
    return "\n".join(lines)


def _lock_line(lock: Mapping[str, Any], hosts: int) -> str:
    if not lock["needed"]:
        return "lock:     none (read-only runs do not lock hosts)"
    held = "; ".join(f"run {visible(h['run_id'])} of {visible(h['actor'])} holds "
                     f"{len(h['hosts'])} of them since {visible(h['acquired'])}"
                     for h in lock["held_by"])
    return (f"lock:     takes {hosts} host(s); "
            + (f"BUSY: {held} (use --wait SECONDS)" if held else "all free now"))


def result_line(result: Mapping[str, Any]) -> str:
    mark = STATUS_MARK.get(result["status"], result["status"])
    line = f"  {visible(mark):<11} {visible(result['host']):<20} {visible(result['task'])}"
    if result["status"] in {"failed", "unreachable", "ignored"} and result.get("msg"):
        line += f"\n{'':14}{_one_line(result['msg'])}"
    return line


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return visible(flat if len(flat) <= limit else flat[: limit - 1] + "…")


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
                   + "".join(f"\n  {visible(r['host'])}: {visible(r['task'])}" for r in diffs))
    status = visible(run["status"].upper())
    where = f" on node {visible(run['node'])}" if run.get("node") else ""
    out.append(f"run {visible(run['run_id'])}: {status} (exit {visible(run['exit_status'])})"
               f"{where}")
    return "\n".join(out)


# What a report of each kind must hold to be shown as that kind (a host's report is data:
# one that only says its kind is shown as plain keys and values).
_REPORT_SHAPES = {"health": {"memory", "mounts"}, "disk": {"path", "mounts"},
                  "service": {"service", "manager", "state", "pid"}}


def report_text(host: str, report: Any) -> str:
    kind = report.get("kind") if isinstance(report, Mapping) else None
    if isinstance(kind, str) and not _REPORT_SHAPES.get(kind, set()) <= set(report):
        kind = None  # a report that does not have its kind's shape
    if kind == "health":
        return health_text(host, report)
    if kind == "disk":
        return disk_text(host, report)
    if kind == "service":
        return (f"{visible(host)} — service {visible(report['service'])} "
                f"({visible(report['manager'])}): {visible(report['state'])}"
                f", pid {visible(report['pid'])}"
                + (f" (was {visible(report.get('pid_before'))})"
                   if report.get("operation") == "restart" else ""))
    if isinstance(report, Mapping):
        body = "\n".join(f"  {visible(k)}: {json.dumps(v) if not isinstance(v, str) else visible(v)}"
                         for k, v in report.items() if k != "kind")
        return f"{visible(host)} — {visible(report.get('kind', 'report'))}\n{body}"
    return f"{visible(host)}: {visible(report)}"


def health_text(host: str, rep: Mapping[str, Any]) -> str:
    mem = rep.get("memory", {})
    load = rep.get("load", [0, 0, 0])
    lines = [(
        f"{visible(host)} ({visible(rep.get('hostname', '?'))}) — "
        f"up {duration(rep.get('uptime_seconds', 0))}, "
        f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {visible(rep.get('cpus', '?'))} CPU(s), "
        f"memory {mem.get('used_percent', 0):.0f}% used of {size(mem.get('total_kib', 0))}"
    )]
    lines.extend(mount_lines(rep.get("mounts", [])))
    lines.extend(f"  PROBLEM: {visible(p)}" for p in rep.get("problems", []))
    return "\n".join(lines)


def mount_lines(mounts: Iterable[Mapping[str, Any]]) -> list[str]:
    lines = []
    for m in mounts:
        inodes = m.get("inodes_used_percent")
        lines.append(f"  disk {visible(m['mount']):<24} {m['used_percent']:>5.1f}% "
                     f"of {size(m['size_kib']):>7}  ({size(m['avail_kib'])} free"
                     + (f", inodes {inodes:.0f}%)" if inodes is not None else ")"))
    return lines


def disk_text(host: str, rep: Mapping[str, Any]) -> str:
    lines = [f"{visible(host)} — disk use", *mount_lines(rep.get("mounts", [])),
             f"  largest under {visible(rep.get('path'))}:"]
    lines.extend(f"    {size(e['kib']):>7}  {visible(e['path'])}" for e in rep.get("largest", []))
    if int(rep.get("unreadable") or 0):
        lines.append(f"  ({visible(rep['unreadable'])} entries could not be read)")
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
    head = f"{visible(rec['seq']):>6} {visible(rec['ts'][:19])}Z {visible(rec['run_id'])} " \
           f"{visible(rec['type']):<15} {visible(rec['actor'])}@{visible(rec['env'])} " \
           f"{visible(rec['action'])}"
    detail = ""
    if rec["type"] == "task.result":
        detail = f" {visible(data.get('host'))} {visible(data.get('status'))}: " \
                 f"{visible(data.get('task'))}"
    elif rec["type"] == "run.decision":
        dec = data.get("decision", {})
        detail = f" {visible(dec.get('outcome'))} ({visible(dec.get('rule'))}); approval: " \
                 f"{visible(data.get('approval', {}).get('method'))}"
    elif rec["type"] in {"run.finished", "run.interrupted"}:
        detail = f" {visible(data.get('status') or data.get('reason'))}"
    elif rec["type"].startswith(("grant.", "approval.", "halt.")):
        keys = ("grant_id", "id", "key_id", "request_id", "scope", "use", "reason")
        detail = " " + " ".join(f"{k}={visible(data[k])}" for k in keys if data.get(k) is not None)
    elif rec["type"] == "run.requested":
        detail = f" hosts={len(data.get('plan', {}).get('hosts', []))} " \
                 f"params={json.dumps(data.get('plan', {}).get('params', {}))}"
    return head + detail


def secret_finding(doc: Mapping[str, Any]) -> str:
    """One ``secrets check`` finding: ``FILE[:LINE]: CODE: MESSAGE``."""
    where = f"{doc['file']}:{doc['line']}" if doc.get("line") else doc["file"]
    return visible(f"{where}: {doc['code']}: {doc['message']}")


def promotion_text(evidence: Mapping[str, Any]) -> str:
    """What the promotion gate sees: the commit, its soak, both environments' health."""
    verdict = "allowed" if evidence["allowed"] else "refused"
    lines = [(f"promote {evidence['app']} {str(evidence['commit'])[:12] or '?'} from "
             f"{evidence['from']} to {evidence['to']}: {verdict}"),
             (f"  verified by run {evidence['deploy_run_id'] or '-'}; soak {evidence['soak']} "
             f"from {evidence['soak_started'] or '-'} to {evidence['soak_ends'] or '-'}"),
             f"  last watch of {evidence['from']}: {evidence['source_last_watch'] or 'never'}"]
    lines += [f"  refused: {reason}" for reason in evidence["refusals"]]
    return "\n".join(visible(line) for line in lines)


def error_text(error: AutoopsError) -> str:
    """The code and message on one line, the remedy on the next (each one line, always)."""
    return (f"error[{visible(error.code)}]: {visible(error.message)}\n"
            f"  remedy: {visible(error.remedy)}")


def secrets_init(doc: dict[str, Any]) -> str:
    key = "created" if doc["key_created"] else "uses"
    made = "created" if doc["file_created"] else "kept"
    env = visible(doc["env"])
    return (f"{env}: {key} age key {visible(doc['key'])}\n"
            f"  recipient {visible(doc['recipient'])} ({visible(doc['fingerprint'])})\n"
            f"  sops-rules.yaml rule: inventories/{env}/**/*.sops.*\n"
            f"  {made} {visible(doc['file'])}; edit it with `autoops secrets edit --env {env}`")


def secrets_rotate(doc: dict[str, Any]) -> str:
    lines = [f"{visible(doc['env'])}: new data key for {len(doc['files'])} file(s)"]
    if doc["rekeyed"]:
        lines.append(f"  re-keyed {_names(doc['old_recipients'])} -> "
                     f"{_names(doc['new_recipients'])}")
    if doc["retired_key"]:
        lines.append(f"  old key moved to {visible(doc['retired_key'])}: destroy it once every "
                     "copy of the new key is in place")
    return "\n".join(lines)


def grant_key(key: Mapping[str, Any]) -> str:
    made = "created" if key["created"] else "kept"
    return (f"{visible(key['env'])}: {made} signing key {visible(key['key_id'])}\n"
            f"  private: {visible(key['private_key'])} (0600; keep it off shared machines)\n"
            f"  public:  {visible(key['public_key'])}" + (" (written: commit it)"
                                                            if key["public_written"] else ""))


def grant_text(grant: Mapping[str, Any]) -> str:
    uses = "unlimited" if grant["uses"] is None else visible(grant["uses"])
    hosts = visible(grant["hosts"]) if grant["hosts"] else f"any host of {visible(grant['env'])}"
    lines = [f"grant {visible(grant['id'])} for {visible(grant['env'])}"
             + (f" — {visible(grant['state'].upper())}" if "state" in grant else ""),
             f"  actions:   {_names(grant['actions'])} (up to {visible(grant['max_risk'])})",
             f"  hosts:     {hosts}",
             "  params:    " + (", ".join(f"{visible(k)} in {{{_names(v, ',')}}}"
                                          for k, v in grant["params"].items()) or "unconstrained"),
             f"  valid:     {visible(grant['issued'])} to {visible(grant['expires'])}",
             f"  uses:      {visible(grant.get('used', 0))} of {uses}",
             f"  issuer:    {visible(grant['issuer'])}"
             + ("   BREAK-GLASS" if grant["break_glass"] else ""),
             f"  reason:    {visible(grant['reason'])}"]
    if grant.get("revoked"):
        lines.append(f"  revoked:   {visible(grant['revoked'])} by {visible(grant['revoked_by'])}: "
                     f"{visible(grant['revoke_reason'])}")
    return "\n".join(lines)


def grant_table(grants: Sequence[Mapping[str, Any]]) -> str:
    # table() shows each cell through visible(): a cell is joined from raw values here.
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


def watch_text(doc: Mapping[str, Any]) -> str:
    """A watch run: what fires now, what this run told people, and where it went."""
    lines = [f"watch {visible(doc['env'])}: {len(doc['hosts'])} host(s), "
             + (f"{len(doc['firing'])} firing" if doc["firing"] else "all well")
             + f" (run {visible(doc['run_id'])})"]
    lines += [f"  {visible(n['notice']):9} {visible(n['severity']):8} {visible(n['host'])}: "
              f"{visible(n['check'])} {visible(n['subject'])}".rstrip() for n in doc["notices"]]
    if not doc["channels"]:
        lines.append("  no notifier configured (README: Watch) — nothing was sent")
    lines += [f"  waiting: {visible(k)}: {visible(v)}" for k, v in doc["waiting"].items()]
    return "\n".join(lines)


def alert_table(alerts: Sequence[Mapping[str, Any]]) -> str:
    rows = [(a["id"], _alert_state(a), a["severity"], a["env"], a["host"],
             a["check"] + (f" {a['subject']}" if a["subject"] else ""), a["summary"] or "-")
            for a in alerts]
    return table(rows, ("ALERT", "STATE", "SEVERITY", "ENV", "HOST", "CHECK", "SUMMARY")
                 ) if rows else "no alerts"


def alert_text(alert: Mapping[str, Any]) -> str:
    head = (f"{visible(alert['id'])}: {visible(_alert_state(alert))} "
            f"{visible(alert['severity'])} — {visible(alert['check'])} "
            f"{visible(alert['subject'])} on {visible(alert['host'])} ({visible(alert['env'])})")
    when = (f"  since:    {visible(alert['since'] or '-')}   last reading: "
            f"{visible(alert['seen'] or '-')}")
    lines = [head, f"  summary:  {visible(alert['summary'] or '-')}", when,
             f"  readings: {visible(alert['history'])} (newest last; x failed)"]
    if alert["acked_by"]:
        lines.append(f"  acknowledged by {visible(alert['acked_by'])}: no repeats until it resolves")
    if alert["silenced_until"]:
        lines.append(f"  silenced until {visible(alert['silenced_until'])}")
    return "\n".join(lines)


def alert_test_text(doc: Mapping[str, Any]) -> str:
    lines = [f"test alerts for {visible(doc['env'])}:"]
    for channel, classes in sorted(doc["sent"].items()):
        lines.append(f"  {visible(channel)}: sent {len(classes)} "
                     f"({visible(', '.join(classes)) or 'none'})")
    return "\n".join(lines)


def _alert_state(alert: Mapping[str, Any]) -> str:
    marks = [m for m, on in (("flapping", alert["flapping"]), ("acked", alert["acked_by"]),
                             ("silenced", alert["silenced_until"])) if on]
    return str(alert["state"]) + (f" ({', '.join(marks)})" if marks else "")


def approval_text(request: Mapping[str, Any]) -> str:
    plan = request["plan"]
    params = _params(plan["params"])
    head = (f"{visible(request['id'])}: {visible(request['state'].upper())} "
            f"by {visible(request['decided_by'])}")
    if request.get("reason"):
        head += f": {visible(request['reason'])}"
    return (f"{head}\n  {visible(plan['action'])} ({visible(plan['risk'])}) in "
            f"{visible(plan['env'])} on {len(plan['hosts'])} host(s): {_names(plan['hosts'][:10])}\n"
            f"  params: {params}\n  requested by {visible(request['requester'])}; plan "
            f"{visible(request['plan_digest'][:23])}…; expires {visible(request['expires'])}")


def _halt_line(halt: Mapping[str, Any], everything: str) -> str:
    scope = everything if halt["scope"] == "*" else visible(halt["scope"])
    return (f"{scope} by {visible(halt['actor'])} since {visible(halt['since'])}: "
            f"{visible(halt['reason'])}")


def halt_text(doc: Mapping[str, Any]) -> str:
    lines = [("HALTED " if doc["engaged"] else "already halted: ")
             + _halt_line(doc["halt"], "every environment")]
    if doc["runs_stopped"]:
        lines.append(f"  stopped: {_names(doc['runs_stopped'])}")
    if doc["runs_still_running"]:
        lines.append(f"  still running (waiting at a prompt or for a lock?): "
                     f"{_names(doc['runs_still_running'])}")
    return "\n".join(lines)


def resume_text(doc: Mapping[str, Any]) -> str:
    lifted = doc["lifted"]
    return (f"lifted the halt of {visible(lifted['scope'])} (engaged by {visible(lifted['actor'])}: "
            f"{visible(lifted['reason'])})"
            + "".join(f"\nstill in force: {visible(h['scope'])} by {visible(h['actor'])}: "
                      f"{visible(h['reason'])}" for h in doc["still_in_force"]))


def status_text(doc: Mapping[str, Any]) -> str:
    lines = [f"HALTED: {_halt_line(halt, 'ALL ENVIRONMENTS')}" for halt in doc["halts"]]
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
        lines.append(f"approval requests pending: {_names(doc['approvals_pending'])}")
    return "\n".join(lines)


def policy_text(envs: Mapping[str, Mapping[str, Any]]) -> str:
    out = []
    for name, env in envs.items():
        origins = env["origins"]

        def src(key: str, origins: Mapping[str, str] = origins) -> str:
            return (f"  ({visible(origins[key])})"
                    if origins.get(key, "environment") != "environment" else "")

        def value(key: str, env: Mapping[str, Any] = env) -> str:
            return visible(env[key]) + src(key)
        win = env["windows"]
        out += [f"{visible(name)}: {visible(env['description'])}",
                f"  unattended up to:     {value('unattended_max_risk')}",
                f"  confirmation up to:   {value('confirm_max_risk')}",
                f"  second person from:   {value('two_person_min_risk')}",
                (f"  typing accepted to:   {value('typed_confirmation_max_risk')} "
                "(above it: a second person instead)"),
                "  approvers:            " + (
                    _names([*env["approvers"]["users"],
                            *(f"group {g}" for g in env["approvers"]["groups"])], ", ")
                    if env["approvers"] else "anyone but the requester") + src("approvers"),
                f"  approvals expire in:  {value('approval_expires_in')}"]
        if win["above"] is None:
            out.append(f"  change windows:       none{src('windows')}")
        else:
            out.append(f"  change windows:       above {visible(win['above'])}, "
                       f"{visible(win['timezone'])}")
            out.extend(f"    {_names(w['days'], ',')} {visible(w['start'])}-{visible(w['end'])}"
                       for w in win["weekly"])
        out.extend(f"  freeze: {visible(f['start'])} to {visible(f['end'])} above "
                   f"{visible(f['above'])}: {visible(f['reason'])}" for f in win["freezes"])
        ttl = env["grants"]["max_expires_in"]
        out.append("  grant lifetime ceilings: "
                   + ", ".join(f"{visible(k)} {visible(v)}" for k, v in ttl.items())
                   + f"; break-glass {visible(env['grants']['break_glass_max_expires_in'])}"
                   + src("grants"))
    return "\n".join(out)


def schedule_text(doc: Mapping[str, Any]) -> str:
    """``schedule install``: each file and whether it changed, what runs, where it logs."""
    state = "written" if doc["changed"] else "unchanged"
    lines = [(f"schedule {visible(doc['action'])} --env {visible(doc['env'])} every "
              f"{visible(doc['every'])} ({visible(doc['kind'])}, as {visible(doc['user'])}): "
              f"{state}")]
    lines += [f"  {visible(path)}: {visible(change)}" for path, change in doc["files"].items()]
    lines += [f"  removed the other kind's {visible(path)}" for path in doc["replaced"]]
    lines.append("  runs: " + " ".join(visible(word) for word in doc["argv"]))
    if doc["log"]:
        lines.append(f"  log: {visible(doc['log'])}")
    if doc["kind"] == "systemd":
        lines.append("  verified with systemd-analyze" if doc["verified"] else
                     "  not verified: systemd-analyze is not installed")
        if doc["activated"]:
            lines.append("  timer enabled and started")
        else:
            lines.append("  timer not enabled: " + (
                "systemd is not running here" if not doc["systemd_running"] else
                "the units are not in /etc/systemd/system"))
    return "\n".join(lines)


def schedule_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """``schedule list``: one line per schedule autoops installed."""
    if not rows:
        return "no schedules installed (`autoops schedule install --env ENV --every 5m`)"
    active = {True: "active", False: "inactive", None: "-"}
    return table([(r["kind"], r["env"], r["action"], r["every"], r["user"],
                   active[r.get("active")], ", ".join(r["paths"])) for r in rows],
                 ("KIND", "ENV", "ACTION", "EVERY", "USER", "TIMER", "PATH"))


def schedule_removed_text(doc: Mapping[str, Any]) -> str:
    """``schedule remove``: what went, and what stays because autoops did not write it."""
    lines = [f"removed {visible(path)}" for path in doc["removed"]] or [
        f"no schedule of {visible(doc['action'])} --env {visible(doc['env'])} to remove"]
    lines += [f"kept {visible(path)}: autoops did not write it" for path in doc["kept"]]
    return "\n".join(lines)


def runbooks_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """``runbooks list``: one line per runbook, in the order they are tried."""
    if not rows:
        return "no runbooks (runbooks/*.yml; README: Runbooks)"
    return table([(r["name"], r["check"], ",".join(r["severity"]), ",".join(r["environments"]),
                   " then ".join(r["steps"]),
                   f"{r['breaker']['attempts']} per {r['breaker']['within']}")
                  for r in rows], ("RUNBOOK", "CHECK", "SEVERITY", "ENV", "STEPS", "BREAKER"))


def replay_text(doc: Mapping[str, Any]) -> str:
    """``runbooks replay``: each recorded finding, and what it would lead to (dry run)."""
    lines = []
    for choice in doc["choices"]:
        head = f"{visible(choice['at'])}  {visible(choice['finding'])}\n  -> {choice['outcome']}"
        if choice["runbook"]:
            head += f" ({visible(choice['runbook'])})"
        if choice["reason"]:
            head += f": {visible(choice['reason'])}"
        lines.append(head)
        lines += [f"     {visible(s['action'])} "
                  + " ".join(f"{visible(k)}={visible(v)}" for k, v in s["params"].items())
                  + (f"  [refused: {visible(s['refused'])}]" if s["refused"] else "")
                  for s in choice["steps"]]
    counts = ", ".join(f"{n} {k}" for k, n in doc["outcomes"].items()) or "no findings"
    lines.append(f"dry run, nothing ran: {counts}")
    return "\n".join(lines)


def heal_text(doc: Mapping[str, Any]) -> str:
    """``heal``: earlier attempts that ended, this run's attempts, and who was told."""
    lines = [f"settled {visible(d['attempt'])} ({visible(d['runbook'])}, {visible(d['finding'])}):"
             f" {d['outcome']}" for d in doc["settled"]]
    for d in doc["attempts"]:
        runs = ", ".join(f"{visible(r['action'])} {visible(r.get('run_id') or r.get('refused'))}"
                         for r in d.get("runs", []))
        line = f"{d['outcome']}: {visible(d['finding'])} by {visible(d['runbook'])}"
        line += f" ({runs})" if runs else ""
        if d.get("reason"):
            line += f" — {visible(d['reason'])}"
        lines.append(line)
    if not lines:
        lines.append(f"heal {visible(doc['env'])}: nothing to heal")
    if doc["escalated"]:
        told = ", ".join(doc["channels"]) or "no notifier (README: Watch)"
        lines.append(f"escalated {len(doc['escalated'])} to a person: {visible(told)}")
    return "\n".join(lines)
