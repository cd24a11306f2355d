from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from autoops.common import identity
from autoops.common.identity import Principal


def test_one_person_whatever_the_spelling() -> None:
    assert identity.same("Bob", "bob")
    assert identity.same("BOB", "\uff42\uff4f\uff42")  # full-width letters (NFKC)
    assert identity.same("stra\u00dfe", "STRASSE")  # case folding, not lower()
    assert not identity.same("bob", "bobby")
    assert not identity.same(None, "bob")
    assert not identity.same(None, None)


ACTOR = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,20}", fullmatch=True)


@given(ACTOR, ACTOR)
def test_actor_names_are_one_identity_exactly_when_equal_ignoring_case(a: str, b: str) -> None:
    assert identity.same(a, a.swapcase())
    assert identity.same(a, b) is (a.lower() == b.lower())


@given(ACTOR)
def test_full_width_spelling_is_the_same_identity(name: str) -> None:
    wide = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in name)
    assert identity.same(name, wide)


def test_principal_membership_by_user_or_group() -> None:
    alice = Principal("Alice", frozenset({"ops"}))
    assert alice.is_one_of(["alice"], [])
    assert alice.is_one_of([], ["OPS"])
    assert not alice.is_one_of(["bob"], ["dba"])


def test_unix_groups_only_for_real_users() -> None:
    assert "root" in identity.unix_groups("root")
    assert identity.unix_groups("no-such-user-autoops") == frozenset()


def test_a_front_doors_label_is_the_same_person() -> None:
    """alice@awx's request cannot be approved by Unix alice (nor alice@mcp's)."""
    assert identity.same("alice@awx", "alice")
    assert identity.same("Alice@Semaphore", "alice")
    assert identity.same("claude@mcp", "claude@awx")
    assert not identity.same("alice@awx", "bob")
    assert not identity.same("@awx", "")
