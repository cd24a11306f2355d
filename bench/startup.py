"""Benchmark: how long ``autoops list``, ``show`` and ``plan`` take, whole process.

Runs each command N times (after one warm-up, which leaves the catalog's verdict), and
``python -c pass`` as the floor every Python command pays. Also prints the modules
``list`` imports that it should not (the engine, JSON Schema, ansible-runner …), and
``autoops plan health`` next to ``ansible-inventory --list`` on the same inventory (plan
reads that inventory too, so it should stay well under it).
Not a test: nothing here asserts a time.

    .venv/bin/python bench/startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent
GOAL = 0.15
PLAN_GOAL = 0.7  # autoops plan / ansible-inventory --list, same inventory
HEAVY = ("autoops.engine", "jsonschema", "ansible_runner", "ansible", "cryptography",
         "autoops.audit.log")
PROBE = ("import io, sys\nfrom autoops.cli.main import program\n"
         "program(sys.argv[1:], io.StringIO(), io.StringIO(), io.StringIO())\n"
         f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")


def timed(cmd: list[str], runs: int, env: dict[str, str] | None = None) -> float:
    subprocess.run(cmd, capture_output=True, check=False, cwd=REPO, env=env)  # warm-up
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=False, cwd=REPO, env=env)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def plan_figures(runs: int) -> None:
    """``autoops plan health`` against ``ansible-inventory --list`` per inventory."""
    print(f"autoops plan health vs ansible-inventory --list, median of {runs} "
          f"(goal ≤ {PLAN_GOAL:.2f}x)")
    state = tempfile.mkdtemp(prefix="autoops-bench-")
    env = {**os.environ, "AUTOOPS_STATE_DIR": state, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    for inventory in sorted(p.name for p in (REPO / "inventories").iterdir() if p.is_dir()):
        plan = timed([str(BIN / "autoops"), "plan", "health", "--env", inventory], runs, env)
        listed = timed([str(BIN / "ansible-inventory"), "-i", f"inventories/{inventory}",
                        "--list"], runs, env)
        ratio = plan / listed
        print(f"  {inventory:<12} plan {plan:6.3f} s   ansible-inventory {listed:6.3f} s   "
              f"{ratio:4.2f}x {'within' if ratio <= PLAN_GOAL else 'OVER'} the goal")


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
    plan_figures(args.runs)


if __name__ == "__main__":
    main()
