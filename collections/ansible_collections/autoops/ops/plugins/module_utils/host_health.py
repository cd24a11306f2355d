"""Reading a host's health from /proc and statvfs: shared by health_facts and watch_facts.

Plain standard library, no Ansible import: these run on the managed host inside the
module's payload, and the unit tests load them directly.
"""

from __future__ import annotations

import os
from typing import Any

DEFAULT_EXCLUDE_FSTYPES = [
    "proc", "sysfs", "devtmpfs", "devpts", "tmpfs", "cgroup", "cgroup2", "mqueue", "debugfs",
    "tracefs", "securityfs", "pstore", "bpf", "autofs", "configfs", "fusectl", "hugetlbfs",
    "binfmt_misc", "nsfs", "rpc_pipefs", "squashfs", "ramfs", "efivarfs", "fuse.lxcfs",
    "selinuxfs",
]


def parse_meminfo(text: str) -> dict[str, int]:
    """Return meminfo values in KiB keyed by name."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name.strip()] = int(parts[0])
    return values


def memory_summary(meminfo: dict[str, int]) -> dict[str, Any]:
    total = meminfo.get("MemTotal", 0)
    available = meminfo.get("MemAvailable", meminfo.get("MemFree", 0))
    used = max(total - available, 0)
    return {
        "total_kib": total,
        "available_kib": available,
        "used_percent": round(100.0 * used / total, 1) if total else 0.0,
        "swap_total_kib": meminfo.get("SwapTotal", 0),
        "swap_free_kib": meminfo.get("SwapFree", 0),
    }


def unescape_mount(path: str) -> str:
    """Undo the octal escapes /proc/mounts uses for spaces, tabs and newlines."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        path = path.replace(code, char)
    return path


def parse_mounts(text: str, exclude_fstypes: set[str]) -> list[dict[str, Any]]:
    """Mount points of real filesystems, first occurrence of each device only."""
    seen_devices: set[str] = set()
    mounts: list[dict[str, Any]] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        device, mount, fstype = fields[0], unescape_mount(fields[1]), fields[2]
        if fstype in exclude_fstypes or device in seen_devices:
            continue
        seen_devices.add(device)
        mounts.append({"device": device, "mount": mount, "fstype": fstype})
    return mounts


def usage(stat: Any) -> dict[str, Any]:
    """Space and inode use from an os.statvfs result (as a plain object)."""
    size = stat.f_blocks * stat.f_frsize // 1024
    avail = stat.f_bavail * stat.f_frsize // 1024
    used = (stat.f_blocks - stat.f_bfree) * stat.f_frsize // 1024
    # Like df: used / (used + available to unprivileged users)
    usable = used + avail
    inodes_used = stat.f_files - stat.f_ffree
    return {
        "size_kib": size,
        "used_kib": used,
        "avail_kib": avail,
        "used_percent": round(100.0 * used / usable, 1) if usable else 0.0,
        "inodes_used_percent": round(100.0 * inodes_used / stat.f_files, 1) if stat.f_files else None,
    }


def problems_of(report: dict[str, Any], limits: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for mount in report["mounts"]:
        if mount["used_percent"] > limits["disk_max_percent"]:
            found.append("disk %s is %.1f%% full (limit %d%%)"
                         % (mount["mount"], mount["used_percent"], limits["disk_max_percent"]))
        inodes = mount.get("inodes_used_percent")
        if inodes is not None and inodes > limits["inode_max_percent"]:
            found.append("inodes on %s are %.1f%% used (limit %d%%)"
                         % (mount["mount"], inodes, limits["inode_max_percent"]))
    mem = report["memory"]["used_percent"]
    if mem > limits["mem_max_percent"]:
        found.append("memory is %.1f%% used (limit %d%%)" % (mem, limits["mem_max_percent"]))
    per_cpu = report["load"][1] / max(report["cpus"], 1)
    if per_cpu > limits["load_max_per_cpu"]:
        found.append("5-minute load is %.2f per CPU (limit %.2f)" % (per_cpu, limits["load_max_per_cpu"]))
    return found


def read(path: str) -> str:
    with open(path) as handle:
        return handle.read()


def collect(limits: dict[str, Any] | None, exclude_fstypes: list[str]) -> dict[str, Any]:
    """The host's reading; with ``limits``, also the problems health_facts reports."""
    mounts: list[dict[str, Any]] = []
    for entry in parse_mounts(read("/proc/mounts"), set(exclude_fstypes)):
        if not os.path.isdir(entry["mount"]):  # a bind-mounted file (containers' resolv.conf)
            continue
        try:
            entry.update(usage(os.statvfs(entry["mount"])))
        except OSError:
            continue
        mounts.append(entry)
    report = {
        "kind": "health",
        "hostname": os.uname()[1],
        "uptime_seconds": float(read("/proc/uptime").split()[0]),
        "load": list(os.getloadavg()),
        "cpus": os.cpu_count() or 1,
        "memory": memory_summary(parse_meminfo(read("/proc/meminfo"))),
        "mounts": mounts,
    }
    if limits is not None:
        report["problems"] = problems_of(report, limits)
    return report
