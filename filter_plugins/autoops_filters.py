"""Pure Jinja2 filters for the autoops roles: parsing tool output and choosing what to prune.

Each filter is a plain function with unit tests (tests/unit/test_filters.py); the
FilterModule only registers them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

_SUPERVISOR = re.compile(
    r"^(?P<name>[^\s:]+)\s+(?P<state>[A-Z]+)"
    r"(?:\s+pid (?P<pid>\d+), uptime (?P<uptime>[\d:]+(?: days?,)?\s*[\d:]*))?"
)


class PruneError(ValueError):
    """Raised when a prune would violate its safety rules."""


class WatchJudgeMissingError(RuntimeError):
    """Raised when the watch checks cannot be judged on this controller (no autoops)."""


def autoops_prune_candidates(files: Iterable[Mapping[str, Any]], keep: int) -> list[str]:
    """Paths of backups to delete so that the newest ``keep`` remain.

    Backups are ordered by name (they carry a UTC timestamp), ties broken by mtime.
    ``keep`` below 1 is refused: the newest backup is never a candidate.
    """
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
        raise PruneError(f"keep must be an integer of at least 1, got {keep!r}")
    ordered = sorted(files, key=lambda f: (str(f["path"]).rsplit("/", 1)[-1],
                                           float(f.get("mtime", 0))), reverse=True)
    return [str(f["path"]) for f in ordered[keep:]]


def autoops_supervisor_status(stdout: str) -> dict[str, Any]:
    """Parse one line of ``supervisorctl status NAME``."""
    line = next((ln for ln in stdout.splitlines() if ln.strip()), "")
    match = _SUPERVISOR.match(line.strip())
    if not match:
        return {"state": "UNKNOWN", "pid": None, "running": False, "detail": line.strip()}
    pid = match.group("pid")
    state = match.group("state")
    return {"state": state, "pid": int(pid) if pid else None, "running": state == "RUNNING",
            "detail": line.strip()}


def autoops_supervisor_problem(result: Mapping[str, Any], name: str, config: str) -> str:
    """Why ``supervisorctl status NAME`` could not tell the state, in plain words ("" if it did).

    Given the registered result of that command (run with ``failed_when: false``): a
    new user on a host without supervisord should read "supervisord is not set up",
    not Ansible's "non-zero return code".
    """
    if result.get("rc") in (0, 3):
        return ""
    text = "\n".join(str(result.get(k) or "") for k in ("stdout", "stderr")).strip()
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if not text and "No such file or directory" in str(result.get("msg", "")):
        return "supervisord is not installed on this host (no supervisorctl)"
    if "could not find config file" in text:
        return f"supervisord is not set up on this host: no config file {config}"
    if "no such process" in text or "no such group" in text:
        return f"supervisord has no program {name} (config {config})"
    if "no such file" in text or "refused" in text.lower():
        return f"supervisord is not running on this host ({first[:200]})"
    return f"supervisorctl failed with exit status {result.get('rc')}: {first[:200] or 'no output'}"


def autoops_systemd_show(stdout: str) -> dict[str, Any]:
    """Parse ``systemctl show --property=...`` KEY=VALUE lines into a service state."""
    props = dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)
    pid = int(props.get("MainPID", "0") or 0)
    state = props.get("ActiveState", "unknown")
    return {"state": f"{state}/{props.get('SubState', 'unknown')}", "pid": pid or None,
            "running": state == "active", "detail": props.get("ActiveEnterTimestamp", "")}


def autoops_du_top(stdout: str, top: int, root: str) -> list[dict[str, Any]]:
    """The ``top`` largest entries of ``du -k -d 1 --null ROOT`` output, root excluded.

    Entries end in NUL (``--null``): a directory name may hold a line break, and split
    on lines it would cut the name and could invent an entry. Newline-ended output
    (without ``--null``) is still read.
    """
    entries: list[dict[str, Any]] = []
    records = stdout.split("\0") if "\0" in stdout else stdout.splitlines()
    for line in records:
        line = line.lstrip("\n")  # noqa: PLW2901 - the separator left by a trailing newline
        size, _, path = line.partition("\t")
        if size.strip().isdigit() and path and path.rstrip("/") != root.rstrip("/"):
            entries.append({"path": path, "kib": int(size)})
    entries.sort(key=lambda e: (-e["kib"], e["path"]))
    return entries[:top]


def autoops_new_criticals(after: Mapping[str, Any], before: Mapping[str, Any], env: str,
                          host: str, ignore: Iterable[str] = ("proxy",)) -> list[str]:
    """Critical watch findings in ``after`` that ``before`` did not have, as one line each.

    Both are the ``watch`` role's reports of one host, judged by autoops' own watch checks
    (so a deploy is verified by the same rules as ``autoops watch``). The proxy's error
    share is left out by default: a restart's own 502s and the probe's retries count
    there, and the probe is the deploy's view of the proxy.
    """
    from datetime import UTC, datetime  # noqa: PLC0415  (only when a deploy verifies)

    try:
        from autoops.watch.findings import Severity  # noqa: PLC0415
        from autoops.watch.judge import judge_host  # noqa: PLC0415
    except ImportError as exc:
        raise WatchJudgeMissingError(
            "a deploy's watch checks are judged by autoops, which this controller's Python "
            f"cannot import ({exc}); install autoops here or set the app's watch: false") from exc

    skip = set(ignore)

    def criticals(report: Mapping[str, Any]) -> dict[tuple[str, str], str]:
        if not report:
            return {}
        found = judge_host(env, host, report, datetime.now(UTC)).found
        return {(j.key.check, j.key.subject): j.reading.summary for j in found
                if not j.reading.ok and j.reading.severity is Severity.CRITICAL
                and j.key.check not in skip}

    was = criticals(before)
    return [f"{check} {subject}: {summary}".replace("  ", " ")
            for (check, subject), summary in sorted(criticals(after).items())
            if (check, subject) not in was]


class FilterModule:
    """Register the autoops filters with Ansible."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "autoops_prune_candidates": autoops_prune_candidates,
            "autoops_supervisor_status": autoops_supervisor_status,
            "autoops_supervisor_problem": autoops_supervisor_problem,
            "autoops_systemd_show": autoops_systemd_show,
            "autoops_du_top": autoops_du_top,
            "autoops_new_criticals": autoops_new_criticals,
        }
