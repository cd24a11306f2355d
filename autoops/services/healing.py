"""``autoops runbooks list|replay``: the self-healing runbooks, and what they would do.

``replay`` feeds recorded findings (JSON lines, oldest first: ``at``, ``env``, ``host``,
``check``, ``subject``, ``severity``, optional ``notice`` and ``groups``) through the
matcher and the circuit breaker in a dry run: nothing runs, nothing is recorded. It is
how a runbook is tried on last month's incidents before it may touch a host.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from autoops.common.durations import format_duration
from autoops.errors import ReplayInvalidError
from autoops.heal import matcher, runbooks
from autoops.heal.runbooks import Runbook
from autoops.services.context import Context

_REQUIRED = ("at", "env", "host", "check", "subject", "severity")


class Healing:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

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
