"""Canonical JSON: the one byte form that hashes and signatures cover.

Sorted keys, no spaces, UTF-8 (no ASCII escapes): the same value always gives the
same bytes, so an audit hash, a grant signature and an approval digest can be
recomputed by anyone with ``json`` and ``sha256``.
"""

from __future__ import annotations

import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    """The canonical bytes of a JSON-shaped value (raises TypeError on anything else)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
