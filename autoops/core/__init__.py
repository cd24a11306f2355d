"""What a request means: the catalog, its parameters, the plan and the policy decision.

``catalog`` (the allowlist) → ``plan`` (action, environment, hosts, digest) →
``policy`` (pure: risk, windows, freezes → allow, confirm, grant, second person, deny).
It imports only ``autoops.common`` and ``autoops.errors``: no state, no runner, no CLI,
so every decision can be computed (and tested) without touching a host or a database.
"""
