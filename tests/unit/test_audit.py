from __future__ import annotations

import itertools
import json
import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoops.audit.log import GENESIS, AuditLog, Query, parse_since, record_hash
from autoops.errors import AuditBrokenError
from autoops.secrets.redact import Redactor
from autoops.state.db import StateDB


def make_log(tmp_path: Path, redact: Redactor | None = None) -> AuditLog:
    return AuditLog(tmp_path / "audit" / "audit.jsonl", StateDB(tmp_path / "state.db"), redact)


def fill(log: AuditLog, count: int, run_id: str = "r1", durable: bool = True) -> None:
    types = ["run.requested", "run.decision", "run.started", "task.result", "run.finished"]
    for i in range(count):
        log.append(run_id=run_id, type_=types[i % len(types)], actor="alice", env="local",
                   action="health", data={"i": i}, durable=durable)


def lines(log: AuditLog) -> list[str]:
    return log.path.read_text().splitlines(keepends=True)


def test_records_chain_and_verify(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    fill(log, 5)
    recs = list(log.records())
    assert [r["seq"] for r in recs] == [1, 2, 3, 4, 5]
    assert recs[0]["prev"] == GENESIS
    assert all(b["prev"] == a["hash"] for a, b in itertools.pairwise(recs))
    assert all(record_hash(r) == r["hash"] for r in recs)
    assert {r["v"] for r in recs} == {1}
    assert log.verify().ok
    assert oct(log.path.stat().st_mode & 0o777) == "0o600"


def test_empty_log_verifies(tmp_path: Path) -> None:
    assert make_log(tmp_path).verify().ok


def _edit(ls: list[str]) -> list[str]:
    rec = json.loads(ls[2])
    rec["actor"] = "mallory"
    ls[2] = json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n"
    return ls


def _edit_and_rehash(ls: list[str]) -> list[str]:
    rec = json.loads(ls[2])
    rec["data"] = {"i": 99}
    rec["hash"] = record_hash(rec)
    ls[2] = json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n"
    return ls


def _insert(ls: list[str]) -> list[str]:
    return [*ls[:2], ls[1], *ls[2:]]


TAMPER = {
    "edited field": (_edit, 3),
    "edited and rehashed": (_edit_and_rehash, 4),
    "deleted record": (lambda ls: ls[:2] + ls[3:], 3),
    "inserted copy": (_insert, 3),
    "reordered": (lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], 2),
    "first record deleted": (lambda ls: ls[1:], 1),
    "partial tail": (lambda ls: [*ls[:-1], ls[-1][:40]], 6),
    "garbage line": (lambda ls: [*ls[:3], "not json\n", *ls[3:]], 4),
    "extra field": (lambda ls: [*ls[:1], ls[1].replace('{"action"', '{"x":1,"action"'), *ls[2:]],
                    2),
}


@pytest.mark.parametrize("case", TAMPER, ids=list(TAMPER))
def test_tampering_is_detected_at_the_first_bad_seq(tmp_path: Path, case: str) -> None:
    log = make_log(tmp_path)
    fill(log, 6)
    mutate, first_bad = TAMPER[case]
    log.path.write_text("".join(mutate(lines(log))))
    report = log.verify()
    assert not report.ok
    assert report.first_bad_seq == first_bad, report


def test_whole_records_cut_from_the_tail_are_detected_by_the_anchor(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    fill(log, 6)
    log.path.write_text("".join(lines(log)[:4]))
    report = log.verify()
    assert not report.ok
    assert report.first_bad_seq == 5
    assert "missing" in str(report.problem)


def test_replaced_tail_is_detected_by_the_anchor(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    fill(log, 3)
    other = make_log(tmp_path / "other")
    fill(other, 3, run_id="forged")
    log.path.write_text(other.path.read_text())
    assert not log.verify().ok


def test_records_after_the_anchor_still_verify(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    fill(log, 3)
    fill(log, 3, durable=False)  # task results are not anchored one by one
    assert log.verify().ok


def test_append_refuses_a_partial_tail(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    fill(log, 2)
    with log.path.open("a") as fh:
        fh.write('{"seq": 3')
    with pytest.raises(AuditBrokenError):
        fill(log, 1)


def test_redactor_applies_to_every_record(tmp_path: Path) -> None:
    log = make_log(tmp_path, Redactor(["hunter2-secret"]))
    log.append(run_id="r", type_="task.result", actor="a", env="local", action="x",
               data={"msg": "password is hunter2-secret", "db_password": "x"})
    text = log.path.read_text()
    assert "hunter2-secret" not in text
    assert '"db_password":"********"' in text


def test_unknown_record_types_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown audit record type"):
        make_log(tmp_path).append(run_id="r", type_="run.whatever", actor="a", env="e",
                                  action="x", data={})


def _append_many(path: str, worker: int) -> None:
    log = AuditLog(Path(path) / "audit.jsonl", StateDB(Path(path) / "state.db"))
    for i in range(25):
        log.append(run_id=f"w{worker}", type_="task.result", actor="a", env="local",
                   action="x", data={"i": i}, durable=i % 5 == 0)


def test_concurrent_writers_keep_one_chain(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), n)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    log = AuditLog(tmp_path / "audit.jsonl", StateDB(tmp_path / "state.db"))
    report = log.verify()
    assert report.ok, report
    assert report.records == 100


def test_query_filters(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    fill(log, 5, run_id="a")
    log.append(run_id="b", type_="run.requested", actor="bob", env="staging", action="deploy",
               data={})
    assert len(log.query(Query(run_id="a"))) == 5
    assert [r["run_id"] for r in log.query(Query(actor="bob"))] == ["b"]
    assert len(log.query(Query(env="staging", action="deploy"))) == 1
    assert len(log.query(Query(types=("run.requested",)))) == 2
    assert len(log.query(Query(), limit=2)) == 2
    future = datetime.now(UTC) + timedelta(hours=1)
    assert log.query(Query(since=future)) == []


NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("24h", NOW - timedelta(hours=24)), ("30m", NOW - timedelta(minutes=30)),
    ("7d", NOW - timedelta(days=7)), ("90s", NOW - timedelta(seconds=90)),
    ("2026-11-01T00:00:00Z", datetime(2026, 11, 1, tzinfo=UTC)),
    ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
])
def test_parse_since(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


@given(st.text(max_size=12))
def test_parse_since_either_parses_or_explains(text: str) -> None:
    try:
        value = parse_since(text, NOW)
    except ValueError as exc:
        assert "--since" in str(exc)
        return
    assert value.tzinfo is not None


def test_records_have_all_documented_fields(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    fill(log, 1)
    rec: dict[str, Any] = next(log.records())
    assert set(rec) == {"v", "seq", "ts", "run_id", "type", "actor", "env", "action", "data",
                        "prev", "hash"}
    assert rec["ts"].endswith("Z")
