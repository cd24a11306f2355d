"""Benchmark: how long ``autoops list`` and ``show`` take, whole process, next to their goal.

Runs each command N times (after one warm-up, which leaves the catalog's verdict), and
``python -c pass`` as the floor every Python command pays. Also prints the modules
``list`` imports that it should not (the engine, JSON Schema, ansible-runner …).
Not a test: nothing here asserts a time.

    .venv/bin/python bench/startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
GOAL = 0.15
HEAVY = ("autoops.engine", "jsonschema", "ansible_runner", "ansible", "cryptography",
         "autoops.audit.log")
PROBE = ("import io, sys\nfrom autoops.cli.main import program\n"
         "program(sys.argv[1:], io.StringIO(), io.StringIO(), io.StringIO())\n"
         f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")


def timed(cmd: list[str], runs: int) -> float:
    subprocess.run(cmd, capture_output=True, check=False)  # warm-up: caches, verdicts
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=False)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    floor = timed([sys.executable, "-c", "pass"], args.runs)
    print(f"whole process, median of {args.runs} (goal ≤ {GOAL:.2f} s)")
    print(f"  {'python -c pass (the floor)':<28} {floor:6.3f} s")
    for argv in (["list"], ["show", "health"]):
        took = timed([str(BIN / "autoops"), *argv], args.runs)
        loaded = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True,
                                text=True, check=False).stdout.strip()
        print(f"  {'autoops ' + ' '.join(argv):<28} {took:6.3f} s   "
              f"{'within' if took <= GOAL else 'OVER'} the goal; "
              f"heavy modules loaded: {loaded or 'none'}")


if __name__ == "__main__":
    main()
