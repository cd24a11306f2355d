"""The shapes of names, defined once: everything that validates a name checks it here.

Patterns are anchored (``^…$``) so they serve JSON Schema and ``re.fullmatch`` alike.
"""

from __future__ import annotations

ENV_NAME = r"^[a-z][a-z0-9-]{0,31}$"
"""An environment: ``local``, ``staging``, ``production`` (also an inventory directory)."""
ACTION_NAME = r"^[a-z][a-z0-9-]{0,47}$"
"""A catalog action: ``health``, ``disk-report``."""
PARAM_NAME = r"^[a-z][a-z0-9_]{0,31}$"
"""An action parameter (catalog) and the parameter a grant constrains."""
ACTOR_NAME = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$"
"""Who acts: a Unix user or a label an operator or agent gives."""
UNIX_NAME = r"^[a-z_][a-z0-9_-]{0,31}$"
"""A Unix user or group autoops creates or trusts (service mode)."""
APP_NAME = r"^[a-z][a-z0-9-]{0,31}$"
"""A deployable application (its repository and its pinned revision)."""
SECRET_NAME = r"^[a-z_][a-z0-9_]{0,63}$"  # noqa: S105 - a pattern, not a password
"""A secret's variable name inside a SOPS file (an Ansible variable)."""
RUN_ID = r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$"
"""A run id: its UTC start and eight random hex digits (``20261122T081500Z-3fa9c1d2``)."""
