"""``autoops heal`` on this machine: a real supervisord, real watch runs, real restarts.

A stopped ``autoops-demo`` fires; heal restarts it through the catalog's restart-service
(the gate and the audit as for any run); the next watch resolves it and the attempt
held. A service that keeps dying is healed up to the breaker, then escalated once to
the Telegram-compatible receiver, and not restarted again.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoops.engine import Autoops
from autoops.exits import ExitStatus
from autoops.settings import Settings
from autoops.state.heals import HealRow
from tests.conftest import VENV_BIN, run_cli, supervisor_pid
from tests.integration.receivers import Receiver

TOKEN = "555111:heal-test-token"


@pytest.fixture
def healing(settings: Settings, project: Path, supervisor: Path, receiver: Receiver) -> Settings:
    """local watching autoops-demo under the real supervisord, quick to fire and resolve."""
    (project / "inventories" / "local" / "group_vars" / "all" / "watch.yml").write_text(
        yaml.safe_dump({"watch_fail_after": 1, "watch_recover_after": 1,
                        "watch_services": [{"name": "autoops-demo", "manager": "supervisord"}]}))
    (project / "runbooks" / "service-down.yml").write_text(yaml.safe_dump({
        "description": "restart it", "match": {"check": "service", "severity": ["critical"]},
        "steps": [{"action": "restart-service", "params": {"service": {"from": "subject"}}}],
        "breaker": {"attempts": 2, "within": "1h"}, "verify_within": "1s"}))
    assert run_cli(settings, "secrets", "init", "--env", "local").status == ExitStatus.OK
    for name, value in (("notify_telegram_token", TOKEN), ("notify_telegram_chat_id", "9"),
                        ("notify_telegram_base_url", receiver.url)):
        assert run_cli(settings, "secrets", "set", "--env", "local", name,
                       stdin=value).status == ExitStatus.OK
    return settings


def ctl(supervisor: Path, *argv: str) -> None:
    subprocess.run([str(VENV_BIN / "supervisorctl"), "-c", str(supervisor), *argv],
                   check=True, capture_output=True)


def heal(settings: Settings) -> tuple[int, dict[str, Any]]:
    done = run_cli(settings, "heal", "--env", "local", "--json")
    return done.status, json.loads(done.out)


def watch(settings: Settings) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(run_cli(settings, "watch", "--env", "local", "--json").out)
    return doc


def test_a_stopped_service_is_restarted_and_the_fix_holds(healing: Settings,
                                                          supervisor: Path) -> None:
    ctl(supervisor, "stop", "autoops-demo")
    assert [a["subject"] for a in watch(healing)["firing"]] == ["autoops-demo"]
    status, doc = heal(healing)
    assert status == ExitStatus.OK, doc
    (attempt,) = doc["attempts"]
    assert (attempt["runbook"], attempt["outcome"]) == ("service-down", "verifying")
    (run,) = attempt["runs"]
    assert (run["action"], run["exit_status"]) == ("restart-service", 0)
    assert supervisor_pid(supervisor) > 0, "running again"
    assert watch(healing)["firing"] == []
    status, doc = heal(healing)
    assert [(s["attempt"], s["outcome"]) for s in doc["settled"]] == [
        (attempt["attempt"], "held")]
    assert doc["attempts"] == []
    audit = json.loads(run_cli(healing, "audit", "query", "--json").out)["records"]
    types = [r["type"] for r in audit]
    assert {"heal.started", "heal.finished"} <= set(types)
    assert any(r["type"] == "run.finished" and r["action"] == "restart-service" for r in audit)
    report = Autoops(healing).incidents.report(_only_alert(healing))
    assert [e["type"] for e in report["events"]] == [
        "alert.notified", "heal.started", "run.finished", "heal.finished", "alert.notified",
        "heal.finished"]
    whats = [e["what"] for e in report["events"]]
    assert whats[0].startswith("firing (critical)")
    assert "restart-service service=autoops-demo" in whats[1]
    assert "(restart-service) finished: ok, exit 0" in whats[2]
    assert whats[4].startswith("resolved")
    assert whats[5].endswith("held")
    assert report["markdown"].startswith("# Incident ")
    assert "## Timeline" in report["markdown"]


def _only_alert(settings: Settings) -> str:
    listed = json.loads(run_cli(settings, "alerts", "list", "--all", "--json").out)["alerts"]
    (found,) = [a["id"] for a in listed
                if (a["check"], a["subject"]) == ("service", "autoops-demo")]
    return str(found)


def test_the_incident_report_goes_to_a_file_or_says_why_not(healing: Settings,
                                                             supervisor: Path,
                                                             tmp_path: Path) -> None:
    ctl(supervisor, "stop", "autoops-demo")
    watch(healing)
    alert = _only_alert(healing)
    out = tmp_path / "INC-1.md"
    done = run_cli(healing, "incident", "report", alert, "--output", str(out))
    assert done.status == ExitStatus.OK, done.err
    assert out.read_text().startswith(f"# Incident {alert}: localhost service autoops-demo")
    missing = run_cli(healing, "incident", "report", alert, "--output",
                      str(tmp_path / "no" / "dir.md"))
    assert missing.status == ExitStatus.BAD_INPUT
    assert "cannot write" in missing.err
    unknown = run_cli(healing, "incident", "report", "f-nobody")
    assert unknown.status == ExitStatus.BAD_INPUT
    assert "AUTOOPS-ALERT-UNKNOWN" in unknown.err
    ctl(supervisor, "start", "autoops-demo")


def test_a_fix_that_does_not_hold_is_escalated_once_after_the_breaker(
        healing: Settings, supervisor: Path, receiver: Receiver) -> None:
    app = Autoops(healing)
    clock = [datetime.now(UTC)]
    app.context.clock = lambda: clock[0]
    outcomes = []
    for _ in range(4):
        ctl(supervisor, "stop", "autoops-demo")  # it dies again after every fix
        app.watch.watch("local")
        clock[0] += timedelta(seconds=5)  # past verify_within (1s): the last fix did not hold
        doc = app.healing.heal("local")
        outcomes.append(([s["outcome"] for s in doc["settled"]],
                         [a["outcome"] for a in doc["attempts"]]))
    assert outcomes == [
        ([], ["verifying"]),
        (["failed"], ["verifying"]),
        (["failed"], ["escalated"]),  # two heals within the hour: the breaker opens
        ([], []),  # told once for this incident; nothing restarts it again
    ]
    texts = [t for t in receiver.texts() if "need(s) a person" in t]
    assert len(texts) == 2, texts  # the failed fix, then the breaker (one message per heal run)
    assert "breaker open: 2 heals of localhost within 1h" in texts[-1]
    assert all(TOKEN not in t for t in receiver.texts())
    ctl(supervisor, "start", "autoops-demo")


def test_a_second_heal_of_one_environment_stops_at_once(healing: Settings) -> None:
    lock = healing.state_dir / "heal-local.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(["flock", str(lock), "sleep", "30"])
    try:
        for _ in range(50):
            if subprocess.run(["flock", "-n", str(lock), "true"], check=False).returncode:
                break
            subprocess.run(["sleep", "0.1"], check=True)
        done = run_cli(healing, "heal", "--env", "local")
        assert done.status == ExitStatus.BUSY
        assert "AUTOOPS-HEAL-BUSY" in done.err
    finally:
        holder.kill()
        holder.wait()


def test_a_heal_whose_autoops_died_is_interrupted_and_counts_for_the_breaker(
        healing: Settings) -> None:
    app = Autoops(healing)
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs: the healing process was killed
    now = datetime.now(UTC)
    row = HealRow("h-killed", "local", "localhost", "f-1", "service-down", now.isoformat(),
                  None, "running", {"finding": "localhost: service autoops-demo",
                                    "host": "localhost", "check": "service",
                                    "subject": "autoops-demo", "steps": [], "runs": []},
                  gone.pid, "1")
    app.context.db.heals.add(row)
    status, doc = heal(healing)
    assert status == ExitStatus.OK
    assert [(s["attempt"], s["outcome"]) for s in doc["settled"]] == [("h-killed", "interrupted")]
    (kept,) = app.context.db.heals.of_env("local")
    assert (kept.outcome, kept.ended is not None) == ("interrupted", True)


def test_an_environment_whose_policy_says_self_heal_heals_from_watch(
        healing: Settings, project: Path, supervisor: Path) -> None:
    policy = yaml.safe_load((project / "policy.yml").read_text())
    assert run_cli(healing, "watch", "--env", "local", "--json").status == ExitStatus.OK
    assert "heal" not in watch(healing), "off by default"
    policy["environments"]["local"]["self_heal"] = True
    (project / "policy.yml").write_text(yaml.safe_dump(policy))
    ctl(supervisor, "stop", "autoops-demo")
    doc = watch(healing)
    assert [a["subject"] for a in doc["firing"]] == ["autoops-demo"]
    assert [(a["runbook"], a["outcome"]) for a in doc["heal"]["attempts"]] == [
        ("service-down", "verifying")]
    assert supervisor_pid(supervisor) > 0
    assert watch(healing)["heal"]["settled"][0]["outcome"] == "held"


def test_a_runbook_for_other_groups_leaves_the_host_alone(healing: Settings, project: Path,
                                                          supervisor: Path) -> None:
    book = project / "runbooks" / "service-down.yml"
    doc = yaml.safe_load(book.read_text())
    doc["match"]["groups"] = ["web"]  # localhost is only in `ungrouped`
    book.write_text(yaml.safe_dump(doc))
    ctl(supervisor, "stop", "autoops-demo")
    watch(healing)
    assert heal(healing)[1]["attempts"] == []
    doc["match"]["groups"] = ["ungrouped"]
    book.write_text(yaml.safe_dump(doc))
    assert [a["outcome"] for a in heal(healing)[1]["attempts"]] == ["verifying"]
