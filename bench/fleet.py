"""Benchmark: one action's playbook on N lab hosts, several ways, in one run.

0. for ``--action watch``, the baseline: the same checks as one would write them without
   autoops (``bench/plain/watch-tasks.yml``: facts, one task per reading, asserts), with
   plain ansible-playbook at Ansible's defaults,
1. plain ansible-playbook at Ansible's default settings (only the content paths set),
2. ansible-playbook with this repository's tuned ansible.cfg,
2b. ansible-runner (its own CLI) running the same playbook with the same config: what
   ansible-runner's event stream costs by itself, before autoops adds anything,
3. ``autoops run ACTION --env lab`` (gate, audit, ansible-runner),
4. for ``--action watch`` on the whole lab: ``autoops watch --env lab``, the full loop
   (readings, judging on the controller, findings in state.db, metrics, notices).
With ``--mitogen`` (needs ``.venv/bin/pip install mitogen``), ways 2 and 3 run again with
Mitogen's ``mitogen_linear`` strategy: plain ansible-playbook through ANSIBLE_STRATEGY, and
autoops (which drops inherited ANSIBLE_* variables) from a copy of this project whose
ansible.cfg names the strategy, as an operator would set it. Prints wall time,
controller CPU (children user+sys), the controller's peak memory (the summed PSS of the
command's whole process tree, sampled every 0.2 s: ansible's forks share pages, so RSS would
count them many times) and ratios to the first way and to the tuned config. Needs a lab with
at least max(N) hosts: ``autoops lab up --hosts 200``. Not a test: nothing asserts. Every way
starts cold (no SSH control masters).

    .venv/bin/python bench/fleet.py --action watch --hosts 50 --runs 3
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
Way = tuple[list[str], dict[str, str]]


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int, float]:
    """Wall time, children's CPU, exit status and peak tree PSS (MiB) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, tree_pss(proc.pid))
        time.sleep(0.2)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), \
        proc.returncode, peak


def tree_pss(root: int) -> float:
    """The summed proportional set size of ``root`` and its descendants, in MiB."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(stat[1]), []).append(int(entry.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total / 1024


def lab_size() -> int:
    hosts = json.loads(subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", "inventories/lab", "--list"], cwd=REPO,
        check=True, capture_output=True, text=True).stdout)["_meta"]["hostvars"]
    return len(hosts)


def mitogen_strategies() -> str:
    spec = importlib.util.find_spec("ansible_mitogen")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("--mitogen: ansible_mitogen is not installed (.venv/bin/pip install mitogen)")
    return str(Path(next(iter(spec.submodule_search_locations))) / "plugins" / "strategy")


def mitogen_project(strategies: str) -> Path:
    """A copy of this project (lab inventory included) whose ansible.cfg uses Mitogen."""
    copy = Path(tempfile.mkdtemp()) / "project"
    shutil.copytree(REPO, copy, symlinks=True,
                    ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info"))
    cfg = copy / "ansible.cfg"
    cfg.write_text(cfg.read_text().replace(
        "[defaults]\n", f"[defaults]\nstrategy_plugins = {strategies}\n"
        "strategy = mitogen_linear\n", 1))
    return copy


def ways_for(action: str, count: int, size: int, envs: dict[str, dict[str, str]]) -> dict[str, Way]:
    limit = f"all[0:{count - 1}]"
    playbook = [str(BIN / "ansible-playbook"), "-i", "inventories/lab", "--limit", limit,
                f"playbooks/{action}.yml"]
    run = [str(BIN / "autoops"), "run", action, "--env", "lab", "--limit", limit]
    ways: dict[str, Way] = {}
    if action == "watch":
        ways["ansible-playbook, defaults, task by task"] = (
            [*playbook[:-1], "bench/plain/watch-tasks.yml"], envs["defaults"])
    runner = [str(BIN / "ansible-runner"), "run", tempfile.mkdtemp(), "--project-dir",
              str(REPO), "-p", f"playbooks/{action}.yml", "--inventory",
              str(REPO / "inventories" / "lab"), "--limit", limit, "-q"]
    ways |= {
        "ansible-playbook, defaults": (playbook, envs["defaults"]),
        "ansible-playbook, tuned cfg": (playbook, envs["tuned"]),
        "ansible-runner run, tuned cfg": (runner, {**envs["tuned"], "PATH": f"{BIN}:"
                                                   f"{envs['tuned'].get('PATH', '')}"}),
        f"autoops run {action}": (run, envs["tuned"]),
    }
    if action == "watch" and count == size:
        ways["autoops watch (whole loop)"] = (
            [str(BIN / "autoops"), "watch", "--env", "lab", "--json"], envs["tuned"])
    if "mitogen" in envs:
        ways["ansible-playbook, tuned, mitogen"] = (playbook, envs["mitogen"])
        ways[f"autoops run {action}, mitogen"] = (run, envs["autoops mitogen"])
    return ways


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--action", choices=["health", "watch"], default="health")
    parser.add_argument("--hosts", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--mitogen", action="store_true",
                        help="also run ways 2 and 3 with Mitogen's mitogen_linear strategy")
    args = parser.parse_args()
    size = lab_size()
    if max(args.hosts) > size:
        sys.exit(f"the lab has {size} hosts; `autoops lab up --hosts {max(args.hosts)}` first")
    empty_cfg = Path(tempfile.mkdtemp()) / "ansible.cfg"
    empty_cfg.write_text("[defaults]\n")
    base = {**os.environ, "AUTOOPS_STATE_DIR": os.environ.get("AUTOOPS_STATE_DIR", "")}
    envs = {
        "defaults": {**base, "ANSIBLE_CONFIG": str(empty_cfg),
                     "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
                     "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"),
                     "ANSIBLE_FILTER_PLUGINS": str(REPO / "filter_plugins")},
        "tuned": {**base, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
    }
    if args.mitogen:
        strategies = mitogen_strategies()
        envs["mitogen"] = {**envs["tuned"], "ANSIBLE_STRATEGY_PLUGINS": strategies,
                           "ANSIBLE_STRATEGY": "mitogen_linear"}
        envs["autoops mitogen"] = {**envs["tuned"],
                                   "AUTOOPS_PROJECT_DIR": str(mitogen_project(strategies))}
    for count in args.hosts:
        ways = ways_for(args.action, count, size, envs)
        samples: dict[str, list[tuple[float, float, int, float]]] = {w: [] for w in ways}
        for _ in range(args.runs):
            for name, (cmd, env) in ways.items():
                cold = {**env, "ANSIBLE_SSH_CONTROL_PATH_DIR": tempfile.mkdtemp()}  # no masters
                samples[name].append(timed(cmd, cold))
        first = next(iter(samples.values()))
        base_wall = statistics.median(s[0] for s in first)
        base_cpu = statistics.median(s[1] for s in first)
        tuned = statistics.median(s[0] for s in samples["ansible-playbook, tuned cfg"])
        print(f"\n{args.action} on {count} lab hosts, {args.runs} cold run(s) each, medians")
        for name, runs in samples.items():
            wall = statistics.median(s[0] for s in runs)
            cpu = statistics.median(s[1] for s in runs)
            peak = max(s[3] for s in runs)
            rcs = sorted({s[2] for s in runs})
            print(f"  {name:<42} wall {wall:6.1f}s ({wall / base_wall:4.2f}x, "
                  f"{wall / tuned:4.2f}x tuned)  cpu {cpu:6.1f}s ({cpu / base_cpu:4.2f}x)  "
                  f"peak {peak:5.0f} MiB  exit {rcs}")


if __name__ == "__main__":
    main()
