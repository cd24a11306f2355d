"""The host cache: resolved host lists, so a repeated plan does not re-read inventories."""

from __future__ import annotations

import json
import time

from autoops.state.base import Connections

KEEP = 100
"""Only the newest entries are kept."""


class HostCache:
    def __init__(self, database: Connections) -> None:
        self.database = database

    def cached_hosts(self, key: str) -> tuple[str, ...] | None:
        with self.database.connect() as db:
            row = db.execute("SELECT hosts FROM host_cache WHERE key=?", (key,)).fetchone()
        return tuple(json.loads(row[0])) if row else None

    def cache_hosts(self, key: str, hosts: tuple[str, ...]) -> None:
        with self.database.connect() as db:
            db.execute("INSERT OR REPLACE INTO host_cache VALUES (?,?,?)",
                       (key, json.dumps(list(hosts)), time.time()))
            db.execute("DELETE FROM host_cache WHERE key NOT IN "
                       "(SELECT key FROM host_cache ORDER BY used DESC LIMIT ?)", (KEEP,))
