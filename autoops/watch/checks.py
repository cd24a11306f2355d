"""The declared checks' verdicts: services, restart loops, proxy errors, heartbeats, TLS, backups.

Each function turns what ``watch_facts`` read for one declaration, and the
declaration's thresholds (inventory vars, validated here: a hostile or mistyped
inventory gets a ``config`` finding, never a crash of the whole watch), into readings.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from autoops.common.durations import format_duration, parse_duration
from autoops.watch import heartbeats, restarts
from autoops.watch.findings import FindingKey, Reading, Severity
from autoops.watch.restarts import Sample

History = Mapping[str, Sequence[Sample]]
"""A host's remembered restart samples, by service name."""


class Verdicts:
    """The readings of one host, collected as the checks are judged."""

    def __init__(self, env: str, host: str, at: datetime) -> None:
        self.env, self.host, self.at = env, host, at
        self.found: list[tuple[FindingKey, Reading]] = []
        self.samples: dict[str, list[Sample]] = {}

    def add(self, check: str, subject: str, ok: bool, severity: Severity, summary: str, *,
            value: float | None = None) -> None:
        self.found.append((FindingKey(self.env, self.host, check, subject),
                           Reading(ok, self.at, severity, summary, value)))

    def misconfigured(self, where: str, why: str) -> None:
        self.add("config", where, False, Severity.WARNING, f"watch declaration {where}: {why}")


def _number(doc: Mapping[str, Any], key: str, default: float, low: float = 0,
            high: float = 1e9) -> float:
    value = doc.get(key, default)
    if value is None:
        value = default
    try:
        number = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        number = float("nan")
    if not low <= number <= high:  # NaN included: not a number at all
        raise ValueError(f"{key} must be a number from {low:g} to {high:g}")
    return number


def _severity(doc: Mapping[str, Any]) -> Severity:
    try:
        return Severity(doc.get("severity") or "critical")
    except ValueError:
        raise ValueError(f"severity {doc.get('severity')!r} is not info, warning or "
                         "critical") from None


def _pairs(declared: Any, read: Any) -> Iterator[tuple[int, Mapping[str, Any], Mapping[str, Any]]]:
    """Each declaration with what the host read for it (the module keeps their order)."""
    wanted = declared if isinstance(declared, list) else []
    got = read if isinstance(read, list) else []
    for index, doc in enumerate(wanted):
        seen = got[index] if index < len(got) and isinstance(got[index], Mapping) else {}
        yield index, doc if isinstance(doc, Mapping) else {}, seen


def services(out: Verdicts, declared: Any, read: Any, history: History) -> None:
    for index, doc, seen in _pairs(declared, read):
        name = str(doc.get("name") or f"#{index}")
        try:
            severity = _severity(doc)
            loop_at = int(_number(doc, "restarts", 3, 1, 1000))
            window = timedelta(minutes=_number(doc, "within_minutes", 15, 1, 1440))
        except ValueError as exc:
            out.misconfigured(f"watch_services[{index}]", str(exc))
            continue
        if not seen.get("known"):
            out.add("service", name, False, severity,
                    str(seen.get("detail") or f"{name} was not read"))
            continue
        manager = seen.get("manager")
        if not seen.get("running"):
            out.add("service", name, False, severity,
                    f"{name} is not running ({manager} says {seen.get('state')})")
        elif seen.get("health") == "unhealthy":
            out.add("service", name, False, severity, f"{name} runs but Docker reports it "
                                                       "unhealthy")
        else:
            out.add("service", name, True, severity, f"{name} runs ({manager})")
        counter = seen.get("restarts")
        marker = seen.get("marker")
        kept, count = restarts.advance(
            history.get(name, ()), out.at, counter if isinstance(counter, int) else None,
            str(marker) if marker is not None else None, window)
        out.samples[name] = kept
        out.add("restarts", name, count < loop_at, severity,
                f"{name} restarted {count} time(s) in the last {format_duration(window)} "
                f"({manager}; a loop at {loop_at})", value=float(count))


def proxy_logs(out: Verdicts, declared: Any, read: Any) -> None:
    for index, doc, seen in _pairs(declared, read):
        path = str(doc.get("path") or f"#{index}")
        try:
            minimum = int(_number(doc, "min_requests", 20, 1))
            warning = _number(doc, "warning_percent", 5, 0, 100)
            critical = _number(doc, "critical_percent", 20, 0, 100)
        except ValueError as exc:
            out.misconfigured(f"watch_proxy_logs[{index}]", str(exc))
            continue
        if seen.get("error"):
            out.add("proxy", path, False, Severity.WARNING, str(seen["error"]))
            continue
        total, errors = int(seen.get("requests") or 0), int(seen.get("server_errors") or 0)
        window = format_duration(timedelta(seconds=float(seen.get("window_seconds") or 300)))
        share = 100.0 * errors / total if total else 0.0
        text = (f"{path}: {errors} of {total} requests in the last {window} were 5xx "
                f"({share:.1f}%, {int(seen.get('bad_gateway') or 0)} of them 502)")
        if not seen.get("complete", True):
            text += "; the log was only read in part"
        if total < minimum:
            out.add("proxy", path, True, Severity.WARNING,
                    f"{text}; fewer than {minimum} requests is never a spike", value=share)
        elif share >= critical:
            out.add("proxy", path, False, Severity.CRITICAL, text, value=share)
        elif share >= warning:
            out.add("proxy", path, False, Severity.WARNING, text, value=share)
        else:
            out.add("proxy", path, True, Severity.WARNING, text, value=share)


def heartbeat_jobs(out: Verdicts, declared: Any, read: Any, host_now: datetime) -> None:
    for index, doc, seen in _pairs(declared, read):
        try:
            job = heartbeats.Job.from_declared(doc)
        except ValueError as exc:
            out.misconfigured(f"watch_heartbeats[{index}]", str(exc))
            continue
        verdict = heartbeats.judge(job, seen, host_now)
        out.add("heartbeat", job.name, verdict.ok, verdict.severity, verdict.summary)


def certificates(out: Verdicts, declared: Any, read: Any, host_now: datetime) -> None:
    for index, doc, seen in _pairs(declared, read):
        endpoint = str(seen.get("endpoint") or f"{doc.get('host')}:{doc.get('port') or 443}")
        try:
            warning = _number(doc, "warning_days", 21, 0, 3650)
            critical = _number(doc, "critical_days", 7, 0, 3650)
        except ValueError as exc:
            out.misconfigured(f"watch_tls_endpoints[{index}]", str(exc))
            continue
        not_after = seen.get("not_after")
        if not isinstance(not_after, (int, float)):
            out.add("tls", endpoint, False, Severity.CRITICAL,
                    f"{endpoint}: {seen.get('error') or 'no certificate read'}")
            continue
        ends = datetime.fromtimestamp(float(not_after), UTC)
        days = (ends - host_now).total_seconds() / 86400
        name = seen.get("server_name") or endpoint
        text = (f"{name} ({endpoint}): the certificate expires {ends:%Y-%m-%d %H:%M} UTC, "
                f"in {days:.1f} days" if days > 0 else
                f"{name} ({endpoint}): the certificate expired {ends:%Y-%m-%d %H:%M} UTC")
        severity = (Severity.CRITICAL if days <= critical else Severity.WARNING)
        out.add("tls", endpoint, days > warning, severity, text, value=days)


def backups(out: Verdicts, declared: Any, read: Any, host_now: datetime) -> None:
    if not isinstance(declared, Mapping) or not declared.get("dir"):
        return
    directory = str(declared["dir"])
    try:
        max_age = parse_duration(str(declared.get("max_age") or "26h"))
    except ValueError as exc:
        out.misconfigured("watch_backups", str(exc))
        return
    seen = read if isinstance(read, Mapping) else {}
    if seen.get("error"):
        out.add("backup", directory, False, Severity.CRITICAL, str(seen["error"]))
        return
    stamp = seen.get("newest_verified_at")
    if not isinstance(stamp, (int, float)):
        skipped = seen.get("unverified_newer") or []
        out.add("backup", directory, False, Severity.CRITICAL,
                f"no verified backup in {directory}" + (f" ({len(skipped)} did not verify: "
                                                        f"{skipped[0]})" if skipped else ""))
        return
    age = host_now - datetime.fromtimestamp(float(stamp), UTC)
    shown = timedelta(minutes=int(age.total_seconds() // 60))  # people read minutes
    text = (f"the newest verified backup in {directory} is {format_duration(shown)} old "
            f"(allowed {format_duration(max_age)})")
    if seen.get("unverified_newer"):
        text += f"; {len(seen['unverified_newer'])} newer did not verify"
    out.add("backup", directory, age <= max_age, Severity.CRITICAL, text,
            value=age.total_seconds())
