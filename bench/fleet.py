"""Benchmark: the health playbook on N lab hosts, three ways, in one run.

1. plain ansible-playbook at Ansible's default settings (only the content paths set),
2. ansible-playbook with this repository's tuned ansible.cfg,
3. autoops run health --env lab.
Prints wall time, controller CPU (children user+sys) and ratios to (1). Needs a lab
with at least max(N) hosts: `autoops lab up --hosts 50`. Not a test: nothing asserts.

    .venv/bin/python bench/fleet.py --hosts 10 50 --runs 1
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


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, check=False, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), \
        proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    empty_cfg = Path(tempfile.mkdtemp()) / "ansible.cfg"
    empty_cfg.write_text("[defaults]\n")
    base = {**os.environ, "AUTOOPS_STATE_DIR": os.environ.get("AUTOOPS_STATE_DIR", "")}
    defaults_env = {**base, "ANSIBLE_CONFIG": str(empty_cfg),
                    "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
                    "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"),
                    "ANSIBLE_FILTER_PLUGINS": str(REPO / "filter_plugins")}
    tuned_env = {**base, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    for count in args.hosts:
        limit = f"all[0:{count - 1}]"
        playbook = [str(BIN / "ansible-playbook"), "-i", "inventories/lab", "--limit", limit,
                    "playbooks/health.yml"]
        ways = {
            "ansible-playbook, defaults": (playbook, defaults_env),
            "ansible-playbook, tuned cfg": (playbook, tuned_env),
            "autoops run": ([str(BIN / "autoops"), "run", "health", "--env", "lab", "--limit",
                             limit], tuned_env),
        }
        samples: dict[str, list[tuple[float, float, int]]] = {w: [] for w in ways}
        for _ in range(args.runs):
            for name, (cmd, env) in ways.items():
                cold = {**env, "ANSIBLE_SSH_CONTROL_PATH_DIR": tempfile.mkdtemp()}  # no masters
                samples[name].append(timed(cmd, cold))
        first = next(iter(samples.values()))
        base_wall = statistics.median(s[0] for s in first)
        base_cpu = statistics.median(s[1] for s in first)
        print(f"\nhealth on {count} lab hosts, {args.runs} cold run(s) each, medians")
        for name, runs in samples.items():
            wall = statistics.median(s[0] for s in runs)
            cpu = statistics.median(s[1] for s in runs)
            rcs = sorted({s[2] for s in runs})
            print(f"  {name:<28} wall {wall:6.1f}s ({wall / base_wall:4.2f}x)  "
                  f"cpu {cpu:6.1f}s ({cpu / base_cpu:4.2f}x)  exit {rcs}")


if __name__ == "__main__":
    main()
