"""Reading the audit log: tail, one run, filtered queries, and verification of the chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autoops.audit.log import RECORD_TYPES, Query, VerifyReport, parse_since
from autoops.audit.witness import read_witness
from autoops.errors import BadInputError
from autoops.services.context import Context
from autoops.services.recovery import Recovery

__all__ = ["RECORD_TYPES", "Audit"]


class Audit:
    def __init__(self, ctx: Context, recovery: Recovery) -> None:
        self.ctx = ctx
        self.recovery = recovery

    @property
    def path(self) -> Path:
        return self.ctx.settings.audit_path

    def query(self, query: Query, limit: int | None = None) -> list[dict[str, Any]]:
        """Matching records, oldest first (the newest ``limit`` of them)."""
        self.recovery.recover()
        return self.ctx.audit.query(query, limit)

    def tail(self, count: int) -> list[dict[str, Any]]:
        return self.query(Query(), limit=max(count, 1))

    def run(self, run_id: str) -> list[dict[str, Any]]:
        """Every record of one run; BadInputError when there is none."""
        records = self.query(Query(run_id=run_id))
        if not records:
            raise BadInputError(f"no audit records for run {run_id!r}",
                                remedy="`autoops audit tail` lists recent run ids.")
        return records

    def search(self, *, action: str | None = None, env: str | None = None,
               actor: str | None = None, run_id: str | None = None,
               types: list[str] | None = None, since: str | None = None,
               limit: int | None = None) -> list[dict[str, Any]]:
        """Records matching every filter given; ``since`` is ``24h`` … or an ISO time."""
        try:
            after = parse_since(since, self.ctx.clock()) if since else None
        except ValueError as exc:
            raise BadInputError(str(exc)) from None
        return self.query(Query(action=action, env=env, actor=actor, run_id=run_id,
                                types=types or [], since=after), limit=limit)

    def verify(self, witness: Path | None = None) -> VerifyReport:
        """Check the hash chain (and, given a syslog witness file, agreement with it)."""
        self.recovery.recover()
        if witness is None:
            return self.ctx.audit.verify()
        return self.ctx.audit.verify_witness(read_witness(witness))

    def reindex(self) -> int:
        """Rebuild the index from the segments (they are the truth); how many records."""
        return self.ctx.audit.reindex()

    def prune(self, before: str, archive: Path | None = None) -> dict[str, Any]:
        """Drop whole segments older than ``before`` (``90d`` or an ISO time).

        Archived first if asked; the chain stays verifiable from its new start (see
        :meth:`autoops.audit.log.AuditLog.prune`).
        """
        try:
            cutoff = parse_since(before, self.ctx.clock())
        except ValueError as exc:
            raise BadInputError(str(exc).replace("--since", "--before")) from None
        if archive is not None and archive.exists():
            raise BadInputError(f"--archive {archive} exists already; nothing was pruned",
                                remedy="Name a new file: an archive is never overwritten.")
        return self.ctx.audit.prune(cutoff, actor=self.ctx.actor(None), archive=archive)
