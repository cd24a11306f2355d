"""Shared rules with one home each: names, durations, canonical JSON, file helpers, identities.

Everything else may import it; it imports nothing of autoops but ``autoops.errors``.
"""
