"""Run tickets: only the state directory's key makes one, and it fits one run only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoops.errors import StateError
from autoops.guard import tickets

RUN: dict[str, Any] = {"run_id": "20261204T101500Z-3fa9c1d2", "action": "deploy",
                       "env": "staging", "check_mode": False,
                       "params": {"app": "demo", "revision": "a" * 40},
                       "hosts": ["web1", "web2"]}


def test_the_key_is_made_once_private_and_then_reused(tmp_path: Path) -> None:
    first = tickets.ensure_key(tmp_path)
    assert (tmp_path / tickets.KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert tickets.ensure_key(tmp_path) == first == tickets.read_key(tmp_path)
    assert tickets.read_key(tmp_path / "elsewhere") is None


def test_a_key_others_can_read_is_refused(tmp_path: Path) -> None:
    tickets.ensure_key(tmp_path)
    (tmp_path / tickets.KEY_FILE).chmod(0o644)
    with pytest.raises(StateError, match="readable by others"):
        tickets.read_key(tmp_path)


def test_a_ticket_is_valid_for_its_own_run() -> None:
    key = os.urandom(32)
    ticket = tickets.issue(key, **RUN)
    assert ticket.startswith("aot1.")
    assert tickets.valid(key, ticket, **RUN)
    assert tickets.valid(key, ticket, **{**RUN, "hosts": ["web2", "web1"]}), "host order"
    assert not tickets.valid(os.urandom(32), ticket, **RUN), "another key's ticket"


@pytest.mark.parametrize(("field", "value"), [
    ("run_id", "20261204T101500Z-00000000"), ("action", "deploy-rollback"),
    ("env", "production"), ("check_mode", True),
    ("params", {"app": "demo", "revision": "b" * 40}),
    ("params", {"app": "demo", "revision": "a" * 40, "ansible_connection": "local"}),
    ("hosts", ["web1", "web2", "db1"]), ("hosts", ["web1.production.example.com"]),
])
def test_a_ticket_fits_no_other_run(field: str, value: Any) -> None:
    key = os.urandom(32)
    ticket = tickets.issue(key, **RUN)
    assert not tickets.valid(key, ticket, **{**RUN, field: value})


@given(st.text(max_size=80))
def test_no_made_up_text_is_a_valid_ticket(text: str) -> None:
    assert not tickets.valid(b"k" * 32, text, **RUN)
