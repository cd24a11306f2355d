"""autoops: allowlisted, policy-gated, audited Ansible operations.

The library is usable without the CLI: resolve an action from the catalog,
build a plan, evaluate the policy and execute through ansible-runner with
every step recorded in a hash-chained audit log (see :mod:`autoops.engine`).
"""

__version__ = "0.1.0"
