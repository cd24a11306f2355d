#!/usr/bin/python
"""Read a host's health (uptime, load, memory, disks) in one module call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: health_facts
short_description: Read uptime, load, memory and disk use, and judge them against thresholds
version_added: "1.0.0"
description:
  - Reads C(/proc) and C(statvfs) only; changes nothing, so it runs in check mode.
  - Returns C(autoops_report) with C(kind=health) and a list of C(problems).
options:
  disk_max_percent:
    description: Highest acceptable used share of a mount's space.
    type: int
    default: 90
  inode_max_percent:
    description: Highest acceptable used share of a mount's inodes.
    type: int
    default: 90
  mem_max_percent:
    description: Highest acceptable used share of memory (total minus available).
    type: int
    default: 95
  load_max_per_cpu:
    description: Highest acceptable 5-minute load average per CPU.
    type: float
    default: 4.0
  publish:
    description: Also return the reading as C(autoops_report), which autoops shows as the host's health.
    type: bool
    default: true
  exclude_fstypes:
    description: Filesystem types that are not disks.
    type: list
    elements: str
    default: [proc, sysfs, devtmpfs, devpts, tmpfs, cgroup, cgroup2, mqueue, debugfs, tracefs,
              securityfs, pstore, bpf, autofs, configfs, fusectl, hugetlbfs, binfmt_misc,
              nsfs, rpc_pipefs, squashfs, ramfs, efivarfs, fuse.lxcfs, selinuxfs]
author:
  - autoops maintainers
"""

EXAMPLES = r"""
- name: Read health
  autoops.ops.health_facts:
    disk_max_percent: 85
  register: health
"""

RETURN = r"""
reading:
  description: Uptime, load, memory, mounts and the problems found.
  returned: always
  type: dict
autoops_report:
  description: The same reading, for the autoops summary.
  returned: when publish is true
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.autoops.ops.plugins.module_utils.host_health import (
    DEFAULT_EXCLUDE_FSTYPES,
    collect,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "disk_max_percent": {"type": "int", "default": 90},
            "inode_max_percent": {"type": "int", "default": 90},
            "mem_max_percent": {"type": "int", "default": 95},
            "load_max_per_cpu": {"type": "float", "default": 4.0},
            "publish": {"type": "bool", "default": True},
            "exclude_fstypes": {
                "type": "list", "elements": "str",
                "default": DEFAULT_EXCLUDE_FSTYPES,
            },
        },
        supports_check_mode=True,
    )
    limits = {k: module.params[k] for k in
              ("disk_max_percent", "inode_max_percent", "mem_max_percent", "load_max_per_cpu")}
    try:
        report = collect(limits, module.params["exclude_fstypes"])
    except (OSError, ValueError) as exc:
        module.fail_json(msg="cannot read host state: %s" % exc)
    extra = {"autoops_report": report} if module.params["publish"] else {}
    module.exit_json(changed=False, reading=report, **extra)


if __name__ == "__main__":
    main()
