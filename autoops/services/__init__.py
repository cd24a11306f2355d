"""The engine's services: each owns one family of commands over one shared Context.

``running`` (plan, decide, run), ``recovery`` (runs whose autoops died), ``stopping``
(halt, resume), ``granting``, ``approving``, ``secrets``, ``auditing``, ``overview``
(read-only views), ``watching`` and ``alerting`` (findings and the people who answer
them), ``metrics``, ``scheduling`` and ``healing`` (runbooks). They compose ``core``,
``guard``, ``state``, ``audit``, ``secrets``, ``run``, ``watch``, ``notify``, ``heal``
and ``setup``; only ``autoops.engine`` and the CLI import them.
"""
