"""The grant store: keys on disk, first sight, atomic uses and revocation."""

from __future__ import annotations

import dataclasses
import os
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoops.core.policy import Policy
from autoops.core.risk import Risk
from autoops.errors import (
    GrantExhaustedError,
    GrantExpiredError,
    GrantKeyError,
    GrantRevokedError,
    GrantTtlError,
    GrantUnknownError,
)
from autoops.guard import grants
from autoops.guard.grants import Grant
from autoops.guard.grantstore import GrantStore
from autoops.settings import Settings
from autoops.state.db import StateDB

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def store_for(settings: Settings, clock: Clock, policy: Policy | None = None) -> GrantStore:
    return GrantStore(settings, StateDB(settings.state_dir / "state.db"),
                      policy or Policy.load(settings.policy_path), clock)


@pytest.fixture
def store(settings: Settings, clock: Clock) -> GrantStore:
    settings.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    made = store_for(settings, clock)
    made.init_keys(["staging"])
    return made


def issue(store: GrantStore, **overrides: Any) -> tuple[Grant, str]:
    args: dict[str, Any] = {
        "env": "staging", "actions": ["restart-service"], "max_risk": Risk.MEDIUM,
        "hosts": None, "params": {}, "expires_in": timedelta(hours=1), "uses": 2,
        "break_glass": False, "reason": "INC-7", "issuer": "alice"}
    args.update(overrides)
    return store.create(**args)


def test_keys_private_0600_outside_the_project_public_inside(store: GrantStore) -> None:
    private, public = store.private_path("staging"), store.public_path("staging")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert not private.is_relative_to(store.settings.project_dir)
    assert public.parent == store.settings.project_dir / "grant-keys"
    assert b"PRIVATE" not in public.read_bytes()
    before = private.read_bytes()
    again = store.init_keys(["staging"])  # idempotent: never a new key
    assert again[0]["created"] is False
    assert private.read_bytes() == before


def test_a_public_key_without_its_private_key_is_never_replaced(store: GrantStore,
                                                               settings: Settings,
                                                               tmp_path: Path,
                                                               clock: Clock) -> None:
    elsewhere = dataclasses.replace(settings, config_dir=tmp_path / "other-config")
    with pytest.raises(GrantKeyError, match="private key is not on this machine"):
        store_for(elsewhere, clock).init_keys(["staging"])
    assert not (tmp_path / "other-config").exists()


def test_a_mismatched_key_pair_is_refused(store: GrantStore) -> None:
    store.public_path("staging").write_bytes(grants.generate_keypair()[1])
    with pytest.raises(GrantKeyError, match="does not match"):
        store.init_keys(["staging"])


def test_creating_needs_the_environments_key(store: GrantStore) -> None:
    with pytest.raises(GrantKeyError, match="no grant signing key for production"):
        issue(store, env="production")


def test_the_policy_ceiling_applies_when_creating(store: GrantStore) -> None:
    with pytest.raises(GrantTtlError):
        issue(store, max_risk=Risk.DESTRUCTIVE, expires_in=timedelta(hours=3))


def test_uses_are_counted_until_exhausted(store: GrantStore, clock: Clock) -> None:
    grant, token = issue(store, uses=2)
    resolved, _ = store.resolve(grant.id)  # the id works once the machine has seen it
    assert resolved == grant
    assert store.use(grant, "run-1", clock()) == 1
    assert store.use(grant, "run-2", clock()) == 2
    with pytest.raises(GrantExhaustedError, match="used 2 of 2"):
        store.use(grant, "run-3", clock())
    assert store.show(token)["state"] == "exhausted"


def test_concurrent_runs_never_share_the_last_use(store: GrantStore, settings: Settings,
                                                  clock: Clock) -> None:
    grant, _ = issue(store, uses=3)
    barrier = threading.Barrier(8)
    results: list[str] = []

    def take(n: int) -> None:
        mine = store_for(settings, clock)  # its own connection, like another process
        barrier.wait()
        try:
            mine.use(grant, f"run-{n}", clock())
            results.append("used")
        except GrantExhaustedError:
            results.append("exhausted")

    threads = [threading.Thread(target=take, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["exhausted"] * 5 + ["used"] * 3


def test_revocation_is_final_and_named(store: GrantStore, clock: Clock) -> None:
    grant, token = issue(store, uses=None)
    store.use(grant, "run-1", clock())
    row = store.revoke(grant.id, "bob", "leaked in a ticket")
    assert (row.revoked_by, row.revoke_reason) == ("bob", "leaked in a ticket")
    with pytest.raises(GrantRevokedError, match="revoked by bob"):
        store.use(grant, "run-2", clock())
    again, _ = store.resolve(token)  # presenting the token again does not revive it
    with pytest.raises(GrantRevokedError):
        store.check(again, clock())
    with pytest.raises(GrantRevokedError, match="already revoked"):
        store.revoke(grant.id, "carol", "again")
    assert store.listing(active_only=True) == []
    assert [d["state"] for d in store.listing(active_only=False)] == ["revoked"]


def test_unknown_ids_are_refused(store: GrantStore) -> None:
    for text in ("g-000000000000", "g-nothex", "rm -rf /"):
        with pytest.raises(GrantUnknownError):
            store.revoke(text, "bob", "x")
    with pytest.raises(GrantUnknownError):
        store.resolve("g-000000000000")


def test_expiry_and_a_tightened_policy(store: GrantStore, clock: Clock,
                                       settings: Settings) -> None:
    grant, _ = issue(store, max_risk=Risk.HIGH, expires_in=timedelta(hours=6))
    store.check(grant, clock())
    doc = yaml.safe_load(settings.policy_path.read_text())
    doc.setdefault("defaults", {}).setdefault("grants", {}).setdefault(
        "max_expires_in", {})["HIGH"] = "1h"
    doc["defaults"]["grants"]["max_expires_in"].update({"CRITICAL": "1h", "DESTRUCTIVE": "1h"})
    settings.policy_path.write_text(yaml.safe_dump(doc))
    tightened = store_for(settings, clock)
    with pytest.raises(GrantExpiredError, match="current ceiling of 1h"):
        tightened.check(grant, clock())
    clock.now += timedelta(hours=6)
    with pytest.raises(GrantExpiredError, match="expired at"):
        store.check(grant, clock())
    assert store.listing(active_only=False)[0]["state"] == "expired"


def test_the_state_directory_never_holds_a_private_key(store: GrantStore) -> None:
    issue(store)
    for path in store.settings.state_dir.rglob("*"):
        if path.is_file():
            assert b"PRIVATE KEY" not in path.read_bytes(), path
    assert os.access(store.private_path("staging"), os.R_OK)
