from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from autoops.cli.main import build_parser, vm_safe_argv
from autoops.errors import BadInputError


@pytest.mark.parametrize(("argv", "expected"), [
    (["restart", "web1", "service=nginx", "--env", "staging"],
     ["run", "restart", "--env", "staging", "--limit", "web1", "--one-host", "-p", "service=nginx"]),
    (["health", "localhost"], ["run", "health", "--env", "local", "--limit", "localhost",
                               "--one-host"]),
    (["backup", "db1", "--check", "--json"],
     ["run", "backup", "--env", "local", "--limit", "db1", "--one-host", "--check", "--json"]),
])
def test_vm_safe_translates_to_autoops_run(argv: list[str], expected: list[str]) -> None:
    assert vm_safe_argv(argv) == expected


@pytest.mark.parametrize("argv", [[], ["health"], ["health", "web:&db"], ["health", "web*"],
                                  ["health", "h", "--env"], ["health", "h", "--force"],
                                  ["--help"]])
def test_vm_safe_refuses_what_is_not_one_host(argv: list[str]) -> None:
    with pytest.raises(BadInputError):
        vm_safe_argv(argv)


def test_vm_safe_never_defaults_to_production() -> None:
    assert vm_safe_argv(["restart", "h"])[3] == "local"


@pytest.mark.parametrize("argv", [["run"], ["run", "health"], ["plan", "x", "--env"],
                                  ["audit"], ["frobnicate"], ["audit", "tail", "-n", "x"]])
def test_usage_errors_are_bad_input(argv: list[str]) -> None:
    with pytest.raises(BadInputError):
        build_parser().parse_args(argv)


_LIGHT = """
import io, sys
from autoops.cli.main import program
out = io.StringIO()
status = program(sys.argv[1:], out, io.StringIO(), io.StringIO())
heavy = sorted(m for m in ("autoops.engine", "jsonschema", "ansible_runner", "ansible",
                           "autoops.audit.log", "cryptography") if m in sys.modules)
print(status, ",".join(heavy))
"""


@pytest.mark.parametrize("argv", [["list"], ["show", "health"], ["list", "--json"]])
def test_reading_the_allowlist_builds_no_engine(tmp_path: Path, argv: list[str]) -> None:
    """``list`` and ``show`` load the catalog (and policy), not the engine; once a catalog's
    bytes were checked, not even JSON Schema (checked again if one byte changes)."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path),
           "AUTOOPS_STATE_DIR": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "c")}
    first, second = (subprocess.run([sys.executable, "-c", _LIGHT, *argv], env=env,
                                    capture_output=True, text=True, check=True).stdout.split()
                     for _ in range(2))
    assert first[0] == second[0] == "0"
    assert "autoops.engine" not in first[1:] + second[1:]
    assert second[1:] == [], f"{argv} imported {second[1:]}"
