from __future__ import annotations

from types import SimpleNamespace

from tests.conftest import REPO
from tests.unit.test_filters import _load

module = _load(REPO / "collections/ansible_collections/autoops/ops/plugins/module_utils/"
                     "host_health.py", "host_health")

MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
proc /proc proc rw 0 0
tmpfs /run tmpfs rw 0 0
/dev/vda /var/lib/docker ext4 rw 0 0
/dev/vdb /srv/my\\040data xfs rw 0 0
overlay /var/lib/docker/overlay2/x/merged overlay rw 0 0
"""


def test_parse_mounts_skips_pseudo_filesystems_and_repeated_devices() -> None:
    mounts = module.parse_mounts(MOUNTS, {"proc", "tmpfs"})
    assert [m["mount"] for m in mounts] == ["/", "/srv/my data", "/var/lib/docker/overlay2/x/merged"]


def test_meminfo_and_memory_summary() -> None:
    info = module.parse_meminfo("MemTotal:  1000 kB\nMemAvailable:  250 kB\nSwapTotal: 0 kB\n")
    assert module.memory_summary(info)["used_percent"] == 75.0


def test_usage_matches_df_arithmetic() -> None:
    stat = SimpleNamespace(f_blocks=1000, f_bfree=300, f_bavail=200, f_frsize=4096,
                           f_files=100, f_ffree=25)
    use = module.usage(stat)
    assert use["used_kib"] == 700 * 4
    assert use["used_percent"] == round(100 * 700 / 900, 1)
    assert use["inodes_used_percent"] == 75.0


def test_problems_name_each_crossed_threshold() -> None:
    report = {"mounts": [{"mount": "/", "used_percent": 95.0, "inodes_used_percent": 10.0}],
              "memory": {"used_percent": 50.0}, "load": [0, 9.0, 0], "cpus": 2}
    limits = {"disk_max_percent": 90, "inode_max_percent": 90, "mem_max_percent": 95,
              "load_max_per_cpu": 4.0}
    problems = module.problems_of(report, limits)
    assert len(problems) == 2
    assert "disk / is 95.0% full" in problems[0]
    assert "load is 4.50 per CPU" in problems[1]


def test_collect_reads_this_machine() -> None:
    limits = {"disk_max_percent": 100, "inode_max_percent": 100, "mem_max_percent": 100,
              "load_max_per_cpu": 1e6}
    report = module.collect(limits, ["proc", "sysfs", "tmpfs", "devtmpfs", "devpts", "cgroup",
                                     "cgroup2", "mqueue"])
    assert report["kind"] == "health"
    assert report["mounts"]
    assert report["problems"] == []
    assert report["uptime_seconds"] > 0
