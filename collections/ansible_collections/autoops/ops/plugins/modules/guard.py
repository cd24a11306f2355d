#!/usr/bin/python
"""Documentation of the pre-flight guard; the work is in the action plugin of the same name."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: guard
short_description: Refuse a catalog playbook run that autoops' policy would not allow
version_added: "1.2.0"
description:
  - The first play of every catalog playbook runs this on the controller, before any host task.
  - It identifies the action from the playbook, refuses undeclared extra variables and any
    C(ansible_*) override, works out the one environment the run targets, and evaluates the
    policy there; wherever a person would be needed it requires a grant (C(autoops_grant)) or
    an approved two-person request (C(autoops_approval)).
  - A run that C(autoops) itself started carries a ticket only autoops can make for that run,
    and passes at once.
  - Needs the autoops Python package where Ansible runs (the execution environment carries it);
    without it the guard fails closed.
options:
  action:
    description: The catalog action the playbook is (it must be that action's playbook).
    type: str
    required: true
attributes:
  check_mode:
    support: full
  action:
    support: full
author:
  - autoops maintainers
"""

EXAMPLES = r"""
- name: Pre-flight guard
  autoops.ops.guard:
    action: health
"""

RETURN = r"""
autoops_guard:
  description: The admitted run.
  returned: success
  type: dict
  contains:
    run_id:
      description: The audit log's run id.
      type: str
    mode:
      description: C(autoops) (decided by autoops) or C(frontdoor) (decided by the guard).
      type: str
    env:
      description: The environment.
      type: str
    actor:
      description: Who the audit log names.
      type: str
    hosts:
      description: The hosts the run may touch.
      type: list
      elements: str
"""
