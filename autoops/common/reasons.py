"""Reasons, as the audit log keeps them: one line, not empty, at most 500 characters.

Halts, resumes, rejections, revocations and grants all ask why; they share one rule.
"""

from __future__ import annotations

REASON_MAX = 500


def is_one_line(text: str) -> bool:
    """Whether ``text`` already is a reason as kept (signed grants carry theirs verbatim)."""
    return bool(text.strip()) and "\n" not in text and len(text) <= REASON_MAX


def one_line(text: str) -> str:
    """``text`` with its whitespace folded to single spaces; ValueError if it says nothing."""
    flat = " ".join(text.split())
    if not flat or len(flat) > REASON_MAX:
        raise ValueError(f"a reason must say why, in one line of at most {REASON_MAX} characters")
    return flat
