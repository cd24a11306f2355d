from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from autoops.secrets.redact import MASK, Redactor


def test_secret_named_keys_are_masked() -> None:
    data = {"db_password": "x1",  # pragma: allowlist secret
            "api_key": "k", "token": None, "nested": [{"secret": 1}],
            "service": "nginx", "become_pass": "p", "password_set": True}
    out = Redactor()(data)
    assert out["db_password"] == MASK
    assert out["api_key"] == MASK
    assert out["token"] is None
    assert out["nested"][0]["secret"] == MASK
    assert out["service"] == "nginx"
    assert out["password_set"] is True


def test_known_values_are_masked_everywhere_including_escaped_forms() -> None:
    secret = 'p@ss"w\\ord'
    red = Redactor([secret])
    text = json.dumps({"msg": f"failed with {secret}"})
    assert secret not in red(text)
    assert json.dumps(secret)[1:-1] not in red(text)
    assert red({"a": [f"x{secret}y"]}) == {"a": [f"x{MASK}y"]}


def test_short_values_are_not_used_as_needles() -> None:
    assert Redactor(["ab"])("abc") == "abc"


@given(st.text(min_size=4, max_size=30), st.text(max_size=30), st.text(max_size=30))
def test_a_registered_secret_never_survives(secret: str, before: str, after: str) -> None:
    red = Redactor([secret])
    assert secret not in red(before + secret + after) or secret in MASK


@given(st.text(min_size=4, max_size=30).filter(lambda s: s not in MASK))
def test_quoted_and_escaped_forms_never_survive(secret: str) -> None:
    red = Redactor([secret])
    for form in (json.dumps(secret), json.dumps(json.dumps(secret)), repr(secret),
                 json.dumps({"msg": [secret]}, ensure_ascii=False)):
        assert secret not in red(form)
        assert json.dumps(secret)[1:-1] not in red(form) or json.dumps(secret)[1:-1] in MASK


def test_python_repr_forms_in_error_messages_are_masked() -> None:
    secret = "it's \"quoted\""
    message = f"Task failed: {[secret]!r}"
    assert Redactor([secret])(message) == f"Task failed: ['{MASK}']"
