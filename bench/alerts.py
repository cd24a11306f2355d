"""Benchmark: a recorded day of watch verdicts, blips and flaps included, through autoops' alerting.

How much noise does the finding state machine take out, and what does it cost in
delay? The day (bench/data/day.jsonl, made by bench/make_day.py; what really happened
is in day-truth.json next to it) is replayed run by run through the real
``Alerts.observe`` over a state.db in a temporary directory, with a clock that moves 5
minutes a run, and each run's notices are grouped as a watch run groups them
(``notify.messages.group``). It counts the raw failing readings, the notices and the
messages people would get, and for every real incident (3 or more failing runs in a
row) how long it took to fire. Two naive alerters run on the same day for context:
one alert per failing reading, and one per change between failing and fine. Fine
readings of findings settled for 20 runs cannot say anything and are not stepped,
which keeps the replay to seconds (``--every-reading`` steps them too: same figures).

Goals: at least 10x fewer messages than raw failing readings, and no real incident
missed. Exit 0 when both hold, 1 when not, 2 when the day and its truth disagree.

    .venv/bin/python bench/alerts.py [--json] [--day PATH] [--fail-after N] [--recover-after N]
                                     [--every-reading]
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from autoops.notify.messages import Item, Message, group
from autoops.services.alerting import Alerts
from autoops.services.context import Context
from autoops.settings import Settings
from autoops.watch.findings import FindingKey, Notice, Reading, Severity, Thresholds

REPO = Path(__file__).resolve().parent.parent
DAY = REPO / "bench" / "data" / "day.jsonl"
GOAL_RATIO = 10.0
PROBLEMS = frozenset({Notice.FIRING, Notice.REPEAT, Notice.FLAPPING})


@dataclass(frozen=True)
class Day:
    """The recorded day: the fleet's findings and, per run, its failing readings."""

    env: str
    start: datetime
    every: timedelta
    findings: tuple[FindingKey, ...]
    failing: tuple[dict[FindingKey, Reading], ...]

    def at(self, run: int) -> datetime:
        return self.start + run * self.every

    def only(self, hosts: set[str]) -> Day:
        """The same day seen on ``hosts`` alone (a smaller replay, for the tests)."""
        return Day(self.env, self.start, self.every,
                   tuple(k for k in self.findings if k.host in hosts),
                   tuple({k: r for k, r in run.items() if k.host in hosts} for run in self.failing))

    def readings(self, run: int) -> Iterator[tuple[FindingKey, Reading]]:
        """Every reading of ``run`` as judge gives it: a silent host has only ``reachable``."""
        failing = self.failing[run]
        silent = {key.host for key in failing if key.check == "reachable"}
        for key in self.findings:
            if key.host in silent and key.check != "reachable":
                continue
            yield key, failing.get(key) or Reading(ok=True, at=self.at(run))


@dataclass(frozen=True)
class Incident:
    """A real incident: ``runs`` failing readings in a row of one finding from ``start``."""

    id: str
    key: FindingKey
    start: int
    runs: int
    note: str

    @property
    def end(self) -> int:
        """The last failing run."""
        return self.start + self.runs - 1


@dataclass
class Outcome:
    """What one alerter said about the day."""

    name: str
    notices: list[tuple[int, FindingKey, Notice]] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)

    def problems(self) -> list[tuple[int, FindingKey, Notice]]:
        return [n for n in self.notices if n[2] in PROBLEMS]


def load_day(path: Path) -> Day:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    header, runs = lines[0], lines[1:]
    if header.get("kind") != "header" or len(runs) != header["runs"]:
        raise ValueError(f"{path}: a header line, then {header.get('runs')} runs, expected")
    env = str(header["env"])
    findings = tuple(FindingKey(env, f["host"], f["check"], f["subject"])
                     for f in header["findings"])
    known = set(findings)
    start = datetime.fromisoformat(header["start"])
    every = timedelta(minutes=int(header["every_minutes"]))
    failing: list[dict[FindingKey, Reading]] = []
    for index, run in enumerate(runs):
        if run["run"] != index or datetime.fromisoformat(run["at"]) != start + index * every:
            raise ValueError(f"{path}: run {index} is out of order")
        found: dict[FindingKey, Reading] = {}
        for v in run["verdicts"]:
            key = FindingKey(env, v["host"], v["check"], v["subject"])
            if key not in known or v["ok"]:
                raise ValueError(f"{path}: run {index}: {key} is not a failing fleet finding")
            found[key] = Reading(ok=False, at=start + index * every,
                                 severity=Severity(v["severity"]), summary=v["summary"])
        failing.append(found)
    return Day(env, start, every, findings, tuple(failing))


def load_truth(path: Path, day: Day) -> list[Incident]:
    """The real incidents; a day whose failing streaks say otherwise is refused."""
    doc = json.loads(path.read_text())
    least = int(doc["real_incident_runs"])
    incidents = [Incident(e["id"], FindingKey(day.env, e["host"], e["check"], e["subject"]),
                          int(e["start"]), int(e["runs"]), e["note"])
                 for e in doc["episodes"] if e["kind"] == "incident"]
    told = {(i.key, i.start, i.runs) for i in incidents}
    seen = {streak for streak in streaks(day) if streak[2] >= least}
    if told != seen:
        wrong = sorted(told ^ seen, key=lambda s: (s[1], s[0].host, s[0].check))[:3]
        raise ValueError(f"{path} and the day disagree on the incidents of {least}+ runs, "
                         f"e.g. {[(k.host, k.check, k.subject, s, n) for k, s, n in wrong]}")
    return incidents


def streaks(day: Day) -> Iterator[tuple[FindingKey, int, int]]:
    """Each finding's failing runs in a row: (finding, first run, how many)."""
    for key in day.findings:
        began = None
        for run in range(len(day.failing) + 1):
            failing = run < len(day.failing) and key in day.failing[run]
            if failing and began is None:
                began = run
            elif not failing and began is not None:
                yield key, began, run - began
                began = None


class Clock:
    """The watch run's "now": 5 minutes later each run."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def replay(day: Day, limits: Thresholds, *, every_reading: bool = False) -> tuple[Outcome, int]:
    """The day through the real Alerts over a fresh state.db; the outcome and readings stepped.

    A finding fine for its last ``flap_window`` readings (and ``recover_after``) is
    settled: ok, resolved, not flapping, its history all fine. A fine reading then
    changes only its count of good readings and when it was last seen, which no later
    step reads, so it cannot make or change a notice. Those are not stepped (the day
    is mostly them, and each step is a state.db transaction); ``every_reading`` steps
    them too, with the same notices (the tests compare both).
    """
    clock = Clock(day.start)
    shm = Path("/dev/shm")  # noqa: S108 - a tmpfs, where there is one: each step commits
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    settled = max(limits.flap_window, limits.recover_after)
    fine: Counter[FindingKey] = Counter()  # fine readings in a row, stepped or not
    out = Outcome("autoops")
    stepped = 0
    with tempfile.TemporaryDirectory(prefix="autoops-bench-alerts-", dir=base) as tmp:
        root = Path(tmp)
        settings = Settings(project_dir=REPO, state_dir=root / "state", os_user=getpass.getuser(),
                            python=Path(sys.executable), search_path=os.defpath,
                            cache_dir=root / "cache", config_dir=root / "config")
        alerts = Alerts(Context(settings, clock))
        for run in range(len(day.failing)):
            clock.now = day.at(run)
            items = []
            for key, reading in day.readings(run):
                fine[key] = fine[key] + 1 if reading.ok else 0
                if fine[key] > settled and not every_reading:
                    continue
                stepped += 1
                step = alerts.observe(key, reading, limits)
                if step.notice is not None:  # the item as autoops watch makes it
                    out.notices.append((run, key, step.notice))
                    items.append(Item(key.id, key.env, key.host, key.check, key.subject,
                                      step.finding.severity, step.notice, step.finding.summary,
                                      step.finding.since))
            out.messages += group(f"bench-{run:03d}", day.env, clock.now, items)
    return out, stepped


def naive(day: Day, on_change: bool) -> Outcome:
    """One alert per failing reading, or (``on_change``) per flip between failing and fine.

    Its notices are grouped per run like autoops' own, so the difference is the state machine.
    """
    out = Outcome("naive: on change" if on_change else "naive: every failing reading")
    failing_before: set[FindingKey] = set()
    for run in range(len(day.failing)):
        items = []
        for key, reading in day.readings(run):
            was = key in failing_before
            notice = None
            if not reading.ok and (not on_change or not was):
                notice = Notice.FIRING
            elif reading.ok and was and on_change:
                notice = Notice.RESOLVED
            (failing_before.discard if reading.ok else failing_before.add)(key)
            if notice is not None:
                out.notices.append((run, key, notice))
                items.append(Item(key.id, key.env, key.host, key.check, key.subject,
                                  reading.severity, notice, reading.summary, reading.at))
        out.messages += group(f"naive-{run:03d}", day.env, day.at(run), items)
    return out


def score(out: Outcome, day: Day, incidents: list[Incident], raw: int) -> dict[str, Any]:
    """Messages, the ratio to raw failures, noise, and per incident when it was first said."""
    minutes = day.every.total_seconds() / 60
    real = {(i.key, run) for i in incidents for run in range(i.start, i.end + 1)}
    firing = [(run, key) for run, key, notice in out.notices if notice is Notice.FIRING]
    per: list[dict[str, Any]] = []
    for incident in incidents:
        said = [run for run, key in firing
                if key == incident.key and incident.start <= run <= incident.end]
        resolved = [run for run, key, notice in out.notices
                    if key == incident.key and notice is Notice.RESOLVED and run > incident.end]
        per.append({"id": incident.id, "host": incident.key.host, "check": incident.key.check,
                    "subject": incident.key.subject, "start": incident.start,
                    "runs": incident.runs, "note": incident.note, "firing": len(said),
                    "delay_runs": said[0] - incident.start if said else None,
                    "delay_minutes": (said[0] - incident.start) * minutes if said else None,
                    "resolved_run": resolved[0] if resolved else None})
    delays = [p["delay_runs"] for p in per if p["delay_runs"] is not None]
    kinds = Counter(notice.value for _, _, notice in out.notices)
    messages = len(out.messages)
    return {
        "alerter": out.name, "notices": len(out.notices), "by_notice": dict(sorted(kinds.items())),
        "messages": messages,
        "problem_messages": sum(m.kind == "problems" for m in out.messages),
        "recovery_messages": sum(m.kind == "recoveries" for m in out.messages),
        "ratio": round(raw / messages, 1) if messages else None,
        "missed": sum(p["delay_runs"] is None for p in per),
        "noise": sum((key, run) not in real for run, key, notice in out.problems()
                     if notice is not Notice.FLAPPING),
        "flapping": kinds.get(Notice.FLAPPING.value, 0),
        "delay_runs_median": statistics.median(delays) if delays else None,
        "delay_runs_max": max(delays) if delays else None,
        "delay_minutes_median": statistics.median(delays) * minutes if delays else None,
        "delay_minutes_max": max(delays) * minutes if delays else None,
        "incidents": per,
    }


def report(doc: dict[str, Any]) -> None:
    """The table people read; ``--json`` prints the same as one line."""
    limits = doc["limits"]
    print(f"alerts: {doc['day']}: {doc['runs']} watch runs every {doc['every_minutes']:g} min, "
          f"{doc['hosts']} hosts, {doc['findings']} findings, {doc['readings']} readings")
    print(f"replay: {doc['stepped']} readings stepped through Alerts and state.db in "
          f"{doc['seconds']:.1f}s (the others: fine readings of settled findings)")
    print(f"thresholds: fail after {limits['fail_after']}, recover after "
          f"{limits['recover_after']}, repeat every {limits['repeat_every_hours']:g}h, flapping at "
          f"{limits['flap_changes']} changes in {limits['flap_window']}")
    print(f"raw failing readings: {doc['raw_failures']}; real incidents (3+ runs): "
          f"{len(doc['autoops']['incidents'])}\n")
    print(f"{'alerter':<30}{'notices':>8}{'messages':>9}{'ratio':>8}{'missed':>7}{'noise':>7}"
          f"{'flapping':>9}  first alert (median / max)")
    for row in (doc["autoops"], *doc["naive"]):
        delay = (f"{row['delay_minutes_median']:g} / {row['delay_minutes_max']:g} min"
                 if row["delay_runs_max"] is not None else "-")
        ratio = f"{row['ratio']:.1f}x" if row["ratio"] is not None else "-"
        print(f"{row['alerter']:<30}{row['notices']:>8}{row['messages']:>9}{ratio:>8}"
              f"{row['missed']:>7}{row['noise']:>7}{row['flapping']:>9}  {delay}")
    kinds = ", ".join(f"{n} {k}" for k, n in doc["autoops"]["by_notice"].items())
    print(f"autoops notices: {kinds}; messages: {doc['autoops']['problem_messages']} problems, "
          f"{doc['autoops']['recovery_messages']} recoveries")
    print("(noise: problem notices outside any real incident, flapping ones not counted; "
          "messages: each alerter's notices grouped per run)\n")
    print(f"{'incident':<10}{'finding':<44}{'from':>6}{'runs':>5}{'first alert':>13}"
          f"{'firing':>7}{'resolved':>10}")
    every = doc["every_minutes"]
    for p in doc["autoops"]["incidents"]:
        what = f"{p['host']} {p['check']} {p['subject']}".strip()
        began = (datetime.fromisoformat(doc["start"]) + timedelta(minutes=p["start"] * every))
        first = f"+{p['delay_minutes']:g} min" if p["delay_runs"] is not None else "MISSED"
        after = p["resolved_run"] - (p["start"] + p["runs"] - 1) if p["resolved_run"] is not None \
            else None
        resolved = f"+{after * every:g} min" if after is not None else "-"
        print(f"{p['id']:<10}{what:<44} {began:%H:%M}{p['runs']:>5}{first:>13}{p['firing']:>7}"
              f"{resolved:>10}")
    print("(first alert: after the first failing reading; resolved: after the last one)")
    goals, ratio = doc["goals"], doc["autoops"]["ratio"]
    print(f"\ngoal: >= {goals['ratio_goal']:g}x fewer messages than raw failures: "
          f"{'no message' if ratio is None else f'{ratio}x'} "
          f"{'ok' if goals['ratio_met'] else 'NOT MET'}; "
          f"no real incident missed: {doc['autoops']['missed']} missed "
          f"{'ok' if goals['missed_met'] else 'NOT MET'}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Replay a recorded day through autoops' alerting.")
    parser.add_argument("--day", type=Path, default=DAY,
                        help="the day's JSON lines; its truth is NAME-truth.json beside it")
    parser.add_argument("--json", action="store_true", help="one JSON line instead of the table")
    parser.add_argument("--fail-after", type=int, default=Thresholds().fail_after)
    parser.add_argument("--recover-after", type=int, default=Thresholds().recover_after)
    parser.add_argument("--every-reading", action="store_true",
                        help="step settled findings' fine readings too (same result, slower)")
    args = parser.parse_args(argv)
    try:
        limits = Thresholds(fail_after=args.fail_after, recover_after=args.recover_after)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        day = load_day(args.day)
        incidents = load_truth(args.day.with_name(f"{args.day.stem}-truth.json"), day)
    except ValueError as exc:
        print(f"bench/alerts.py: {exc}", file=sys.stderr)
        return 2
    began = time.perf_counter()
    autoops, stepped = replay(day, limits, every_reading=args.every_reading)
    seconds = time.perf_counter() - began
    raw = sum(len(run) for run in day.failing)
    ours = score(autoops, day, incidents, raw)
    ratio_met = ours["ratio"] is None or ours["ratio"] >= GOAL_RATIO
    doc: dict[str, Any] = {
        "day": str(args.day.relative_to(REPO) if args.day.is_relative_to(REPO) else args.day),
        "start": day.start.isoformat(), "runs": len(day.failing),
        "every_minutes": day.every.total_seconds() / 60,
        "hosts": len({k.host for k in day.findings}), "findings": len(day.findings),
        "readings": sum(1 for run in range(len(day.failing)) for _ in day.readings(run)),
        "stepped": stepped, "seconds": round(seconds, 2), "raw_failures": raw,
        "limits": {"fail_after": limits.fail_after, "recover_after": limits.recover_after,
                   "repeat_every_hours": limits.repeat_every.total_seconds() / 3600,
                   "flap_window": limits.flap_window, "flap_changes": limits.flap_changes},
        "autoops": ours,
        "naive": [{k: v for k, v in score(naive(day, change), day, incidents, raw).items()
                   if k != "incidents"} for change in (False, True)],
        "goals": {"ratio_goal": GOAL_RATIO, "ratio_met": ratio_met,
                  "missed_met": ours["missed"] == 0, "met": ratio_met and ours["missed"] == 0},
    }
    if args.json:
        print(json.dumps(doc, sort_keys=True))
    else:
        report(doc)
    return 0 if doc["goals"]["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
