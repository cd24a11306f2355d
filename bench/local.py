"""Benchmark: the health playbook on this machine, plain ansible-playbook vs autoops run.

Same playbook, same inventory, same machine, alternating in one process so load drifts
hit both. Reports median wall time, controller CPU (user+sys of children) and ratios.
Not a test: nothing here asserts a time.

    .venv/bin/python bench/local.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    state = tempfile.mkdtemp(prefix="autoops-bench-")
    env = {**os.environ, "AUTOOPS_STATE_DIR": state, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    commands = {
        "ansible-playbook": [str(BIN / "ansible-playbook"), "-i", "inventories/local",
                             "playbooks/health.yml"],
        "autoops run": [str(BIN / "autoops"), "run", "health", "--env", "local"],
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, cmd in commands.items():
            results[name].append(timed(cmd, env))
    base_wall = statistics.median(w for w, _ in results["ansible-playbook"])
    base_cpu = statistics.median(c for _, c in results["ansible-playbook"])
    print(f"health on localhost, {args.runs} runs each, medians")
    for name, samples in results.items():
        wall = statistics.median(w for w, _ in samples)
        cpu = statistics.median(c for _, c in samples)
        print(f"{name:<18} wall {wall:6.2f}s ({wall / base_wall:4.2f}x)   "
              f"cpu {cpu:6.2f}s ({cpu / base_cpu:4.2f}x)")


if __name__ == "__main__":
    main()
