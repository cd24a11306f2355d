"""Risk classes, ordered: a class can be raised by context, never lowered."""

from __future__ import annotations

from enum import IntEnum


class Risk(IntEnum):
    """How much harm an action can do; the policy gates on this order."""

    SAFE = 0  # read-only
    LOW = 1  # reversible, no user impact
    MEDIUM = 2  # brief impact, e.g. a restart
    HIGH = 3  # deploys, config changes
    CRITICAL = 4  # production data, permissions
    DESTRUCTIVE = 5  # irreversible: prune, delete

    @classmethod
    def parse(cls, name: str) -> Risk:
        """Parse a class name, case-insensitively; ValueError lists the valid names."""
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise ValueError(
                f"unknown risk class {name!r}; expected one of {', '.join(NAMES)}"
            ) from None

    def raised_to(self, other: Risk) -> Risk:
        """The higher of the two: context may only raise a risk."""
        return max(self, other)


NAMES: tuple[str, ...] = tuple(r.name for r in Risk)
