"""Secrets: SOPS files encrypted to per-environment age keys, their rules, scan and redaction.

Decrypted only at run time and never written anywhere in plaintext. It may read
``autoops.core`` (inventories) and ``autoops.settings``; never guards, runs or the CLI.
"""
