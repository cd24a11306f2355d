"""Benchmark: the audit log at scale — appends, verify, query, tail — each next to its goal.

Builds a log of N records (default 1,000,000: task results of 5-host runs, each run's
results appended as one batch, a durable run.* record around them, as autoops writes
them), rotating into segments, then measures in this one process:

- append throughput, non-durable records one at a time and in batches of a run's events;
- ``verify`` of the whole log: wall time and the peak RSS of a fresh process doing it;
- ``query --run ID`` and ``tail`` through the index, and the same query without it
  (a full scan: what every query cost before the index);
- ``reindex`` from the segments.

Not a test: nothing here asserts a time. ``.venv/bin/python bench/audit_log.py [--records N]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autoops.audit.log import AuditLog, Entry, Query
from autoops.state.db import StateDB

TASK = {"host": "web1", "task": "Read uptime, load, memory and disks",
        "module": "autoops.ops.health_facts", "status": "ok", "changed": False, "msg": None,
        "rc": None, "duration": 0.512, "report": {"kind": "health", "hostname": "web1",
                                                  "load": [0.12, 0.2, 0.3], "disk": {"/": 24.1}}}
GOALS = {"append_one": 50_000, "append_batch": 50_000, "verify_s": 5.0, "verify_rss_mb": 100,
         "query_s": 0.05}


def fill(log: AuditLog, count: int, batch: int) -> float:
    """``count`` records as runs: run.started (durable), task results in batches, finished."""
    start = time.perf_counter()
    written, run = 0, 0
    while written < count:
        run += 1
        run_id = f"20261207T{run % 240000:06d}Z-{run:08x}"
        log.append(run_id=run_id, type_="run.started", actor="cron", env="lab",
                   action="health", data={"hosts": ["web1", "web2"]})
        results = min(batch, count - written - 2)
        for first in range(0, max(results, 0), 50):
            log.append_many([Entry(run_id, "task.result", "cron", "lab", "health",
                                   {**TASK, "i": i}) for i in range(first,
                                                                    min(first + 50, results))])
        log.append(run_id=run_id, type_="run.finished", actor="cron", env="lab",
                   action="health", data={"status": "ok"})
        written += max(results, 0) + 2
    return time.perf_counter() - start


def rate(log: AuditLog, count: int, batch: int) -> float:
    entries = [Entry("20261207T000000Z-ffffffff", "task.result", "cron", "lab", "health",
                     {**TASK, "i": i}) for i in range(count)]
    start = time.perf_counter()
    if batch == 1:
        for entry in entries:
            log.append_many([entry])
    else:
        for first in range(0, count, batch):
            log.append_many(entries[first:first + batch])
    return count / (time.perf_counter() - start)


VERIFY = """
import json, resource, sys, time
from pathlib import Path
from autoops.audit.log import AuditLog
from autoops.state.db import StateDB
root = Path(sys.argv[1])
start = time.perf_counter()
report = AuditLog(root / "audit" / "audit.jsonl", StateDB(root / "state.db")).verify()
took = time.perf_counter() - start
print(json.dumps({"ok": report.ok, "records": report.records, "seconds": took,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="autoops-bench-audit-"))
    log = AuditLog(root / "audit" / "audit.jsonl", StateDB(root / "state.db"))
    took = fill(log, args.records, 200)
    size = sum(p.stat().st_size for p in (root / "audit").rglob("*.jsonl"))
    segments = len(list((root / "audit").rglob("*.jsonl")))
    print(f"log: {args.records:,} records, {size / 2**20:.0f} MiB in {segments} segments, "
          f"written in {took:.1f}s")
    one, batched = rate(log, 20_000, 1), rate(log, 100_000, 100)
    print(f"append, non-durable, one at a time   {one:9,.0f} records/s   (goal ≥ "
          f"{GOALS['append_one']:,}/s)")
    print(f"append, non-durable, batches of 100  {batched:9,.0f} records/s   (goal ≥ "
          f"{GOALS['append_batch']:,}/s)")
    done = subprocess.run([sys.executable, "-c", VERIFY, str(root)], capture_output=True,
                          text=True, check=True)
    verify = json.loads(done.stdout)
    print(f"verify                               {verify['seconds']:9.2f} s, "
          f"peak RSS {verify['rss_mb']:.0f} MB, ok={verify['ok']} "
          f"(goal ≤ {GOALS['verify_s']} s, ≤ {GOALS['verify_rss_mb']} MB)")
    run_id = f"20261207T{7:06d}Z-{7:08x}"
    log.sync_index()
    start = time.perf_counter()
    found = log.query(Query(run_id=run_id))
    indexed = time.perf_counter() - start
    start = time.perf_counter()
    tail = log.query(Query(), limit=20)
    tailed = time.perf_counter() - start
    start = time.perf_counter()
    scanned = [r for r in log.records() if r["run_id"] == run_id]
    scan = time.perf_counter() - start
    assert [r["seq"] for r in found] == [r["seq"] for r in scanned]  # noqa: S101 - a bench
    print(f"query --run (index)                  {indexed:9.4f} s for {len(found)} records "
          f"(goal ≤ {GOALS['query_s']} s); full scan {scan:.2f} s")
    print(f"tail -n 20 (index)                   {tailed:9.4f} s for {len(tail)} records")
    start = time.perf_counter()
    count = log.reindex()
    print(f"reindex from the segments            {time.perf_counter() - start:9.2f} s for "
          f"{count:,} records")
    print(f"this process's peak RSS: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; log in {root}")


if __name__ == "__main__":
    main()
