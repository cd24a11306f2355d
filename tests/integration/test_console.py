"""The console shows host and user data, never obeys it: a real run on hostile names."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from autoops.cli.render import visible
from autoops.exits import ExitStatus
from autoops.settings import Settings
from tests.conftest import run_cli

pytestmark = pytest.mark.integration

FORGED = "run 20261122T000000Z-deadbeef: OK (exit 0)"
# Clears the screen, homes the cursor, forges a summary line and retitles the window.
SCREEN_WIPER = f"\x1b[2J\x1b[H\n{FORGED}\x1b]0;pwned\x07"
# No line break, so du reports it whole: colour, OSC title, bidi override, C1 CSI, zero width.
RECOLOURER = "\x1b]0;pwned\x07\x1b[31m\u202eevil\u2066\x9b2J\u200b"
# What a terminal could act on: C0 but the renderer's line breaks, DEL, C1, bidi and
# zero-width format characters, line/paragraph separators, the BOM.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
SUMMARY = re.compile(r"run \d{8}T\d{6}Z-[0-9a-f]{8}: OK \(exit 0\)")


def hostile_tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"  # the path parameter itself must match ^/[A-Za-z0-9._/-]*$
    for name in (SCREEN_WIPER, RECOLOURER):
        (root / name).mkdir(parents=True)
        (root / name / "blob").write_bytes(b"x" * 64_000)
    return root


def disk_report(settings: Settings, root: Path, *flags: str) -> tuple[int, str, str]:
    result = run_cli(settings, "run", "disk-report", "--env", "local", "-p", f"path={root}", *flags)
    return result.status, result.out, result.err


def largest(out: str) -> list[str]:
    doc: dict[str, Any] = json.loads(out)
    return [entry["path"] for entry in doc["reports"]["localhost"][-1]["largest"]]


def test_a_hostile_directory_name_cannot_act_on_the_console(settings: Settings,
                                                          tmp_path: Path) -> None:
    root = hostile_tree(tmp_path)
    status, out, err = disk_report(settings, root)
    assert status is ExitStatus.OK, out + err
    assert not RAW.findall(out + err), out + err
    runs = [line for line in out.splitlines() if line.startswith("run ")]
    assert len(runs) == 1, out
    assert SUMMARY.fullmatch(runs[0]), out
    assert out.splitlines()[-1] == runs[0]
    assert "deadbeef" not in runs[0]
    assert not [line for line in out.splitlines() if line.lstrip().startswith(FORGED)]
    # shown, escaped, each on its own line of the report
    assert f"  {visible(root / RECOLOURER)}\n" in out
    assert f"  {visible(root)}/\\x1b[2J\\x1b[H" in out

    status, out, err = disk_report(settings, root, "--json")
    assert status is ExitStatus.OK, err
    assert not RAW.findall(out)  # JSON escapes them itself …
    assert str(root / RECOLOURER) in largest(out)  # … and carries the exact name


def test_the_audit_trail_of_a_hostile_run_prints_inert(settings: Settings, tmp_path: Path) -> None:
    status, out, err = disk_report(settings, hostile_tree(tmp_path))
    assert status is ExitStatus.OK, out + err
    # free text an operator types is recorded as typed (raw), and shown inert
    for argv in (["halt", "--env", "local", "--wait", "0"], ["resume", "--env", "local"]):
        done = run_cli(settings, *argv, "--reason", SCREEN_WIPER)
        assert done.status is ExitStatus.OK, done.out + done.err
        assert not RAW.findall(done.out + done.err), done.out + done.err
    run_id = next(ln for ln in out.splitlines() if SUMMARY.fullmatch(ln)).split()[1].rstrip(":")
    for argv in (["audit", "tail", "-n", "100"], ["audit", "show", run_id]):
        shown = run_cli(settings, *argv)
        assert shown.status is ExitStatus.OK, shown.err
        assert not RAW.findall(shown.out + shown.err), shown.out
        assert all(re.match(r" *\d+ \d{4}-\d\d-\d\dT", line) for line in shown.out.splitlines())
    tail = run_cli(settings, "audit", "tail", "-n", "100").out
    assert "reason=\\x1b[2J\\x1b[H" in tail
    records = json.loads(run_cli(settings, "audit", "tail", "-n", "100", "--json").out)["records"]
    assert any("\x1b]0;pwned\x07" in str(r["data"].get("reason")) for r in records)


def test_json_carries_a_name_with_a_line_break_exactly(settings: Settings, tmp_path: Path) -> None:
    root = hostile_tree(tmp_path)
    status, out, err = disk_report(settings, root, "--json")
    assert status is ExitStatus.OK, err
    assert str(root / SCREEN_WIPER) in largest(out)
