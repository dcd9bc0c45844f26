"""A run killed while it keeps its results, and runs that write one store at once.

The kill lands inside the transaction of the second result (a child process whose audit
append, called inside that transaction, waits there to be killed): the store must come back
whole (``PRAGMA integrity_check``), with the first result kept and nothing of the second;
re-running the run completes it with exactly one current result per sample, and the audit
chain verifies.
"""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from store_helpers import hladr_process

from calibration_records import make_calibration
from hladr.cli import main
from hladr.store import current_results, record_calibration, sample_versions, verify_audit

WAIT_IN_SECOND_RESULT = """
import pathlib, sys, time
import hladr.store.results as results

real, stored = results.append_entry, []

def append_then_wait(con, **kw):
    digest = real(con, **kw)
    if kw["action"] == "result_stored":
        stored.append(kw["sample_id"])
        if len(stored) == 2:  # inside the second result's transaction, not committed
            pathlib.Path(sys.argv[1]).write_text("waiting")
            time.sleep(300)
    return digest

results.append_entry = append_then_wait
from hladr.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _rows(db, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _wait_for(path, proc, seconds: float = 180.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"the run ended ({proc.returncode}) before it was killed: {proc.stderr.read().decode()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the run never reached its second result")
        time.sleep(0.05)


def test_a_run_killed_while_keeping_a_result_loses_nothing_kept_and_keeps_nothing_half(run_a, tmp_path):
    db, marker, out = tmp_path / "hladr.sqlite", tmp_path / "marker", tmp_path / "out"
    proc = hladr_process([str(marker), "run", str(run_a), "--out", str(out), "--quiet", "--db", str(db)],
                         code=WAIT_IN_SECOND_RESULT)
    _wait_for(marker, proc)
    proc.kill()  # SIGKILL: no handler runs, the transaction is never committed
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()

    assert _rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert _rows(db, "PRAGMA foreign_key_check") == []
    assert _rows(db, "SELECT COUNT(*) FROM results") == [(1,)]  # the first result, whole; none of the second
    assert _rows(db, "SELECT COUNT(*) FROM run_results") == [(1,)]
    assert _rows(db, "SELECT finished_utc FROM runs") == [(None,)]  # started, never finished
    assert [a for (a,) in _rows(db, "SELECT action FROM audit_log ORDER BY seq")] == [
        "calibration_stored", "run_started", "result_stored"]
    assert verify_audit(db).ok
    assert not out.exists()  # the outputs come after the store: nothing was switched in

    assert main(["run", str(run_a), "--out", str(out), "--quiet", "--db", str(db)]) in (0, 1)
    assert _rows(db, "PRAGMA integrity_check") == [("ok",)]
    current = current_results(db)
    assert sorted(r.sample_id for r in current) == ["P001", "P002", "P003"]
    for r in current:  # exactly one result per sample, and it is the current one
        assert [v.version for v in sample_versions(db, r.sample_id)] == [1]
    assert _rows(db, "SELECT finished_utc IS NOT NULL FROM runs ORDER BY id") == [(0,), (1,)]
    assert verify_audit(db).ok


def _hammer(db, stop: threading.Event, done: list[int]) -> None:
    """A third writer, keeping calibrations as fast as it can while the runs write."""
    n = 100
    while not stop.is_set():
        record_calibration(db, make_calibration(n), source="concurrent writer")
        done.append(n)
        n += 1


@pytest.mark.parametrize("second", ["run_b", "run_a"])
def test_two_runs_writing_one_store_at_once_both_succeed(run_a, run_b, tmp_path, second, monkeypatch):
    """Two different runs, or the same run twice, at once (and a third writer): every result kept once."""
    db = tmp_path / "hladr.sqlite"
    monkeypatch.setenv("HLADR_STORE_WAIT", "120")
    record_calibration(db, make_calibration(99), source="first")  # the store exists before the runs start
    other = run_b if second == "run_b" else run_a
    procs = [hladr_process(["run", str(folder), "--out", str(tmp_path / f"out{k}"), "--quiet", "--db", str(db)])
             for k, folder in enumerate((run_a, other))]
    stop, done = threading.Event(), []
    writer = threading.Thread(target=_hammer, args=(db, stop, done))
    writer.start()
    try:
        results = [(p.wait(timeout=300), p.communicate()) for p in procs]
    finally:
        stop.set()
        writer.join()
    for status, (_, err) in results:
        assert status in (0, 1), err.decode()
    assert _rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert _rows(db, "SELECT COUNT(*), COUNT(finished_utc) FROM runs") == [(2, 2)]
    samples = sorted(r.sample_id for r in current_results(db))
    want = ["P001", "P002", "P003"] + (["Q001", "Q002", "Q003"] if second == "run_b" else [])
    assert samples == want
    assert all(r.version == 1 for r in current_results(db))
    assert _rows(db, "SELECT COUNT(*) FROM run_results") == [(6,)]
    assert _rows(db, "SELECT COUNT(*) FROM calibrations") == [(1 + len(done) + (2 if second == "run_b" else 1),)]
    assert verify_audit(db).ok
