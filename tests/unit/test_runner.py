from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from autoops.run.runner import mark_unsafe, normalise, unsafe_extravars_yaml


class _TagLoader(yaml.SafeLoader):
    """Reads back what Ansible reads: every string must carry the !unsafe tag."""


def _unsafe(loader: yaml.SafeLoader, node: yaml.Node) -> tuple[str, str]:
    assert isinstance(node, yaml.ScalarNode)
    return ("UNSAFE", str(loader.construct_scalar(node)))


_TagLoader.add_constructor("!unsafe", _unsafe)


def test_every_string_is_tagged_unsafe() -> None:
    text = unsafe_extravars_yaml({"service": "{{ lookup('pipe','id') }}", "keep": 3,
                                  "flag": True, "nested": {"k": ["a", 1]}})
    loaded = yaml.load(text, Loader=_TagLoader)  # noqa: S506 - SafeLoader subclass
    assert loaded["service"] == ("UNSAFE", "{{ lookup('pipe','id') }}")
    assert loaded["keep"] == 3
    assert loaded["flag"] is True
    assert loaded["nested"]["k"] == [("UNSAFE", "a"), 1]


@given(st.text(max_size=80))
def test_any_text_round_trips_exactly(text: str) -> None:
    loaded = yaml.load(unsafe_extravars_yaml({"p": text}), Loader=_TagLoader)  # noqa: S506
    assert loaded["p"] == ("UNSAFE", text)


def test_mark_unsafe_keeps_types() -> None:
    marked = mark_unsafe({"a": ["x", 2, None, 1.5]})
    assert marked == {"a": ["x", 2, None, 1.5]}
    assert type(marked["a"][0]).__name__ == "_Unsafe"


def _event(kind: str, res: dict[str, Any], **data: Any) -> dict[str, Any]:
    return {"event": kind, "event_data": {"host": "h1", "task": "T", "task_action": "m",
                                          "res": res, "duration": 0.5, **data}}


def test_normalise_statuses() -> None:
    ok = normalise(_event("runner_on_ok", {"changed": False}))
    assert ok is not None
    assert ok.status == "ok"
    changed = normalise(_event("runner_on_ok", {"changed": True}))
    assert changed is not None
    assert changed.status == "changed"
    failed = normalise(_event("runner_on_failed", {"msg": "", "stderr": "boom", "rc": 2}))
    assert failed is not None
    assert (failed.status, failed.msg, failed.rc) == ("failed", "boom", 2)
    ignored = normalise(_event("runner_on_failed", {"msg": "x"}, ignore_errors=True))
    assert ignored is not None
    assert ignored.status == "ignored"
    dark = normalise(_event("runner_on_unreachable", {"msg": "no route"}))
    assert dark is not None
    assert dark.status == "unreachable"
    assert normalise({"event": "playbook_on_start"}) is None


def test_reports_come_from_modules_and_role_facts() -> None:
    direct = normalise(_event("runner_on_ok", {"autoops_report": {"kind": "health"}}))
    assert direct is not None
    assert direct.report == {"kind": "health"}
    fact = normalise(_event("runner_on_ok", {"ansible_facts": {
        "backup_report": {"kind": "backup"}, "other": 1, "x_report": "not a report"}}))
    assert fact is not None
    assert fact.report == {"kind": "backup"}
    plain = normalise(_event("runner_on_ok", {"ansible_facts": {"foo": 1}}))
    assert plain is not None
    assert plain.report is None


def test_long_messages_are_cut() -> None:
    result = normalise(_event("runner_on_failed", {"msg": "x" * 10_000}))
    assert result is not None
    assert result.msg is not None
    assert len(result.msg) == 2000
