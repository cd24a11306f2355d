"""The state store: one SQLite connection, one migration path, one store per concern.

Runs, locks, grants, approvals, halts, the audit anchor and the host cache each have
their own store over the shared connection. It imports only ``autoops.common``.
"""
