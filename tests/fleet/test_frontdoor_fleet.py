"""AWX's way of running a catalog playbook, on the lab's SSH hosts, through the guard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fleet.conftest import Lab
from tests.integration.conftest import records
from tests.integration.test_frontdoor_guard import awx_job, of_type

pytestmark = pytest.mark.fleet


def test_an_awx_job_checks_every_lab_host_audited_under_the_awx_user(
        lab: Lab, tmp_path: Path) -> None:
    before = {r["run_id"] for r in of_type(lab.settings, "run.started")}
    rc, stats = awx_job(lab.settings, tmp_path, "lab", "health.yml", {})
    assert rc == 0, stats
    run_id = next(r["run_id"] for r in of_type(lab.settings, "run.started")
                  if r["run_id"] not in before)
    run = records(lab.settings, run_id)
    assert {r["actor"] for r in run} == {"alice@awx"}
    judged = {r["data"]["host"] for r in run if r["type"] == "task.result"
              and "Judge the reading" in r["data"]["task"]}
    assert judged == {"db1", "web1", "web2"}
    assert run[-1]["type"] == "run.finished"
    assert run[-1]["data"]["status"] == "ok"


def test_an_awx_inventory_pointing_a_host_at_another_machine_is_refused(
        lab: Lab, tmp_path: Path) -> None:
    """web1 in AWX's copy reaches db1's SSH port: the guard compares with inventories/lab."""
    ports: dict[str, Any] = {}

    def swap(hostvars: dict[str, Any]) -> None:
        ports.update(web1=hostvars["web1"]["ansible_port"], db1=hostvars["db1"]["ansible_port"])
        hostvars["web1"]["ansible_port"] = hostvars["db1"]["ansible_port"]

    before = len(of_type(lab.settings, "run.finished"))
    rc, _ = awx_job(lab.settings, tmp_path, "lab", "health.yml", {}, tamper=swap)
    assert rc != 0
    finished = of_type(lab.settings, "run.finished")[before:]
    assert [r["data"]["error"]["code"] for r in finished] == ["AUTOOPS-GUARD-REFUSED"]
    message = finished[0]["data"]["error"]["message"]
    assert f"host web1 reaches 127.0.0.1:{ports['db1']}" in message
    assert f"says 127.0.0.1:{ports['web1']}" in message
