"""Grant tokens: signatures, strict parsing, expiry and scope, attacked with hypothesis."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from autoops.core.risk import Risk
from autoops.errors import (
    GrantError,
    GrantExpiredError,
    GrantForgedError,
    GrantKeyError,
    GrantMalformedError,
    GrantScopeError,
    GrantTtlError,
)
from autoops.guard import grants
from autoops.guard.grants import Grant

NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
PRIVATE, PUBLIC = grants.generate_keypair()
OTHER_PRIVATE, OTHER_PUBLIC = grants.generate_keypair()
KEYS = {"staging": PUBLIC}


def make(**overrides: Any) -> Grant:
    args: dict[str, Any] = {
        "env": "staging", "actions": ["restart-service"], "max_risk": Risk.MEDIUM, "hosts": None,
        "params": {}, "issued": NOW, "expires_in": timedelta(hours=2), "uses": 1,
        "break_glass": False, "reason": "INC-42 nginx wedged", "issuer": "alice",
        "key_id": grants.key_id(PUBLIC), "ceiling": timedelta(hours=24)}
    args.update(overrides)
    return grants.new_grant(**args)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def resign(doc: Mapping[str, Any], private: bytes = PRIVATE, *, canonical: bool = True) -> str:
    """A token for an arbitrary payload, signed properly: parsing must still judge it."""
    key = serialization.load_pem_private_key(private, password=None)
    assert isinstance(key, Ed25519PrivateKey)
    payload = (json.dumps(doc, sort_keys=True, separators=(",", ":")) if canonical
               else json.dumps(doc, indent=1)).encode()
    return f"aog1.{b64(payload)}.{b64(key.sign(payload))}"


# -- signatures and format ------------------------------------------------------------


def test_a_signed_grant_verifies_to_itself() -> None:
    grant = make(actions=["restart-service", "deploy"], hosts="web*, db1",
                 params={"service": ("nginx", "redis")}, uses=None)
    token = grants.sign(grant, PRIVATE)
    assert token.startswith("aog1.")
    assert grants.verify(token, KEYS) == grant
    assert grants.verify(f"  {token}\n", KEYS) == grant
    assert grant.actions == ("deploy", "restart-service")
    assert grant.hosts == "web*,db1"
    assert grant.issued == NOW
    assert grant.expires - grant.issued == timedelta(hours=2)


def test_ids_are_random_and_well_formed() -> None:
    ids = {make().id for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == 14 and i.startswith("g-") for i in ids)


def test_another_key_is_a_forgery_even_when_it_names_the_right_key() -> None:
    grant = make()
    with pytest.raises(GrantKeyError, match="not the one the grant names"):
        grants.sign(grant, OTHER_PRIVATE)
    with pytest.raises(GrantForgedError, match="signature does not verify"):
        grants.verify(resign(grant.to_dict(), OTHER_PRIVATE), KEYS)  # names staging's key
    other = make(key_id=grants.key_id(OTHER_PUBLIC))
    with pytest.raises(GrantForgedError, match="signed by another key"):
        grants.verify(grants.sign(other, OTHER_PRIVATE), KEYS)


def test_a_grant_for_an_environment_without_a_key_is_refused() -> None:
    token = grants.sign(make(env="production"), PRIVATE)
    with pytest.raises(GrantKeyError, match=r"grant-keys/production\.pub"):
        grants.verify(token, KEYS)


def test_edited_payloads_fail_the_signature() -> None:
    grant = make()
    _, payload, signature = grants.parse_token(grants.sign(grant, PRIVATE))
    for field, value in (("max_risk", "DESTRUCTIVE"), ("uses", 99), ("hosts", "*"),
                         ("expires", "2027-01-01T00:00:00Z"), ("actions", ["prune-backups"])):
        doc = {**json.loads(payload), field: value}
        body = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        with pytest.raises(GrantForgedError):
            grants.verify(f"aog1.{b64(body)}.{b64(signature)}", KEYS)


def test_non_canonical_payloads_are_refused_even_when_signed() -> None:
    with pytest.raises(GrantMalformedError, match="canonical"):
        grants.parse_token(resign(make().to_dict(), canonical=False))


def test_non_canonical_base64_is_refused() -> None:
    token = grants.sign(make(), PRIVATE)
    prefix, payload, signature = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"  # pragma: allowlist secret
    assert len(signature) == 86  # 64 bytes: the last character carries 4 unused bits
    last = alphabet[alphabet.index(signature[-1]) ^ 1]
    with pytest.raises(GrantMalformedError, match="canonical"):
        grants.parse_token(f"{prefix}.{payload}.{signature[:-1]}{last}")


@pytest.mark.parametrize(("mutate", "needle"), [
    (lambda d: {**d, "extra": 1}, "expected fields"),
    (lambda d: {k: v for k, v in d.items() if k != "uses"}, "expected fields"),
    (lambda d: {**d, "v": 2}, "expected fields"),
    (lambda d: {**d, "id": "g-XYZ"}, "12 hex"),
    (lambda d: {**d, "max_risk": "EXTREME"}, "bad value"),
    (lambda d: {**d, "actions": []}, "non-empty"),
    (lambda d: {**d, "actions": ["b", "a"]}, "sorted"),
    (lambda d: {**d, "actions": "deploy"}, "list"),
    (lambda d: {**d, "uses": 0}, "at least 1"),
    (lambda d: {**d, "uses": True}, "at least 1"),
    (lambda d: {**d, "break_glass": "yes"}, "true or false"),
    (lambda d: {**d, "expires": d["issued"]}, "expires before"),
    (lambda d: {**d, "expires": "tomorrow"}, "YYYY-MM-DD"),
    (lambda d: {**d, "reason": "a\nb"}, "one line"),
    (lambda d: {**d, "reason": ""}, "non-empty"),
    (lambda d: {**d, "hosts": "web:&db"}, "globs only"),
    (lambda d: {**d, "params": {"Service": ["x"]}}, "invalid"),
    (lambda d: {**d, "params": {"service": ["x", "x"]}}, "invalid"),
    (lambda d: {**d, "params": []}, "mapping"),
])
def test_strict_payloads(mutate: Any, needle: str) -> None:
    with pytest.raises(GrantMalformedError, match=needle):
        grants.verify(resign(mutate(make().to_dict())), KEYS)


@pytest.mark.parametrize("token", [
    "", "   ", "g-0123456789ab", "aog1", "aog1..", "aog2.e30.e30", "aog1.e30.e30.e30",
    "aog1.!!!.e30", "aog1.e30", "aog1." + "A" * 9000 + ".e30", "aog1.bm90IGpzb24.e30",
    "aog1.W10.e30",  # [] is JSON, not a grant
])
def test_junk_tokens_are_malformed(token: str) -> None:
    with pytest.raises(GrantMalformedError):
        grants.parse_token(token)


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_parse_token_only_ever_says_malformed(text: str) -> None:
    with pytest.raises(GrantMalformedError):
        grants.parse_token(text)
    with pytest.raises(GrantMalformedError):
        grants.parse_token(f"aog1.{text}.{text}")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(sorted(grants._FIELDS)), json_values))
def test_signed_garbage_payloads_are_malformed_not_crashes(doc: dict[str, Any]) -> None:
    with pytest.raises(GrantError):
        grants.verify(resign(doc), KEYS)


@settings(max_examples=300)
@given(position=st.integers(min_value=0), replacement=st.sampled_from(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ "))
def test_any_single_character_change_is_refused(position: int, replacement: str) -> None:
    token = grants.sign(make(), PRIVATE)
    index = position % len(token)
    assume(token[index] != replacement)
    tampered = token[:index] + replacement + token[index + 1:]
    with pytest.raises((GrantMalformedError, GrantForgedError, GrantKeyError)):
        grants.verify(tampered, KEYS)


def test_keys_are_checked() -> None:
    assert grants.public_of(PRIVATE) == PUBLIC
    assert grants.key_id(PUBLIC).startswith("ed25519:")
    assert len(grants.key_id(PUBLIC)) == 24
    assert grants.key_id(PUBLIC) != grants.key_id(OTHER_PUBLIC)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_private = ec_key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
    ec_public = ec_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    for bad in (b"", b"not a key", ec_private):
        with pytest.raises(GrantKeyError):
            grants.public_of(bad)
    for bad in (b"", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", ec_public):
        with pytest.raises(GrantKeyError):
            grants.load_public(bad)


# -- time -----------------------------------------------------------------------------


def test_time_checks() -> None:
    grant = make(expires_in=timedelta(hours=2))
    ceiling = timedelta(hours=24)
    grants.check_time(grant, NOW, ceiling)
    grants.check_time(grant, grant.issued - timedelta(minutes=4), ceiling)  # clock skew
    grants.check_time(grant, grant.expires - timedelta(seconds=1), ceiling)
    with pytest.raises(GrantMalformedError, match="in the future"):
        grants.check_time(grant, grant.issued - timedelta(minutes=6), ceiling)
    with pytest.raises(GrantExpiredError, match="expired at"):
        grants.check_time(grant, grant.expires, ceiling)
    with pytest.raises(GrantExpiredError, match="current ceiling of 1h"):
        grants.check_time(grant, NOW, timedelta(hours=1))  # the policy was tightened since


def test_new_grants_respect_the_ceiling_they_are_given() -> None:
    with pytest.raises(GrantTtlError, match="above the 2h ceiling for a break-glass grant"):
        make(break_glass=True, expires_in=timedelta(hours=3), ceiling=timedelta(hours=2))
    with pytest.raises(GrantMalformedError, match="positive"):
        make(expires_in=timedelta(0))


# -- scope ----------------------------------------------------------------------------

names = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)
values = st.one_of(st.text(min_size=1, max_size=12), st.integers(-5, 99), st.booleans())


@st.composite
def runs(draw: st.DrawFn) -> dict[str, Any]:
    return {"env": draw(st.sampled_from(["staging", "production"])), "action": draw(names),
            "risk": draw(st.sampled_from(list(Risk))),
            "hosts": draw(st.lists(names, min_size=1, max_size=4, unique=True)),
            "params": draw(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
                                           values, max_size=3))}


def exact_grant(run: Mapping[str, Any]) -> Grant:
    """The narrowest grant that covers ``run``: its very facts, every parameter pinned."""
    params = {k: (grants.param_text(v),) for k, v in run["params"].items()}
    assume(all(p[0] and "," not in p[0] for p in params.values()))
    return make(env=run["env"], actions=[run["action"]], max_risk=run["risk"],
                hosts=",".join(run["hosts"]), params=params)


@settings(max_examples=200)
@given(runs())
def test_a_grant_built_from_a_run_covers_it(run: dict[str, Any]) -> None:
    grants.check_scope(exact_grant(run), **run)


@settings(max_examples=300)
@given(run=runs(), other=runs(), field=st.sampled_from(["env", "action", "risk", "hosts",
                                                         "params"]))
def test_changing_any_fact_leaves_the_grant(run: dict[str, Any], other: dict[str, Any],
                                            field: str) -> None:
    grant = exact_grant(run)
    changed = dict(run)
    if field == "risk":
        assume(run["risk"] < Risk.DESTRUCTIVE)
        changed["risk"] = Risk(run["risk"] + 1)
    elif field == "hosts":
        changed["hosts"] = [*run["hosts"], f"{max(run['hosts'], key=len)}x"]  # a new one
    elif field == "params":
        assume(run["params"])
        key = min(run["params"])
        assume(grants.param_text(other["params"].get(key, "~"))
               != grants.param_text(run["params"][key]))
        changed["params"] = {**run["params"], key: other["params"].get(key, "~")}
    else:
        assume(other[field] != run[field])
        changed[field] = other[field]
    assert not grants.covers(grant, **changed)
    with pytest.raises(GrantScopeError):
        grants.check_scope(grant, **changed)


def test_scope_details() -> None:
    grant = make(actions=["restart-service"], max_risk=Risk.HIGH, hosts="web*,db1",
                 params={"service": ("nginx", "redis")})
    ok: dict[str, Any] = {"env": "staging", "action": "restart-service", "risk": Risk.MEDIUM,
                          "hosts": ["web1", "web22", "db1"], "params": {"service": "redis"}}
    grants.check_scope(grant, **ok)  # a lower risk than the grant's ceiling is covered
    for change, needle in (({"hosts": ["web1", "db2"]}, "not db2"),
                           ({"hosts": []}, "without hosts"),
                           ({"params": {}}, "lacks"),
                           ({"params": {"service": "postgres"}}, "not 'postgres'"),
                           ({"risk": Risk.CRITICAL}, "up to HIGH")):
        with pytest.raises(GrantScopeError, match=needle):
            grants.check_scope(grant, **{**ok, **change})
    anywhere = make()
    assert grants.covers(anywhere, env="staging", action="restart-service", risk=Risk.LOW,
                         hosts=["any", "host"], params={"service": "x", "other": 1})


@pytest.mark.parametrize("hosts", ["all:!db", "~web.*", "web&db", "@file", "web db", "a/b"])
def test_ansible_patterns_are_not_globs(hosts: str) -> None:
    with pytest.raises(GrantMalformedError, match="globs only"):
        grants.host_globs(hosts)


def test_param_text_and_constraints() -> None:
    assert [grants.param_text(v) for v in (True, False, 3, "x", [1, "a"], {"b": 1, "a": 2})] == [
        "true", "false", "3", "x", '[1,"a"]', '{"a":2,"b":1}']
    assert grants.parse_param_constraints(["service=nginx,redis", "service=redis,db", "keep=3"]) == {
        "service": ("nginx", "redis", "db"), "keep": ("3",)}
    for bad in ("service", "service=", "service=a,,b", "Service=a", "=a"):
        with pytest.raises(GrantMalformedError, match="KEY=VALUE"):
            grants.parse_param_constraints([bad])
