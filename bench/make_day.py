"""Makes bench/data/day.jsonl and day-truth.json: one recorded day of watch verdicts, and what was real.

bench/alerts.py replays the day through autoops' alerting; this script is how the day
came to be, so that it can be read, changed and made again byte for byte (the seed is
in both files' headers). After changing it, run it and commit both files:

    .venv/bin/python bench/make_day.py [--check]

The day is 288 watch runs (one every 5 minutes) of 20 hosts in four roles. Each run's
line lists only its failing verdicts; every other finding the header lists read fine
in that run, except on a host whose ``reachable`` verdict failed: a host that sent
nothing has no other readings (as ``judge`` treats it). Injected on purpose: one- and
two-run blips, checks that flap for an hour, real incidents of 3 to 30 runs, one that
fails all day, a disk that goes from warning to critical, and outages that hit several
hosts at once. The truth file lists every injected episode; ``incident`` ones (3 or
more failing runs in a row) are what alerting must not miss.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SEED = 20261202
ENV = "production"
START = datetime(2026, 12, 2, tzinfo=UTC)
EVERY = timedelta(minutes=5)
RUNS = 288
DATA = Path(__file__).resolve().parent / "data"
DAY_PATH = DATA / "day.jsonl"
TRUTH_PATH = DATA / "day-truth.json"
REAL_INCIDENT_RUNS = 3
GAP = 6  # fine runs kept between two episodes of one finding, so each stays itself
FLAP_GAP = 24  # ... and after a flap, longer than the flap window remembers

ROLES: dict[str, tuple[int, tuple[tuple[str, str], ...]]] = {
    "web": (5, (("reachable", ""), ("disk", "/"), ("memory", ""), ("load", ""),
                ("service", "caddy"), ("restarts", "caddy"),
                ("proxy", "/var/log/caddy/access.log"), ("tls", "127.0.0.1:443"))),
    "app": (8, (("reachable", ""), ("disk", "/"), ("disk", "/var"), ("memory", ""),
                ("load", ""), ("service", "app"), ("restarts", "app"),
                ("heartbeat", "queue-sweep"))),
    "db": (4, (("reachable", ""), ("disk", "/"), ("disk", "/var/lib/postgresql"),
               ("memory", ""), ("load", ""), ("service", "postgresql"),
               ("restarts", "postgresql"), ("backup", "/var/backups/autoops"))),
    "ops": (3, (("reachable", ""), ("disk", "/"), ("memory", ""), ("load", ""),
                ("service", "cron"), ("heartbeat", "nightly-backup"),
                ("backup", "/var/backups/autoops"))),
}

Key = tuple[str, str, str]  # host, check, subject


@dataclass(frozen=True)
class Episode:
    """Something that happened to one finding: ``pattern`` is one char a run from ``start``.

    ``w`` fails at warning, ``c`` fails at critical, ``.`` reads fine.
    """

    id: str
    kind: str  # blip | flap | incident
    key: Key
    start: int
    pattern: str
    note: str

    def to_dict(self) -> dict[str, Any]:
        host, check, subject = self.key
        return {"id": self.id, "kind": self.kind, "host": host, "check": check,
                "subject": subject, "start": self.start, "runs": len(self.pattern),
                "pattern": self.pattern, "note": self.note}


def fleet() -> list[Key]:
    return [(f"{role}-{n:02d}", check, subject)
            for role, (count, checks) in ROLES.items()
            for n in range(1, count + 1) for check, subject in checks]


class Day:
    """The episodes placed so far, and which runs of which finding they took."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.keys = fleet()
        self.episodes: list[Episode] = []
        self.taken: dict[Key, list[tuple[int, int]]] = {key: [] for key in self.keys}

    def _near(self, key: Key) -> list[Key]:
        """What an episode must keep clear of: its finding, and its host going silent.

        A host that sends nothing stops every reading of it, so its ``reachable``
        episodes keep clear of all the host's findings.
        """
        if key[1] == "reachable":
            return [k for k in self.keys if k[0] == key[0]]
        return [key, (key[0], "reachable", "")]

    def fits(self, key: Key, start: int, length: int, gap: int) -> bool:
        if start < 0 or start + length > RUNS:
            return False
        low, high = start - gap, start + length + gap
        return all(high <= a or b <= low for k in self._near(key) for a, b in self.taken[k])

    def add(self, kind: str, key: Key, start: int, pattern: str, note: str) -> None:
        if not self.fits(key, start, len(pattern), GAP):
            raise ValueError(f"episode {note!r} on {key} at run {start} overlaps another")
        streak = max(len(run) for run in pattern.replace("w", "c").split("."))
        if (kind == "incident") != (streak >= REAL_INCIDENT_RUNS):
            raise ValueError(f"{kind} {note!r} fails {streak} runs in a row")
        self.episodes.append(Episode(f"e{len(self.episodes) + 1:03d}", kind, key, start,
                                     pattern, note))
        tail = FLAP_GAP if kind == "flap" else 0  # a flap is remembered for a while after
        self.taken[key].append((start, start + len(pattern) + tail))

    def somewhere(self, kind: str, checks: tuple[str, ...], pattern: str, note: str,
                  runs: tuple[int, int] = (0, RUNS)) -> None:
        """Place the episode on a random finding of ``checks`` where it fits."""
        candidates = [k for k in self.keys if k[1] in checks]
        for _ in range(10_000):
            key = self.rng.choice(candidates)
            start = self.rng.randrange(runs[0], runs[1] - len(pattern) + 1)
            if self.fits(key, start, len(pattern), FLAP_GAP if kind == "flap" else GAP):
                self.add(kind, key, start, pattern, note)
                return
        raise ValueError(f"no room for {note!r}")


def severity_of(check: str, rng: random.Random) -> str:
    """``w`` or ``c``: what a failing reading of this check usually is."""
    if check in {"disk", "memory", "load"}:
        return rng.choice("wwc")
    if check == "tls":
        return "w"
    return "c"


def build(rng: random.Random) -> Day:
    day = Day(rng)
    # A backup job broken since yesterday: fails every run, all day.
    day.add("incident", ("db-03", "backup", "/var/backups/autoops"), 0, "c" * RUNS,
            "backups broken all day")
    # The app on app-03 crash-loops, then stays down: every web host's proxy sees 5xx.
    t = rng.randrange(130, 160)
    day.add("incident", ("app-03", "restarts", "app"), t - 2, "cccc", "app crash loop")
    day.add("incident", ("app-03", "service", "app"), t, "c" * 10, "app down")
    for n in range(1, 6):
        day.add("incident", (f"web-{n:02d}", "proxy", "/var/log/caddy/access.log"),
                t + rng.randrange(2), "c" * rng.randrange(7, 10), "5xx while app-03 is down")
    # Postgres on db-01 goes down at night; the queue sweeps of four app hosts fail with it.
    t = rng.randrange(20, 60)
    day.add("incident", ("db-01", "service", "postgresql"), t, "c" * 6, "postgres down")
    for n in range(1, 5):
        day.add("incident", (f"app-{n:02d}", "heartbeat", "queue-sweep"), t + 1, "c" * 12,
                "queue sweep failed while postgres was down")
    # A disk fills: warning for 50 minutes, critical for 40, then cleaned.
    day.add("incident", ("app-05", "disk", "/var"), rng.randrange(200, 230), "w" * 10 + "c" * 8,
            "/var fills up")
    # A certificate near its end for 2.5 hours, until renewed.
    day.add("incident", ("web-03", "tls", "127.0.0.1:443"), rng.randrange(60, 100), "w" * 30,
            "certificate renewed late")
    # A host that is gone for 20 minutes, and one that reboots in 10.
    day.add("incident", ("db-04", "reachable", ""), rng.randrange(240, 260), "cccc",
            "db-04 unreachable")
    day.add("blip", ("app-07", "reachable", ""), rng.randrange(100, 120), "cc", "app-07 reboots")
    for length in (3, 3, 3, 4, 5, 6, 8, 12, 16, 20, 24):
        check = rng.choice(("disk", "memory", "load", "service", "restarts", "proxy",
                            "heartbeat", "backup"))
        day.somewhere("incident", (check,), severity_of(check, rng) * length,
                      f"{check} incident of {length} runs")
    flaps = (("load", "w.w.w.w.w.w."), ("proxy", "c.c.c.c.c.c."), ("memory", "ww.w.ww.w.w."),
             ("restarts", "c.c.c.c.c.c."), ("proxy", "cc.cc.cc.cc."), ("load", ".w.w.ww.w.w."))
    for check, pattern in flaps:
        day.somewhere("flap", (check,), pattern, f"{check} flaps for an hour", (12, RUNS - 40))
    blip_checks = ("reachable", "disk", "memory", "load", "load", "memory", "proxy", "proxy",
                   "restarts", "service", "heartbeat", "tls")
    for length, count in ((1, 60), (2, 30)):
        for _ in range(count):
            check = rng.choice(blip_checks)
            day.somewhere("blip", (check,), severity_of(check, rng) * length,
                          f"{check} blip of {length} run(s)")
    day.episodes.sort(key=lambda e: (e.start, e.key))
    return day


def summary(key: Key, char: str, rng: random.Random) -> str:
    """One line for people, as the real checks word it."""
    host, check, subject = key
    critical = char == "c"
    if check == "reachable":
        return "no reading: the host was unreachable or the check failed"
    if check == "disk":
        used = rng.uniform(95, 99.5) if critical else rng.uniform(85, 95)
        return f"{subject} is {used:.1f}% full (warning at 85, critical at 95)"
    if check == "memory":
        used = rng.uniform(97, 99.5) if critical else rng.uniform(90, 97)
        return f"memory is {used:.1f}% used (warning at 90, critical at 97)"
    if check == "load":
        load = rng.uniform(4, 7) if critical else rng.uniform(2, 4)
        return f"5-minute load is {load:.2f} per CPU (warning at 2, critical at 4)"
    if check == "service":
        return f"{subject} is not running (systemd says failed/failed)"
    if check == "restarts":
        return f"{subject} restarted {rng.randrange(5, 12)} time(s) in the last 15m (systemd; " \
               "a loop at 5)"
    if check == "proxy":
        total = rng.randrange(80, 400)
        bad = int(total * (rng.uniform(0.2, 0.6) if critical else rng.uniform(0.05, 0.2)))
        return f"{subject}: {bad} of {total} requests in the last 5m were 5xx " \
               f"({100 * bad / total:.1f}%, {bad * 9 // 10} of them 502)"
    if check == "heartbeat":
        return f"{subject} failed its last run (exit status 1)"
    if check == "tls":
        return f"{host} ({subject}): the certificate expires in {rng.uniform(7.1, 21):.1f} days"
    return f"the newest verified backup in {subject} is 1d{rng.randrange(3, 23)}h old " \
           "(allowed 1d2h)"


def render(day: Day) -> tuple[str, str]:
    """The day's JSON lines and the truth document, as committed."""
    rng = day.rng
    failing: list[list[dict[str, Any]]] = [[] for _ in range(RUNS)]
    for episode in day.episodes:
        host, check, subject = episode.key
        for offset, char in enumerate(episode.pattern):
            if char != ".":
                failing[episode.start + offset].append({
                    "host": host, "check": check, "subject": subject,
                    "severity": "critical" if char == "c" else "warning", "ok": False,
                    "summary": summary(episode.key, char, rng)})
    header = {"kind": "header", "generator": "bench/make_day.py", "seed": SEED, "env": ENV,
              "start": START.isoformat(), "every_minutes": EVERY.seconds // 60, "runs": RUNS,
              "rule": "each run lists its failing verdicts; every other finding read fine, "
                      "but a host whose reachable verdict failed sent nothing else",
              "findings": [{"host": h, "check": c, "subject": s} for h, c, s in day.keys]}
    lines = [json.dumps(header)]
    for index, verdicts in enumerate(failing):
        verdicts.sort(key=lambda v: (v["host"], v["check"], v["subject"]))
        lines.append(json.dumps({"run": index, "at": (START + index * EVERY).isoformat(),
                                 "verdicts": verdicts}))
    truth = {"generator": "bench/make_day.py", "seed": SEED, "runs": RUNS,
             "every_minutes": EVERY.seconds // 60, "real_incident_runs": REAL_INCIDENT_RUNS,
             "episodes": [e.to_dict() for e in day.episodes]}
    return "\n".join(lines) + "\n", json.dumps(truth, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true",
                        help="only say whether the committed files are what this makes")
    args = parser.parse_args(argv)
    day_text, truth_text = render(build(random.Random(SEED)))  # noqa: S311 - a fixed seed, on purpose
    if args.check:
        same = DAY_PATH.read_text() == day_text and TRUTH_PATH.read_text() == truth_text
        print("up to date" if same else "stale: run bench/make_day.py and commit both files")
        return 0 if same else 1
    DATA.mkdir(exist_ok=True)
    DAY_PATH.write_text(day_text)
    TRUTH_PATH.write_text(truth_text)
    print(f"wrote {DAY_PATH.relative_to(DATA.parent.parent)} and "
          f"{TRUTH_PATH.relative_to(DATA.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
