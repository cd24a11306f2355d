"""Run tickets: only the state directory's key makes one, and it fits one run only."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoops.errors import StateError
from autoops.guard import grants, tickets

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


# -- execution nodes ---------------------------------------------------------------------

DIGEST = "sha256:" + "c" * 64
NOW = datetime(2026, 12, 7, 10, 15, tzinfo=UTC)


NODE = "node1"


def _signed(private: bytes, **changes: Any) -> str:
    return tickets.sign_node(private, **{**RUN, "content": DIGEST, "node": NODE,
                                         "expires": NOW + tickets.NODE_TICKET_TTL, **changes})


def test_a_node_ticket_is_the_controllers_signature_over_the_run_and_its_content() -> None:
    private, public = grants.generate_keypair()
    ticket = _signed(private)
    assert ticket.startswith(tickets.NODE_PREFIX)
    assert tickets.node_valid(public, ticket, **RUN, content=DIGEST, node=NODE, now=NOW)
    assert not tickets.node_valid(grants.generate_keypair()[1], ticket, **RUN, content=DIGEST,
                                  node=NODE, now=NOW), "another controller's signature"
    assert not tickets.node_valid(public, ticket, **RUN, content="sha256:" + "d" * 64,
                                  node=NODE, now=NOW)
    assert not tickets.node_valid(public, ticket, **RUN, content=DIGEST, node=NODE,
                                  now=NOW + tickets.NODE_TICKET_TTL + timedelta(seconds=1))
    later = ticket.replace(tickets.NODE_PREFIX + str(int((NOW + tickets.NODE_TICKET_TTL)
                                                         .timestamp())),
                           tickets.NODE_PREFIX + str(int(NOW.timestamp()) + 86400))
    assert not tickets.node_valid(public, later, **RUN, content=DIGEST, node=NODE, now=NOW), \
        "the expiry is signed too"


@pytest.mark.parametrize(("field", "value"), [
    ("run_id", "20261204T101500Z-00000000"), ("action", "deploy-rollback"),
    ("env", "production"), ("check_mode", True),
    ("params", {"app": "demo", "revision": "b" * 40}), ("hosts", ["web1"]),
])
def test_a_node_ticket_fits_no_other_run(field: str, value: Any) -> None:
    private, public = grants.generate_keypair()
    assert not tickets.node_valid(public, _signed(private), **{**RUN, field: value},
                                  content=DIGEST, node=NODE, now=NOW)


def test_a_node_ticket_holds_on_its_own_node_only() -> None:
    """A job signed for node1, replayed to node2 of the same environment: refused there."""
    private, public = grants.generate_keypair()
    ticket = _signed(private)
    assert tickets.node_valid(public, ticket, **RUN, content=DIGEST, node=NODE, now=NOW)
    assert not tickets.node_valid(public, ticket, **RUN, content=DIGEST, node="node2", now=NOW)


def test_a_node_reads_its_name_and_refuses_a_file_that_is_not_one(tmp_path: Path) -> None:
    assert tickets.node_name(tmp_path, "staging") is None
    (tmp_path / "node-trust").mkdir()
    (tmp_path / "node-trust" / "staging.name").write_text("node-2\n")
    assert tickets.node_name(tmp_path, "staging") == "node-2"
    for bad in ("", "Node2", "node2 node3", "-n", "a" * 33, "node2\nnode3"):
        (tmp_path / "node-trust" / "staging.name").write_text(bad)
        with pytest.raises(StateError):
            tickets.node_name(tmp_path, "staging")


@given(st.text(max_size=120))
def test_no_made_up_text_is_a_valid_node_ticket(text: str) -> None:
    assert not tickets.node_valid(PUBLIC, text, **RUN, content=DIGEST, node=NODE, now=NOW)


def test_a_node_takes_each_run_once_and_remembers_it_past_the_tickets_expiry(
        tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    expires = datetime.now(UTC) + tickets.NODE_TICKET_TTL
    assert tickets.first_use(seen, RUN["run_id"], expires)
    assert not tickets.first_use(seen, RUN["run_id"], expires), "a replayed job"
    assert tickets.first_use(seen, "20261204T101500Z-00000000", expires)
    assert (seen / RUN["run_id"]).stat().st_mtime > expires.timestamp()
    ticket = _signed(grants.generate_keypair()[0])
    assert tickets.expiry_of(ticket) == NOW + tickets.NODE_TICKET_TTL


def test_the_node_key_is_private_per_environment_and_made_once(tmp_path: Path) -> None:
    staging = tickets.ensure_node_key(tmp_path, "staging")
    assert (tmp_path / "node-keys" / "staging.key").stat().st_mode & 0o777 == 0o600
    assert tickets.ensure_node_key(tmp_path, "staging") == staging
    assert tickets.ensure_node_key(tmp_path, "production") != staging
    assert tickets.trusted_node_key(tmp_path, "staging") is None
    (tmp_path / "node-trust").mkdir()
    (tmp_path / "node-trust" / "staging.pub").write_bytes(grants.public_of(staging))
    assert tickets.trusted_node_key(tmp_path, "staging") == grants.public_of(staging)


PUBLIC = grants.generate_keypair()[1]
