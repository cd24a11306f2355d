"""The audit log in segments: rotation, one chain across files, retention, the index, crashes."""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from autoops.audit.log import AuditLog, Entry, Query, _Active
from autoops.errors import AuditBrokenError
from autoops.state.db import StateDB

TYPES = ("run.requested", "run.started", "task.result", "task.result", "run.finished")


def make_log(root: Path, segment_bytes: int = 4000,
             clock: Callable[[], str] | None = None) -> AuditLog:
    kwargs = {"clock": clock} if clock else {}
    return AuditLog(root / "audit" / "audit.jsonl", StateDB(root / "state.db"),
                    segment_bytes=segment_bytes, **kwargs)  # type: ignore[arg-type]


def fill(log: AuditLog, count: int, *, run: str = "r", durable_every: int = 5) -> None:
    for i in range(count):
        log.append(run_id=f"{run}{i % 4}", type_=TYPES[i % len(TYPES)], actor=f"a{i % 3}",
                   env=("staging", "production")[i % 2], action="health", data={"i": i},
                   durable=i % durable_every == 0)


def rotated(log: AuditLog) -> list[Path]:
    return sorted(log.layout.rotated_dir.glob("*.jsonl"))


def test_the_log_rotates_by_size_into_one_chain_of_named_segments(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    fill(log, 120)
    files = rotated(log)
    assert len(files) >= 5
    firsts = [json.loads(f.read_text().splitlines()[0])["seq"] for f in files]
    assert [int(f.stem) for f in files] == firsts, "named by their first seq"
    assert all(f.stat().st_size < 4000 + 400 for f in files)
    assert [r["seq"] for r in log.records()] == list(range(1, 121))
    assert log.verify().ok
    assert oct(files[0].stat().st_mode & 0o777) == "0o600"


def test_the_log_rotates_when_its_day_ends(tmp_path: Path) -> None:
    day = ["2026-12-07T23:59:58.000000Z"]
    log = make_log(tmp_path, segment_bytes=1 << 30, clock=lambda: day[0])
    fill(log, 3)
    day[0] = "2026-12-08T00:00:01.000000Z"
    fill(log, 2, run="s")
    assert [f.name for f in rotated(log)] == ["000000000001.jsonl"]
    assert json.loads(log.path.read_text().splitlines()[0])["seq"] == 4
    assert log.verify().ok


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def _delete_middle(log: AuditLog) -> str:
    victim = rotated(log)[2]
    victim.unlink()
    return f"are missing before segments/{rotated(log)[2].name}"


def _reorder(log: AuditLog) -> str:
    one, two = rotated(log)[1:3]
    tmp = one.with_suffix(".tmp")
    one.rename(tmp)
    two.rename(one)
    tmp.rename(two)
    return "segments renamed or reordered"


def _truncate(log: AuditLog) -> str:
    victim = rotated(log)[1]
    victim.write_text("".join(_lines(victim)[:-2]))
    return f"missing before segments/{rotated(log)[2].name}"


def _edit(log: AuditLog) -> str:
    victim = rotated(log)[3]
    lines = _lines(victim)
    lines[1] = lines[1].replace('"data":{"i":', '"data":{"i":1')
    victim.write_text("".join(lines))
    return f"segments/{victim.name} line 2: its content does not match its hash"


def _cut(log: AuditLog) -> str:
    victim = rotated(log)[0]
    victim.write_text(victim.read_text()[:-30])
    return f"segments/{victim.name} line"


def _rename_out_of_order(log: AuditLog) -> str:
    victim = rotated(log)[2]
    victim.rename(victim.with_name(f"{int(victim.stem) + 1:012d}.jsonl"))
    return "missing before"


TAMPER = {"a segment deleted": _delete_middle, "segments reordered": _reorder,
          "a segment truncated": _truncate, "a segment edited": _edit,
          "a segment cut mid-record": _cut, "a segment renamed": _rename_out_of_order}


@pytest.mark.parametrize("case", TAMPER, ids=list(TAMPER))
def test_a_tampered_segment_is_named(tmp_path: Path, case: str) -> None:
    log = make_log(tmp_path)
    fill(log, 150)
    expected = TAMPER[case](log)
    report = log.verify()
    assert not report.ok
    assert expected in str(report.problem), report.problem
    assert report.first_bad_seq is not None


def test_a_cut_active_segment_is_caught_by_the_anchor(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    fill(log, 150)
    log.path.write_text("".join(_lines(log.path)[:1]))
    report = log.verify()
    assert not report.ok
    assert "state.db anchors" in str(report.problem) or "missing" in str(report.problem)


def test_verify_streams_in_bounded_memory(tmp_path: Path) -> None:
    log = make_log(tmp_path, segment_bytes=1 << 20)
    payload = "x" * 2000
    for first in range(0, 6000, 500):
        log.append_many([Entry("r", "task.result", "a", "lab", "health",
                               {"i": i, "pad": payload}) for i in range(first, first + 500)])
    script = textwrap.dedent(f"""
        import resource, sys
        from pathlib import Path
        from autoops.audit.log import AuditLog
        from autoops.state.db import StateDB
        root = Path({str(tmp_path)!r})
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        report = AuditLog(root / "audit" / "audit.jsonl", StateDB(root / "state.db")).verify()
        grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
        print(report.ok, report.records, grew)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    ok, records, grew_kb = done.stdout.split()
    assert (ok, records) == ("True", "6000")
    log_mb = sum(p.stat().st_size for p in (tmp_path / "audit").rglob("*.jsonl")) / 2**20
    assert log_mb > 10
    assert int(grew_kb) / 1024 < log_mb / 2, "verify held the log in memory"


# -- retention ---------------------------------------------------------------------------


def _aged(root: Path, count: int) -> AuditLog:
    """A log whose first records are from last week, the rest from today."""
    day = ["2026-11-30T10:00:00.000000Z"]
    log = make_log(root, clock=lambda: day[0])
    fill(log, count)
    day[0] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fill(log, count, run="t")
    return log


def test_prune_drops_whole_old_segments_and_verify_says_from_where(tmp_path: Path) -> None:
    log = _aged(tmp_path, 100)
    old = rotated(log)
    before = datetime(2026, 12, 1, tzinfo=UTC)
    archive = tmp_path / "old.jsonl.gz"
    pruned_lines = "".join(f.read_text() for f in old
                           if json.loads(f.read_text().splitlines()[-1])["ts"] < "2026-12-01")
    done = log.prune(before, actor="admin", archive=archive)
    assert done["pruned"] == 100
    assert done["first_seq"] == 1
    assert gzip.decompress(archive.read_bytes()).decode() == pruned_lines
    report = log.verify()
    assert report.ok, report
    assert report.from_seq == 101
    assert report.pruned == {"through_seq": 100, "vouched_by": done["vouched_by"]}
    vouch = log.query(Query(types=("audit.pruned",)))
    assert vouch[0]["data"]["through_seq"] == 100
    assert vouch[0]["data"]["archive"]["sha256"]
    assert next(r["seq"] for r in log.records()) == 101
    assert log.query(Query(run_id="r1")) == []  # pruned records are gone from queries too
    fill(log, 10, run="u")
    assert log.verify().ok
    assert log.prune(before, actor="admin")["pruned"] == 0  # nothing older is left


def test_prune_keeps_the_active_segment_and_anything_young(tmp_path: Path) -> None:
    log = make_log(tmp_path, segment_bytes=1 << 30)
    fill(log, 20)
    assert log.prune(datetime.now(UTC) + timedelta(days=1), actor="admin")["pruned"] == 0
    assert log.verify().records == 20


@pytest.mark.parametrize("tamper", ["first_seq", "prev", "vouched_by", "deleted"])
def test_an_edited_base_is_found_out(tmp_path: Path, tamper: str) -> None:
    log = _aged(tmp_path, 100)
    log.prune(datetime(2026, 12, 1, tzinfo=UTC), actor="admin")
    base = json.loads(log.layout.base_file.read_text())
    if tamper == "deleted":
        log.layout.base_file.unlink()
    else:
        base[tamper] = base[tamper] + 1 if isinstance(base[tamper], int) else "0" * 64
        log.layout.base_file.write_text(json.dumps(base))
    report = log.verify()
    assert not report.ok, tamper
    assert report.problem


def test_nothing_is_pruned_from_a_log_that_does_not_verify(tmp_path: Path) -> None:
    log = _aged(tmp_path, 100)
    _edit(log)
    files = rotated(log)
    with pytest.raises(AuditBrokenError, match="nothing was pruned"):
        log.prune(datetime(2026, 12, 1, tzinfo=UTC), actor="admin")
    assert rotated(log) == files


def test_a_prune_cut_short_by_a_crash_still_verifies(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed after the audit.pruned record and base.json, before the files went."""
    log = _aged(tmp_path, 100)
    monkeypatch.setattr(Path, "unlink", lambda *_a, **_k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        log.prune(datetime(2026, 12, 1, tzinfo=UTC), actor="admin")
    monkeypatch.undo()
    assert log.layout.base_file.exists()
    assert rotated(log)[0].name == "000000000001.jsonl"  # still there
    report = log.verify()
    assert report.ok, report
    assert report.from_seq == 101
    assert log.prune(datetime(2026, 12, 1, tzinfo=UTC), actor="admin")["pruned"] == 0


# -- the index ---------------------------------------------------------------------------

QUERIES = [Query(run_id="r1"), Query(actor="a2"), Query(env="production", action="health"),
           Query(types=("run.started", "run.finished")), Query(actor="a0", env="staging"),
           Query(since=datetime.now(UTC) - timedelta(hours=1)), Query(run_id="nobody")]


def _scan(log: AuditLog, query: Query, limit: int | None = None) -> list[int]:
    found = [r["seq"] for r in log.records() if query.matches(r)]
    return found[-limit:] if limit else found


@pytest.mark.parametrize("query", QUERIES)
def test_the_index_answers_what_a_full_scan_answers(tmp_path: Path, query: Query) -> None:
    log = make_log(tmp_path)
    fill(log, 200)
    assert [r["seq"] for r in log.query(query)] == _scan(log, query)
    assert [r["seq"] for r in log.query(query, limit=7)] == _scan(log, query, 7)


def test_a_deleted_index_is_rebuilt_with_the_same_answers(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    fill(log, 200)
    before = [[r["seq"] for r in log.query(q)] for q in QUERIES]
    log.index.discard()
    assert not log.index.path.exists()
    assert [[r["seq"] for r in log.query(q)] for q in QUERIES] == before
    assert log.reindex() == 200


def test_an_index_behind_the_log_catches_up(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    fill(log, 100)
    log.query(Query())  # complete now
    other = make_log(tmp_path)  # another process's writer …
    other._index = lambda _rows: None  # type: ignore[method-assign,assignment] # … that could not index
    fill(other, 50, run="x")
    assert [r["seq"] for r in log.query(Query(run_id="x1"))] == _scan(log, Query(run_id="x1"))


def test_an_index_with_a_gap_is_rebuilt_not_believed(tmp_path: Path) -> None:
    """Rows lost in the middle (an append that could not index), then more rows: the
    index is no longer complete, and the next query rebuilds it."""
    log = make_log(tmp_path)
    fill(log, 60)
    log.query(Query())
    skipping = make_log(tmp_path)
    skipping._index = lambda _rows: None  # type: ignore[method-assign,assignment]
    fill(skipping, 20, run="gap")
    fill(make_log(tmp_path), 20, run="after")
    assert not log.index.complete()
    assert [r["seq"] for r in log.query(Query(run_id="gap1"))] == _scan(log,
                                                                        Query(run_id="gap1"))


def test_a_corrupt_index_is_replaced_and_answers_stay_right(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    fill(log, 80)
    log.query(Query())
    log.index.close()
    log.index.path.write_bytes(b"not a database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(f"{log.index.path}{suffix}").unlink(missing_ok=True)
    fresh = make_log(tmp_path)
    assert [r["seq"] for r in fresh.query(Query(run_id="r3"))] == _scan(fresh, Query(run_id="r3"))
    fill(fresh, 5, run="z")  # and appends index again
    assert [r["seq"] for r in fresh.query(Query(run_id="z1"))] == _scan(fresh, Query(run_id="z1"))


def test_a_reset_in_one_process_does_not_corrupt_another_that_has_it_open(
        tmp_path: Path) -> None:
    one, two = make_log(tmp_path), make_log(tmp_path)
    fill(one, 30)
    assert len(two.query(Query())) == 30  # two holds the index open
    one.index.reset()  # in place: the file is the same one
    fill(two, 10, run="y")
    assert [r["seq"] for r in one.query(Query())] == list(range(1, 41))
    assert [r["seq"] for r in two.query(Query(run_id="y1"))] == _scan(two, Query(run_id="y1"))


def test_an_index_that_does_not_match_the_log_is_rebuilt(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    fill(log, 100)
    db = log.index._connect()
    db.execute("UPDATE records SET offset = offset + 7")
    assert [r["seq"] for r in log.query(Query(run_id="r2"))] == _scan(log, Query(run_id="r2"))


def test_a_batch_is_one_chain_in_one_write_and_a_durable_batch_is_anchored(
        tmp_path: Path) -> None:
    log = make_log(tmp_path, segment_bytes=1 << 30)
    records = log.append_many([Entry("r", "task.result", "a", "lab", "x", {"i": i})
                               for i in range(50)], durable=True)
    assert [r["seq"] for r in records] == list(range(1, 51))
    assert log.db.anchor.get() == (50, records[-1]["hash"])
    assert log.verify().ok


# -- crashes -----------------------------------------------------------------------------

WRITER = """
import os, sys
from pathlib import Path
from autoops.audit.log import AuditLog, Entry
from autoops.state.db import StateDB
root = Path(sys.argv[1])
log = AuditLog(root / "audit" / "audit.jsonl", StateDB(root / "state.db"), segment_bytes=3000)
n = 0
while True:
    n += 1
    if n % 3:
        recs = log.append_many([Entry(f"w{os.getpid()}", "task.result", "a", "lab", "x",
                                      {"n": n, "k": k}) for k in range(n % 4 + 1)])
    else:
        recs = [log.append(run_id=f"w{os.getpid()}", type_="run.finished", actor="a",
                           env="lab", action="x", data={"n": n})]
    sys.stdout.write(" ".join(str(r["seq"]) for r in recs) + "\\n")
    sys.stdout.flush()
"""


def test_kill_9_while_appending_and_rotating_loses_nothing_acknowledged(tmp_path: Path) -> None:
    rng = random.Random(7)
    acknowledged: set[int] = set()
    for _round in range(8):
        writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)],
                                    stdout=subprocess.PIPE, text=True) for _ in range(2)]
        time.sleep(rng.uniform(0.3, 1.2))
        for proc in writers:
            proc.send_signal(signal.SIGKILL)
        for proc in writers:
            out, _ = proc.communicate()
            acknowledged |= {int(seq) for line in out.splitlines() if line.endswith("")
                             for seq in line.split()}
    log = make_log(tmp_path, segment_bytes=3000)
    report = log.verify()
    assert report.ok, report
    present = {r["seq"] for r in log.records()}
    assert acknowledged <= present
    assert len(rotated(log)) > 3, "the writers rotated while they were killed"
    log.append(run_id="after", type_="run.finished", actor="a", env="lab", action="x", data={})
    assert log.verify().ok


def test_a_rotation_killed_between_its_rename_and_the_next_record_goes_on(
        tmp_path: Path) -> None:
    log = make_log(tmp_path)
    fill(log, 10)
    tail = log._current(_open(log))  # what the writer saw
    log.layout.rotate(tail.first_seq)  # … then the writer died before writing on
    assert not log.path.exists()
    fresh = make_log(tmp_path)
    fill(fresh, 3, run="z")
    assert fresh.verify().ok
    assert [r["seq"] for r in fresh.records()][-3:] == [11, 12, 13]


def _open(log: AuditLog) -> _Active:
    return _Active(os.open(log.path, os.O_WRONLY | os.O_APPEND))


def _append_many(root: str, worker: int) -> None:
    log = AuditLog(Path(root) / "audit" / "audit.jsonl", StateDB(Path(root) / "state.db"),
                   segment_bytes=2500)
    for i in range(40):
        log.append_many([Entry(f"w{worker}", "task.result", "a", "lab", "x", {"i": i, "k": k})
                         for k in range(3)], durable=i % 10 == 0)


def test_concurrent_writers_rotating_keep_one_chain(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), n)) for n in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    log = make_log(tmp_path, segment_bytes=2500)
    report = log.verify()
    assert report.ok, report
    assert report.records == 360
    assert len(rotated(log)) > 5
