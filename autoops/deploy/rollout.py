"""What a deploy run's host reports say: which host failed which check, what was returned."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from autoops.errors import DeployRolledBackError


@dataclass(frozen=True)
class Returned:
    host: str
    commit: str  # what the host runs now
    rolled_back: bool
    problem: str = ""  # why it was not returned (a migration, a release gone, …)


@dataclass(frozen=True)
class Rollout:
    """A stopped rollout: the host that failed, its check and output, and what went back."""

    app: str
    attempted: str
    failed_host: str
    failed_check: str
    output: str
    returned: tuple[Returned, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"app": self.app, "attempted": self.attempted, "failed_host": self.failed_host,
                "failed_check": self.failed_check, "output": self.output,
                "returned": [r.__dict__ for r in self.returned]}

    def error(self, run_id: str, hosts: Iterable[str] = ()) -> DeployRolledBackError:
        """The run's error; ``hosts`` are the plan's, those not returned never changed."""
        back = [f"{r.host} to {r.commit[:12]}" for r in self.returned if r.rolled_back]
        stuck = [f"{r.host} ({r.problem})" for r in self.returned if not r.rolled_back]
        spared = sorted(set(hosts) - {r.host for r in self.returned})
        text = (f"run {run_id}: deploy of {self.app} {self.attempted[:12]} rolled back: "
                f"{self.failed_host} failed {self.failed_check!r}: {self.output}; "
                f"returned {', '.join(back) or 'nothing'}")
        if stuck:
            text += f"; NOT returned: {'; '.join(stuck)}"
        if spared:
            text += f"; never changed: {', '.join(spared)}"
        return DeployRolledBackError(text, details={"run_id": run_id, "rollout": self.to_dict(),
                                                     "untouched": spared})


def reports(results: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The newest deploy report of each host of a deploy or rollback run, by host."""
    newest: dict[str, Mapping[str, Any]] = {}
    for result in results:
        report = result.get("report")
        if isinstance(report, Mapping) and report.get("kind") == "deploy":
            newest[str(result.get("host"))] = report
    return newest


def stopped(results: Iterable[Mapping[str, Any]]) -> Rollout | None:
    """The rollout a deploy run's results describe as stopped, or None when it was not.

    Every host the second play of ``playbooks/deploy.yml`` returned publishes a deploy
    report with ``rolled_back`` last; the one with ``failed_here`` is where verification
    failed.
    """
    last = {h: r for h, r in sorted(reports(results).items()) if "rolled_back" in r}
    if not last:
        return None
    failed = next(((h, r) for h, r in last.items() if _yes(r.get("failed_here"))), None)
    host, report = failed or next(iter(last.items()))
    return Rollout(
        app=str(report.get("app", "")), attempted=str(report.get("attempted", "")),
        failed_host=host if failed else "",
        failed_check=str(report.get("failed_check") or "unknown"),
        output=" ".join(str(report.get("failed_msg") or "").split())[:600],
        returned=tuple(Returned(h, str(r.get("revision", "")), _yes(r.get("rolled_back")),
                                " ".join(str(r.get("not_returned") or "").split())[:300])
                       for h, r in last.items()))


def _yes(value: Any) -> bool:
    """Ansible facts come back as booleans or as their strings."""
    return value is True or str(value).lower() == "true"
