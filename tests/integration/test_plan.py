from __future__ import annotations

from pathlib import Path

import pytest

from autoops.core import inventory
from autoops.engine import Autoops, RunRequest

pytestmark = pytest.mark.integration


def test_hosts_are_resolved_once_per_content_and_limit(app: Autoops, project: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    first, _ = app.plan(RunRequest("health", "local"))
    assert first.hosts == ("localhost",)

    def must_not_run(*_args: object) -> tuple[str, ...]:
        raise AssertionError("the host list should have come from the cache")

    with monkeypatch.context() as patch:
        patch.setattr(inventory, "resolve_hosts", must_not_run)
        again, _ = app.plan(RunRequest("health", "local"))
    assert again.hosts == first.hosts

    hosts = project / "inventories" / "local" / "hosts.yml"
    hosts.write_text(hosts.read_text() + "    second:\n      ansible_connection: local\n")
    changed, _ = app.plan(RunRequest("health", "local"))
    assert changed.hosts == ("localhost", "second")
    assert changed.content_digest != first.content_digest
    limited, _ = app.plan(RunRequest("health", "local", limit="second"))
    assert limited.hosts == ("second",)
