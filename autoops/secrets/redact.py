"""Redaction of anything that goes to the audit log or the console.

Two nets: values whose key names say they are secret, and known secret values
(added by the secrets path) wherever they appear, including JSON-escaped forms.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

MASK = "********"
SECRET_KEY = re.compile(
    r"(?i)(pass(word|wd|phrase)?|secret|token|api_?key|private_?key|credential|become_pass)"
)


class Redactor:
    """Callable that returns a redacted deep copy of JSON-like data."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._needles: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Register secret values; their escaped and quoted forms are masked as well."""
        for value in secrets:
            if len(value) < 4:  # too short to mask without mangling ordinary text
                continue
            escaped = json.dumps(value)[1:-1]
            ascii_escaped = json.dumps(value, ensure_ascii=False)[1:-1]
            # as is, JSON-escaped (once and twice), and inside a Python repr (error messages)
            forms = {value, escaped, ascii_escaped, json.dumps(escaped)[1:-1], repr(value)[1:-1]}
            for form in forms:
                if form not in self._needles:
                    self._needles.append(form)
        self._needles.sort(key=len, reverse=True)

    def text(self, value: str) -> str:
        for needle in self._needles:
            value = value.replace(needle, MASK)
        return value

    def __call__(self, data: Any) -> Any:
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, dict):
            return {
                k: (MASK if isinstance(k, str) and SECRET_KEY.search(k) and v not in (None, "")
                    and not isinstance(v, bool) else self(v))
                for k, v in data.items()
            }
        if isinstance(data, list | tuple):
            return [self(item) for item in data]
        return data
