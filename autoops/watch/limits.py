"""How patient alerting is, per host and per check, from the host's inventory vars.

An operator tunes noise where the hosts are described: ``watch_fail_after`` (failing
readings in a row that fire), ``watch_recover_after`` (good ones that resolve) and
``watch_repeat_every`` (how often what still fires is repeated) for a whole
environment or group, and ``watch_check_limits`` to set them per check — a full disk
may fire at the first reading, a flaky proxy only after five. A value autoops cannot
use keeps the defaults and becomes a ``config`` finding: bad tuning never silences
alerting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from autoops.common.durations import parse_duration
from autoops.watch.findings import Thresholds

_KEYS = ("fail_after", "recover_after", "repeat_every")
CHECKS = frozenset({"reachable", "disk", "inodes", "memory", "load", "service", "restarts",
                    "proxy", "heartbeat", "tls", "backup", "config"})
MAX_REPEAT = timedelta(days=7)


@dataclass(frozen=True)
class Limits:
    """The host's thresholds, its per-check ones, and what was wrong with the vars."""

    default: Thresholds = field(default_factory=Thresholds)
    per_check: Mapping[str, Thresholds] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    def of(self, check: str) -> Thresholds:
        return self.per_check.get(check, self.default)


def parse(alerting: Any) -> Limits:
    """``report["alerting"]`` (the role's vars) into :class:`Limits`; never raises."""
    if not alerting:
        return Limits()
    if not isinstance(alerting, Mapping):
        return Limits(problems=(f"watch alerting vars are not a mapping: {alerting!r:.80}",))
    problems: list[str] = []
    default = _apply(Thresholds(), alerting, "watch", problems)
    per_check: dict[str, Thresholds] = {}
    checks = alerting.get("checks") or {}
    if not isinstance(checks, Mapping):
        problems.append("watch_check_limits is not a mapping of check names")
        checks = {}
    for name, values in checks.items():
        if name not in CHECKS:
            problems.append(f"watch_check_limits names no check {name!r:.40} "
                            f"(one of {', '.join(sorted(CHECKS))})")
            continue
        if not isinstance(values, Mapping):
            problems.append(f"watch_check_limits.{name} is not a mapping")
            continue
        unknown = sorted(set(values) - set(_KEYS))
        if unknown:
            problems.append(f"watch_check_limits.{name} has unknown keys {', '.join(unknown)}")
        per_check[str(name)] = _apply(default, values, f"watch_check_limits.{name}", problems)
    return Limits(default, per_check, tuple(problems))


def _apply(base: Thresholds, values: Mapping[str, Any], where: str,
           problems: list[str]) -> Thresholds:
    out = base
    for key in ("fail_after", "recover_after"):
        raw = values.get(key)
        if raw is None:
            continue
        number = _count(raw)
        if number is None:
            problems.append(f"{where} {key} must be a whole number from 1 to 100, not {raw!r:.40}")
        elif key == "fail_after":
            out = replace(out, fail_after=number)
        else:
            out = replace(out, recover_after=number)
    raw = values.get("repeat_every")
    if raw is not None:
        try:
            every = parse_duration(str(raw))
        except ValueError:
            every = None
        if every is None or not timedelta(minutes=1) <= every <= MAX_REPEAT:
            problems.append(f"{where} repeat_every must be a duration from 1m to 7d, "
                            f"not {raw!r:.40}")
        else:
            out = replace(out, repeat_every=every)
    return out


def _count(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    try:
        number = int(str(raw).strip())
    except ValueError:
        return None
    return number if 1 <= number <= 100 else None
