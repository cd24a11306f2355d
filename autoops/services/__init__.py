"""The engine's services: each owns one family of commands over one shared Context.

``running`` (plan, decide, run), ``recovery`` (runs whose autoops died), ``stopping``
(halt, resume), ``granting``, ``approving``, ``secrets``, ``auditing`` and ``overview``
(read-only views). They compose ``core``, ``guard``, ``state``, ``audit``, ``secrets``
and ``run``; only ``autoops.engine`` and the CLI import them.
"""
