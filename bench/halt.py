"""Benchmark: how long `autoops halt` takes to stop a running playbook, process tree included.

A throwaway copy of the project gets one extra action that sleeps in a task; each round
starts it, waits for the task's ``sleep`` process, engages the halt and measures until
the run's process exited and until none of its descendants is left. Reports the
median and the worst round. Not a test: nothing here asserts a time.

    .venv/bin/python bench/halt.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from autoops.common.procs import descendants

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SECONDS = 93  # an unusual sleep length, to find the task's process by its argv
PLAYBOOK = f"""\
---
- name: Hold
  hosts: all
  gather_facts: false
  tasks:
    - name: Sleep
      ansible.builtin.command:
        argv: [sleep, "{SECONDS}"]
      changed_when: false
"""


def project(root: Path) -> Path:
    dest = root / "project"
    for name in ("ansible.cfg", "catalog.yml", "policy.yml", "playbooks", "roles",
                 "collections", "filter_plugins", "inventories", "sops-rules.yaml"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "lab"))
        elif src.exists():
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    (dest / "playbooks" / "bench-hold.yml").write_text(PLAYBOOK)
    catalog = yaml.safe_load((dest / "catalog.yml").read_text())
    catalog["actions"]["bench-hold"] = {
        "description": "Sleep in a task (benchmark only).", "playbook": "playbooks/bench-hold.yml",
        "risk": "LOW", "environments": ["local"], "check_mode": False, "params": {}}
    (dest / "catalog.yml").write_text(yaml.safe_dump(catalog, sort_keys=False))
    return dest


def sleeping() -> bool:
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes() == f"sleep\0{SECONDS}\0".encode():
                return True
        except OSError:
            continue
    return False


def alive(pids: set[int]) -> set[int]:
    left = set()
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z":
                left.add(pid)
        except OSError:
            continue
    return left


def one_round(env: dict[str, str]) -> tuple[float, float, float]:
    """(seconds to the run's exit, to the last descendant's exit, the halt command's wall)."""
    run = subprocess.Popen([str(BIN / "autoops"), "run", "bench-hold", "--env", "local"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not sleeping():
        if time.monotonic() > deadline:
            raise SystemExit("the benchmark playbook never started its task")
        time.sleep(0.05)
    tree = descendants(run.pid)
    start = time.perf_counter()
    halt = subprocess.Popen([str(BIN / "autoops"), "halt", "--env", "local", "--reason", "bench"],
                            env=env, stdout=subprocess.DEVNULL)
    run_exit = tree_gone = 0.0
    while not (run_exit and tree_gone):
        now = time.perf_counter() - start
        if not run_exit and run.poll() is not None:
            run_exit = now
        if not tree_gone and not alive(tree):
            tree_gone = now
        time.sleep(0.01)
    halt.wait()
    halt_wall = time.perf_counter() - start
    if run.returncode != 7:
        raise SystemExit(f"the halted run exited {run.returncode}, not 7")
    subprocess.run([str(BIN / "autoops"), "resume", "--env", "local", "--reason", "bench"],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    return run_exit, tree_gone, halt_wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="autoops-bench-halt-") as tmp:
        root = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOOPS_")}
        env.update(AUTOOPS_PROJECT_DIR=str(project(root)), AUTOOPS_STATE_DIR=str(root / "state"),
                   XDG_CONFIG_HOME=str(root / "config"))
        rounds = [one_round(env) for _ in range(args.runs)]
    print(f"halt of a running playbook on localhost, {args.runs} rounds (median / worst)")
    for index, name in enumerate(("run exited", "process tree gone", "halt command returned")):
        samples = [r[index] for r in rounds]
        print(f"{name:<22} {statistics.median(samples):5.2f}s / {max(samples):5.2f}s")


if __name__ == "__main__":
    main()
