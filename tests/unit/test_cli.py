from __future__ import annotations

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
