"""The link to an execution node: the header, the job, the deadman, the lent identities."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoops import __version__
from autoops.run import remote

RUN_ID = "20261207T101500Z-3fa9c1d2"
LOAN = remote.Loan(age_key="AGE-SECRET-KEY-1XYZ", identities=("key one", "key two"))


def test_a_header_carries_the_run_and_its_loan() -> None:
    line = remote.header(RUN_ID, 1234, LOAN)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert remote.parse_header(line.rstrip(b"\n")) == (RUN_ID, 1234, LOAN)
    assert "AGE-SECRET" not in repr(LOAN), "a loan never shows in a repr"


def test_a_header_from_another_autoops_version_is_refused() -> None:
    data = json.loads(remote.header(RUN_ID, 1, LOAN))
    data["version"] = "0.0.0"
    with pytest.raises(remote.HeaderError, match=f"controller runs autoops 0.0.0, this node "
                                                 f"{__version__}"):
        remote.parse_header(json.dumps(data).encode())


@given(st.binary(max_size=200))
def test_anything_else_is_a_header_error(data: bytes) -> None:
    try:
        remote.parse_header(data)
    except remote.HeaderError:
        return
    pytest.fail("made-up bytes parsed as a header")  # pragma: no cover


def test_the_job_is_read_exactly_and_the_keepalives_are_left_for_the_deadman() -> None:
    job = os.urandom(300_000)
    read_end, write_end = os.pipe()
    def send() -> None:
        os.write(write_end, remote.header(RUN_ID, len(job), LOAN) + job)
        os.write(write_end, b"\n\n")

    writer = threading.Thread(target=send)
    writer.start()
    run_id, loan, got = remote.receive(read_end)
    writer.join()
    assert (run_id, loan, got) == (RUN_ID, LOAN, job)
    assert os.read(read_end, 10) == b"\n\n"
    os.close(read_end)
    os.close(write_end)


def test_a_session_that_ends_early_is_a_header_error() -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, remote.header(RUN_ID, 100, LOAN) + b"short")
    os.close(write_end)
    with pytest.raises(remote.HeaderError, match="95 bytes before the job's end"):
        remote.receive(read_end)
    os.close(read_end)


def _stopped_within(deadman_input: int, silence: float) -> str:
    said: list[str] = []
    done = threading.Event()

    def stop(why: str) -> None:
        said.append(why)
        done.set()

    remote.Deadman(deadman_input, stop, lambda: None, silence=silence).start()
    assert done.wait(30), "the deadman never fired"
    return said[0]


def test_the_deadman_fires_when_the_controller_hangs_up() -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b"\n")
    os.close(write_end)
    assert _stopped_within(read_end, 60) == "the controller closed the session"
    os.close(read_end)


def test_the_deadman_fires_when_the_controller_goes_silent() -> None:
    read_end, write_end = os.pipe()
    assert _stopped_within(read_end, 0.5).startswith("no word from the controller")
    os.close(read_end)
    os.close(write_end)


def test_a_run_that_does_not_stop_is_killed_after_the_grace() -> None:
    read_end, write_end = os.pipe()
    os.close(write_end)
    killed = threading.Event()
    remote.Deadman(read_end, lambda _why: None, killed.set, silence=60, grace=0.5).start()
    assert killed.wait(30)
    os.close(read_end)


def test_keepalives_hold_the_deadman_off() -> None:
    read_end, write_end = os.pipe()
    fired = threading.Event()
    deadman = remote.Deadman(read_end, lambda _why: fired.set(), lambda: None, silence=1.5)
    deadman.start()
    for _ in range(6):
        os.write(write_end, b"\n")
        time.sleep(0.5)
    assert not fired.is_set()
    deadman.disarm()
    os.close(write_end)
    os.close(read_end)


def test_lent_identities_live_in_an_agent_of_the_run_and_nowhere_on_disk(tmp_path: Path) -> None:
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lent", "-f", str(key)],
                   check=True)
    text = key.read_text()
    key.unlink()
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    environ = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    agent, sock = remote.lend_identities([text], run_dir, environ)
    assert agent is not None
    try:
        listed = subprocess.run(["ssh-add", "-l"], env={**environ, "SSH_AUTH_SOCK": sock},
                                capture_output=True, text=True, check=True).stdout
        assert "lent" in listed
        on_disk = [p for p in tmp_path.rglob("*") if p.is_file() and "PRIVATE KEY" in
                   p.read_bytes().decode(errors="replace")]
        assert on_disk == []
    finally:
        agent.kill()
        agent.wait()


def test_a_node_told_nonsense_answers_in_the_worker_stream_and_runs_nothing(
        tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-I", "-m", "autoops.node", "serve"],
                          input=b"GET / HTTP/1.0\n\n", capture_output=True, timeout=60,
                          check=False, env={**os.environ, "HOME": str(tmp_path)})
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0]["status"] == "error"
    assert "does not start with an autoops header" in lines[0]["job_explanation"]
    assert lines[-2] == {"eof": True}
    assert lines[-1]["autoops_node"]["status"] == "error"


def test_node_cancel_refuses_what_is_not_a_run_id() -> None:
    done = subprocess.run([sys.executable, "-I", "-m", "autoops.node", "cancel",
                           "x; rm -rf /"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "not a run id" in done.stdout
