"""The engine as a composition: services share one Context, and the run path records once."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from autoops.engine import Autoops, RunRequest
from autoops.errors import ActionUnknownError, BadInputError, EnvUnknownError
from autoops.services.running import Attempt
from autoops.settings import Settings
from autoops.state.runs import RunRow, RunState

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def app(settings: Settings) -> Autoops:
    return Autoops(settings, clock=lambda: NOW)


def test_building_the_engine_touches_nothing(app: Autoops, settings: Settings) -> None:
    """Services are cheap to build: no state.db, no audit log, until a command needs them."""
    assert app.overview.actions()  # the catalog loads …
    assert not settings.db_path.exists()  # … but nothing was opened or written
    assert not settings.audit_path.exists()


def test_every_service_shares_one_context(app: Autoops) -> None:
    contexts = {id(service.ctx) for service in (
        app.runs, app.recovery, app.stop, app.grants, app.approvals, app.secrets, app.audit,
        app.overview)}
    assert contexts == {id(app.context)}
    assert app.recovery.locks is app.recovery.locks  # built once
    assert app.context.db is app.context.db


def test_plan_decides_without_recording(app: Autoops, settings: Settings) -> None:
    the_plan, decision = app.plan(RunRequest(action="health", env="local"))
    assert the_plan.action_name == "health"
    assert decision.to_dict()["outcome"]
    assert not settings.audit_path.exists(), "a plan records nothing"


@pytest.mark.parametrize(("request_", "error"), [
    (RunRequest(action="no-such-action", env="local"), ActionUnknownError),
    (RunRequest(action="health", env="nowhere"), EnvUnknownError),
])
def test_a_bad_request_is_refused_before_anything_is_registered(
        app: Autoops, settings: Settings, request_: RunRequest, error: type[Exception]) -> None:
    with pytest.raises(error):
        app.run(request_)
    assert app.context.db.runs.running() == []
    assert not settings.audit_path.exists() or "run.requested" not in settings.audit_path.read_text()


def _attempt(app: Autoops) -> Attempt:
    the_plan, _ = app.plan(RunRequest(action="health", env="local"))
    app.context.db.runs.register(RunRow("r-1", 1, "", "local", "health", "tester",
                                        NOW.isoformat(), RunState.RUNNING, None))
    return Attempt(app.context, "r-1", RunRequest(action="health", env="local"), the_plan, "tester")


def _records(settings: Settings) -> list[dict[str, object]]:
    return [json.loads(line) for line in settings.audit_path.read_text().splitlines()]


def test_a_refusal_is_recorded_once_and_ends_the_run(app: Autoops, settings: Settings) -> None:
    attempt = _attempt(app)
    with pytest.raises(BadInputError), attempt.refusing():
        raise BadInputError("no")
    finished = [r for r in _records(settings) if r["type"] == "run.finished"]
    assert len(finished) == 1
    data = finished[0]["data"]
    assert isinstance(data, dict)
    assert data["status"] == "bad_input"
    assert data["error"]["code"] == "AUTOOPS-BAD-INPUT"
    row = app.context.db.runs.get("r-1")
    assert row is not None
    assert row.status == RunState.REFUSED


def test_an_interruption_while_waiting_is_recorded(app: Autoops, settings: Settings) -> None:
    attempt = _attempt(app)
    with pytest.raises(KeyboardInterrupt), attempt.interruptible("waiting for a host lock"):
        raise KeyboardInterrupt
    (record,) = [r for r in _records(settings) if r["type"] == "run.interrupted"]
    assert record["data"] == {"reason": "interrupted while waiting for a host lock"}
    row = app.context.db.runs.get("r-1")
    assert row is not None
    assert row.status == RunState.INTERRUPTED


def test_the_audit_search_uses_the_injected_clock(app: Autoops, tmp_path: Path) -> None:
    app.context.record_admin("halt.engaged", "local", {"scope": "local"}, action="halt")
    assert len(app.audit.search(since="1h")) == 1  # recorded at NOW, searched from NOW - 1h
    later = Autoops(app.settings, clock=lambda: NOW.replace(year=2027))
    assert later.audit.search(since="1h") == []
    with pytest.raises(BadInputError):
        app.audit.search(since="yesterday")
