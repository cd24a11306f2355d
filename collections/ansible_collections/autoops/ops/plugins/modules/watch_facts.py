#!/usr/bin/python
"""Everything ``autoops watch`` reads on one host, in one module call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: watch_facts
short_description: Read a host for autoops watch (health, services, proxy log, heartbeats, TLS, backups)
version_added: "1.1.0"
description:
  - Reads and judges nothing; autoops applies the thresholds on the controller.
  - Changes nothing, so it runs in check mode; a check that cannot be read is reported, never fatal.
options:
  services:
    description: Services to read, each C(name) and C(manager) (auto, systemd, supervisord, docker).
    type: list
    elements: dict
    default: []
  proxy_logs:
    description: JSON access logs (Caddy's), each C(path) and C(window_minutes).
    type: list
    elements: dict
    default: []
  heartbeats:
    description: Jobs, each C(name) and optionally the C(file) it touches.
    type: list
    elements: dict
    default: []
  supervisor_config:
    description: supervisord's config file, unless a service names its own.
    type: str
    default: /etc/supervisor/supervisord.conf
  heartbeat_dir:
    description: Where C(autoops heartbeat run) keeps each job's record.
    type: str
    default: /var/lib/autoops/heartbeats
  tls:
    description: Endpoints, each C(host), C(port) and C(server_name).
    type: list
    elements: dict
    default: []
  backups:
    description: The backup role's directory, as C(dir); none reads no backups.
    type: dict
  exclude_fstypes:
    description: Filesystem types that are not disks.
    type: list
    elements: str
author:
  - autoops maintainers
"""

EXAMPLES = r"""
- name: Read for watch
  autoops.ops.watch_facts:
    services: [{name: caddy}]
    proxy_logs: [{path: /var/log/caddy/access.log, window_minutes: 5}]
  register: watch_reading
"""

RETURN = r"""
reading:
  description: The host's health plus one entry per declared service, log, job, endpoint and backup directory.
  returned: always
  type: dict
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.autoops.ops.plugins.module_utils.host_health import (
    DEFAULT_EXCLUDE_FSTYPES,
    collect,
)
from ansible_collections.autoops.ops.plugins.module_utils.watch_readers import (
    now,
    read_access_log,
    read_backups,
    read_certificate,
    read_heartbeat,
    read_service,
    systemd_running,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "services": {"type": "list", "elements": "dict", "default": []},
            "proxy_logs": {"type": "list", "elements": "dict", "default": []},
            "heartbeats": {"type": "list", "elements": "dict", "default": []},
            "supervisor_config": {"type": "str", "default": "/etc/supervisor/supervisord.conf"},
            "heartbeat_dir": {"type": "str", "default": "/var/lib/autoops/heartbeats"},
            "tls": {"type": "list", "elements": "dict", "default": []},
            "backups": {"type": "dict"},
            "exclude_fstypes": {"type": "list", "elements": "str",
                                "default": DEFAULT_EXCLUDE_FSTYPES},
        },
        supports_check_mode=True,
    )
    params = module.params

    def run(argv: list[str]) -> tuple[int, str, str]:
        if module.get_bin_path(argv[0]) is None:
            raise OSError("%s is not installed" % argv[0])
        rc, out, err = module.run_command(argv, check_rc=False)
        return int(rc), str(out), str(err)

    try:
        reading: dict[str, Any] = collect(None, params["exclude_fstypes"])
    except (OSError, ValueError) as exc:
        module.fail_json(msg="cannot read host state: %s" % exc)
    at = now()
    has_systemd = systemd_running()
    asked: dict[str, Any] = {}  # what one service manager said, for every service it runs
    reading.update(
        kind="watch", time=at, systemd=has_systemd,
        services=[read_service({"supervisor_config": params["supervisor_config"], **s}, run,
                               has_systemd, asked) for s in params["services"]],
        proxy_logs=[read_access_log(p, at) for p in params["proxy_logs"]],
        heartbeats=[read_heartbeat(h, params["heartbeat_dir"]) for h in params["heartbeats"]],
        tls=[read_certificate(t) for t in params["tls"]],
        backups=read_backups(params["backups"]) if params["backups"] else None,
    )
    module.exit_json(changed=False, reading=reading)


if __name__ == "__main__":
    main()
