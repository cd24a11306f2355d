"""Reading a stopped rollout from a deploy run's host reports."""

from __future__ import annotations

from typing import Any

from autoops.deploy import rollout
from autoops.errors import DeployRolledBackError
from autoops.exits import ExitStatus


def result(host: str, **report: Any) -> dict[str, Any]:
    return {"host": host, "status": "ok", "report": {"kind": "deploy", "app": "demo",
                                                      "operation": "deploy", **report}}


def test_a_verified_rollout_is_not_a_stopped_one() -> None:
    assert rollout.stopped([result("web1", revision="b" * 40),
                            {"host": "web1", "report": None}]) is None


def test_the_failed_host_its_check_and_what_went_back_are_named() -> None:
    results = [
        result("web1", revision="b" * 40),  # the canary's first report, then its return
        result("web1", rolled_back="True", failed_here="True", revision="a" * 40,
               attempted="b" * 40, failed_check="Fail the verification when the probe never",
               failed_msg="probe GET http://127.0.0.1/up expected 200\n  last got 500"),
        result("web2", rolled_back=True, failed_here=False, revision="a" * 40),
        result("web3", rolled_back="False", failed_here="False", revision="b" * 40,
               not_returned="not returning demo: its migration marker went from 1 to 2"),
    ]
    found = rollout.stopped(results)
    assert found is not None
    assert (found.failed_host, found.attempted) == ("web1", "b" * 40)
    assert found.output == "probe GET http://127.0.0.1/up expected 200 last got 500"
    error = found.error("r-1", hosts=["web1", "web2", "web3", "web4"])
    assert isinstance(error, DeployRolledBackError)
    assert error.code == "AUTOOPS-DEPLOY-ROLLED-BACK"
    assert error.status is ExitStatus.PLAYBOOK_FAILED
    text = error.message
    assert "deploy of demo bbbbbbbbbbbb rolled back: web1 failed" in text
    assert "returned web1 to aaaaaaaaaaaa, web2 to aaaaaaaaaaaa" in text
    assert "NOT returned: web3 (not returning demo: its migration marker went from 1 to 2)" in text
    assert "never changed: web4" in text
    assert error.details["rollout"]["returned"][2]["rolled_back"] is False


def test_a_rollout_stopped_by_an_unreachable_host_still_reports_the_returns() -> None:
    found = rollout.stopped([result("web2", rolled_back=True, revision="a" * 40)])
    assert found is not None
    assert (found.failed_host, found.failed_check) == ("", "unknown")


def test_reports_keep_each_hosts_newest_deploy_report() -> None:
    newest = rollout.reports([result("web1", revision="a" * 40),
                              {"host": "web1", "report": {"kind": "service"}},
                              result("web1", revision="b" * 40),
                              result("web2", revision="c" * 40)])
    assert {h: r["revision"] for h, r in newest.items()} == {"web1": "b" * 40, "web2": "c" * 40}
