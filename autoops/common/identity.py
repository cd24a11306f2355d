"""Who is acting, compared so that it cannot be spelled around.

Two names are the same identity when they are equal after Unicode NFKC normalisation
and case folding: ``Bob``, ``bob`` and a full-width ``bob`` are one person, so a requester cannot
approve their own request under another spelling. Group membership comes from the
system's group database, and only for names that are real Unix users.
"""

from __future__ import annotations

import contextlib
import grp
import pwd
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

# How a front door labels the person behind it (``alice@awx``): one person either way.
FRONT_DOORS = ("@awx", "@semaphore", "@mcp")


def normalise(name: str) -> str:
    """The comparable form of an identity (NFKC, case-folded, no surrounding space).

    A front door's label is dropped: ``alice@awx`` and Unix ``alice`` are one person, so a
    request made through AWX cannot be approved by its requester at a shell.
    """
    text = unicodedata.normalize("NFKC", name).casefold().strip()
    for suffix in FRONT_DOORS:
        if text.endswith(suffix) and len(text) > len(suffix):
            return text[:-len(suffix)]
    return text


def same(first: str | None, second: str | None) -> bool:
    """Whether two names are one identity (None is nobody, and equals nobody)."""
    if first is None or second is None:
        return False
    return normalise(first) == normalise(second)


def among(name: str, names: Iterable[str]) -> bool:
    return any(same(name, other) for other in names)


def unix_groups(user: str) -> frozenset[str]:
    """The Unix groups of ``user`` (primary and supplementary); empty if not a Unix user."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return frozenset()
    groups = {g.gr_name for g in grp.getgrall() if user in g.gr_mem}
    with contextlib.suppress(KeyError):
        groups.add(grp.getgrgid(entry.pw_gid).gr_name)
    return frozenset(groups)


@dataclass(frozen=True)
class Principal:
    """An acting identity and the groups it is known to belong to.

    ``label`` is what the caller said about itself (``--actor``): recorded, never trusted
    where the identity is established by the system (service mode).
    """

    name: str
    groups: frozenset[str] = frozenset()
    label: str | None = None

    def is_one_of(self, users: Iterable[str], groups: Iterable[str]) -> bool:
        """Whether this principal is named in ``users`` or belongs to one of ``groups``."""
        return among(self.name, users) or any(among(g, self.groups) for g in groups)
