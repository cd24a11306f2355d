"""``autoops metrics``: Prometheus metrics in node_exporter's textfile collector convention.

With a metrics directory (``AUTOOPS_METRICS_DIR``; in service mode ``metrics_dir`` in the
service config) every run and every watch run that ends rewrites ``DIR/autoops.prom`` from
``state.db``; node_exporter (``--collector.textfile.directory=DIR``) serves it. The
counters live in ``state.db`` (see :mod:`autoops.state.runstats`), not in a process, so
they survive every exit; without a directory they are still counted, and nothing is
written.

The file is replaced in one step (a private temporary file in the same directory,
made 0644, renamed over it), so node_exporter never reads half a file, whatever the
umask. Nothing else is written, and only into the metrics directory.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from autoops.common.files import write_atomic
from autoops.errors import AutoopsError, MetricsDirError, ServiceRefusedError
from autoops.exits import ExitStatus
from autoops.services.context import Context

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

FILE_NAME = "autoops.prom"
"""The textfile collector reads ``*.prom``; the temporary file is ``.autoops.prom.*``."""

FILE_MODE = 0o644  # node_exporter runs as its own user


class Metrics:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def registry(self) -> CollectorRegistry:
        """One snapshot of every finding and counter in ``state.db``."""
        from autoops.watch import findings, metrics  # noqa: PLC0415 - only when exported

        db = self.ctx.db
        checks = [(findings.FindingKey(row.env, row.host, row.check, row.subject),
                   findings.from_dict(json.loads(row.body))) for row in db.findings.all()]
        return metrics.registry(checks, db.run_stats.runs(), db.run_stats.watches())

    def render(self) -> str:
        """The exposition text ``write`` would write (``autoops metrics show``)."""
        from autoops.watch import metrics  # noqa: PLC0415 - only when exported

        return metrics.exposition(self.registry()).decode("utf-8")

    def write(self, directory: Path | None = None) -> Path | None:
        """Replace ``DIR/autoops.prom``; None when no directory is configured (metrics off).

        ``directory`` (``metrics write --dir``) overrides the setting, but not in
        service mode: a caller must not choose where the service account writes.
        """
        configured = self.ctx.settings.metrics_dir
        if directory is not None:
            directory = directory.expanduser().resolve()
            if self.ctx.settings.service is not None and directory != configured:
                raise ServiceRefusedError(
                    "--dir is not available in service mode",
                    remedy="The service config's metrics_dir says where metrics go.")
        target = directory if directory is not None else configured
        if target is None:
            return None
        from autoops.watch import metrics  # noqa: PLC0415 - only when exported

        path = _checked(target) / FILE_NAME
        body = metrics.exposition(self.registry())
        try:
            write_atomic(path, body, FILE_MODE)
        except OSError as exc:
            raise MetricsDirError(f"cannot write {path}: {exc.strerror or exc}") from None
        return path

    def refresh(self) -> Path | None:
        """``write`` after a run or a watch run ended: what went wrong is not the run's.

        The run's outcome is already recorded and is what its caller must see; a stale
        file shows in Prometheus (``node_textfile_mtime_seconds``, and
        ``autoops_watch_last_success_timestamp_seconds`` ageing), and ``autoops metrics
        write`` names the problem.
        """
        if self.ctx.settings.metrics_dir is None:
            return None
        try:
            return self.write()
        except AutoopsError:
            return None

    def run_ended(self, action: str, env: str, status: int, seconds: float) -> None:
        """Count a guarded run that ended, then refresh the file."""
        self.ctx.db.run_stats.add_run(action, env, int(status), seconds)
        self.refresh()

    def watch_ended(self, env: str, status: ExitStatus) -> None:
        """Count a completed watch run (its exit status: 0 ok, 5 firing), then refresh the file."""
        self.ctx.db.run_stats.add_watch(env, int(status), self.ctx.clock().timestamp())
        self.refresh()


def _checked(directory: Path) -> Path:
    """An existing directory that nobody but its owner (and group) can write into."""
    try:
        st = directory.stat()
    except OSError as exc:
        raise MetricsDirError(f"cannot use metrics directory {directory}: "
                              f"{exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise MetricsDirError(f"metrics directory {directory} is not a directory")
    if st.st_mode & 0o002:  # anyone could put their own autoops.prom in its place
        raise MetricsDirError(f"metrics directory {directory} is writable by everyone "
                              f"(mode {st.st_mode & 0o777:o})", remedy=f"chmod o-w {directory}")
    return directory
