"""Alerts as people handle them: findings kept in state.db, acknowledged, silenced, audited."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from autoops.engine import Autoops
from autoops.exits import ExitStatus
from autoops.settings import Settings
from autoops.watch.findings import FindingKey, Reading, Severity
from tests.conftest import run_cli

START = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
DISK = FindingKey("local", "localhost", "disk", "/var")


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def feed(app: Autoops, pattern: str, clock: Clock, every: timedelta = timedelta(hours=1),
         key: FindingKey = DISK) -> list[str]:
    """Readings as a watch run gives them; returns the notices, as "INDEX KIND"."""
    said = []
    for index, char in enumerate(pattern):
        step = app.alerts.observe(key, Reading(ok=char == ".", at=clock.now,
                                               severity=Severity.CRITICAL,
                                               summary="/var 97% full (threshold 90%)"))
        if step.notice is not None:
            said.append(f"{index} {step.notice}")
        clock.now += every
    return said


def audit(settings: Settings) -> list[dict[str, object]]:
    if not settings.audit_path.exists():
        return []
    return [json.loads(line) for line in settings.audit_path.read_text().splitlines()]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(settings: Settings, clock: Clock) -> Autoops:
    return Autoops(settings, clock=clock)


def test_state_survives_a_restart_and_the_recovery_still_goes_out(
        settings: Settings, clock: Clock) -> None:
    """An incident that fired under one autoops resolves under the next: one recovery."""
    assert feed(Autoops(settings, clock=clock), "www", clock) == ["2 firing"]
    assert feed(Autoops(settings, clock=clock), "..", clock) == ["1 resolved"]


def test_an_acknowledged_alert_is_not_repeated_and_the_ack_is_audited(
        app: Autoops, settings: Settings, clock: Clock) -> None:
    feed(app, "www", clock)
    listed = run_cli(settings, "alerts", "list", "--json")
    assert listed.status == ExitStatus.OK
    (alert,) = json.loads(listed.out)["alerts"]
    assert (alert["id"], alert["state"], alert["severity"]) == (DISK.id, "firing", "critical")
    acked = run_cli(settings, "alerts", "ack", DISK.id, "--reason", "INC-7 cleaning /var",
                    "--actor", "alice", "--json")
    assert acked.status == ExitStatus.OK, acked.err
    assert json.loads(acked.out)["acked_by"] == "alice"
    (record,) = [r for r in audit(settings) if r["type"] == "alert.acked"]
    assert record["actor"] == "alice"
    assert record["data"]["alert"] == DISK.id  # type: ignore[index]
    assert feed(app, "wwwwwwww..", clock) == ["9 resolved"], "no repeat after the ack"


def test_only_a_firing_alert_can_be_acknowledged(app: Autoops, settings: Settings,
                                                 clock: Clock) -> None:
    feed(app, "w", clock)  # pending
    result = run_cli(settings, "alerts", "ack", DISK.id, "--reason", "early")
    assert result.status == ExitStatus.BAD_INPUT
    assert "AUTOOPS-ALERT-NOT-FIRING" in result.err
    assert [r for r in audit(settings) if r["type"] == "alert.acked"] == []


def test_an_unknown_alert_and_a_silence_of_a_month_are_refused(app: Autoops,
                                                                settings: Settings,
                                                                clock: Clock) -> None:
    unknown = run_cli(settings, "alerts", "show", "f-000000000000")
    assert unknown.status == ExitStatus.BAD_INPUT
    assert "AUTOOPS-ALERT-UNKNOWN" in unknown.err
    feed(app, "www", clock)
    month = run_cli(settings, "alerts", "silence", DISK.id, "--for", "30d", "--reason", "later")
    assert month.status == ExitStatus.BAD_INPUT
    assert "longer than 7 days" in month.err
    assert [r for r in audit(settings) if r["type"] == "alert.silenced"] == []


def test_a_silence_keeps_it_quiet_and_it_is_said_once_the_silence_ends(
        app: Autoops, settings: Settings, clock: Clock) -> None:
    feed(app, "w", clock)  # at 09:00; the silence runs 10:00-13:00 (the injected clock)
    assert app.alerts.silence(DISK.id, "3h", "maintenance", "carol")["silenced_until"]
    assert feed(app, "wwwww", clock) == ["3 firing"]  # fires at 11:00, said at 13:00
    silenced = run_cli(settings, "alerts", "silence", DISK.id, "--for", "3h", "--reason",
                       "again", "--json")
    assert silenced.status == ExitStatus.OK, silenced.err
    unsilenced = run_cli(settings, "alerts", "unsilence", DISK.id, "--reason", "done",
                         "--json")
    assert unsilenced.status == ExitStatus.OK
    assert json.loads(unsilenced.out)["silenced_until"] is None
    types = [r["type"] for r in audit(settings)]
    assert types.count("alert.silenced") == 2
    assert types.count("alert.unsilenced") == 1


def test_a_watch_step_and_an_ack_at_the_same_time_both_count(app: Autoops,
                                                             clock: Clock) -> None:
    """Read-modify-write under one transaction: the ack is never written over."""
    feed(app, "www", clock)
    errors: list[BaseException] = []

    def watch() -> None:
        try:
            feed(app, "w" * 20, clock, every=timedelta(seconds=1))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=watch)
    thread.start()
    app.alerts.ack(DISK.id, "on it", "bob")
    thread.join()
    assert errors == []
    assert app.alerts.show(DISK.id)["acked_by"] == "bob"


def test_listing_shows_what_is_wrong_first_and_hides_what_is_fine(app: Autoops,
                                                                   clock: Clock) -> None:
    mem = FindingKey("local", "localhost", "memory")
    feed(app, "www", clock)
    feed(app, ".", clock, key=mem)
    assert [a["id"] for a in app.alerts.listing()] == [DISK.id]
    assert [a["id"] for a in app.alerts.listing(everything=True)] == [DISK.id, mem.id]
