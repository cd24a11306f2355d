"""watch_facts asks a real supervisord over its unix socket: all programs, no supervisorctl."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import REPO, VENV_BIN, supervisor_pid
from tests.unit.test_filters import _load
from tests.unit.test_watch_readers import FakeRun

readers = _load(REPO / "collections/ansible_collections/autoops/ops/plugins/module_utils/"
                       "watch_readers.py", "watch_readers")


def test_a_real_supervisord_answers_over_its_socket(supervisor: Path) -> None:
    assert readers.supervisor_socket(str(supervisor)) == str(supervisor.parent /
                                                             "supervisor.sock")
    run = FakeRun({})  # supervisorctl "is not installed": the socket must do
    asked: dict[str, Any] = {}
    demo = readers.read_service({"name": "autoops-demo", "manager": "supervisord",
                                 "supervisor_config": str(supervisor)}, run, False, asked)
    gone = readers.read_service({"name": "gone", "manager": "supervisord",
                                 "supervisor_config": str(supervisor)}, run, False, asked)
    assert (demo["known"], demo["state"], demo["marker"]) == (
        True, "RUNNING", str(supervisor_pid(supervisor)))
    assert gone["detail"].endswith("supervisord has no program gone")
    assert run.calls == []
    subprocess.run([str(VENV_BIN / "supervisorctl"), "-c", str(supervisor), "stop",
                    "autoops-demo"], check=True, capture_output=True)
    stopped = readers.read_service({"name": "autoops-demo", "manager": "supervisord",
                                    "supervisor_config": str(supervisor)}, run, False)
    assert (stopped["known"], stopped["running"], stopped["state"], stopped["marker"]) == (
        True, False, "STOPPED", None)


def test_a_dead_socket_falls_back_to_supervisorctl(tmp_path: Path) -> None:
    conf = tmp_path / "supervisord.conf"
    conf.write_text(f"[supervisorctl]\nserverurl=unix://{tmp_path}/gone.sock\n")
    (tmp_path / "gone.sock").write_text("")  # exists, but nobody listens: not a socket
    run = FakeRun({"supervisorctl": (0, "app   RUNNING   pid 9, uptime 0:00:09\n", "")})
    got = readers.read_service({"name": "app", "supervisor_config": str(conf)}, run, False)
    assert (got["known"], got["marker"]) == (True, "9")
    assert run.calls == [["supervisorctl", "-c", str(conf), "status"]]
