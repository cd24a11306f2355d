"""What every store needs from the database, without importing it (no cycle)."""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Protocol


class Connections(Protocol):
    """The one :class:`autoops.state.db.Database` a store works over."""

    def connect(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...
