"""A results store locked by another writer: wait with a message, then one line; never lose the run.

Before: after SQLite's 30 s busy timeout, ``run`` crashed with ``sqlite3.OperationalError:
database is locked`` before analysing anything (no outputs at all) and ``calibrate``
died with a traceback and exit status 1, the code for "calibration rejected".
The wait is bounded by ``$HLADR_STORE_WAIT`` (seconds), which the tests set short.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time

import pytest
from _helpers import clean_error, without_run_id

from hladr.cli import main
from hladr.store import calibration_series, open_store


@pytest.fixture
def locked_store(tmp_path):
    """An up-to-date store that another connection holds with ``BEGIN EXCLUSIVE``."""
    db = tmp_path / "store.sqlite"
    open_store(db).close()
    con = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    con.execute("BEGIN EXCLUSIVE")
    yield db, con
    if con.in_transaction:
        con.execute("ROLLBACK")
    con.close()


def test_run_writes_its_outputs_and_says_the_store_was_locked(small_run, clean_outputs, locked_store, tmp_path,
                                                               monkeypatch, capsys, caplog):
    db, _ = locked_store
    monkeypatch.setenv("HLADR_STORE_WAIT", "1")
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        status = main(["run", str(small_run), "--out", str(out), "--quiet", "--db", str(db)])
    # one line that says the results ARE complete, and where (exit 2 here is not "could not start")
    line = clean_error(capsys.readouterr().err, "locked by another process", f"results are complete in {out}")
    assert status == 2, line
    assert "waiting for the results store" in caplog.text
    # the analysed results are all there, identical to an undisturbed run (apart from the run's own id)
    assert without_run_id(out / "results.csv") == without_run_id(clean_outputs / "results.csv")
    assert without_run_id(out / "calibration.json") == without_run_id(clean_outputs / "calibration.json")
    notes = json.loads((out / "results.json").read_text())["notes"]
    assert any("not kept in the results store" in n for n in notes), notes


def test_calibrate_with_a_locked_store_is_not_rejected(small_run, locked_store, tmp_path, monkeypatch, capsys):
    db, _ = locked_store
    monkeypatch.setenv("HLADR_STORE_WAIT", "1")
    cal = tmp_path / "cal.json"
    status = main(["calibrate", str(small_run / "beads.fcs"), "--lot", "96597", "--out", str(cal), "--db", str(db)])
    captured = capsys.readouterr()
    clean_error(captured.err, "locked by another process")
    assert status == 2  # not 1: the calibration was accepted; the store could not take it
    assert "ACCEPTED" in captured.out
    assert json.loads(cal.read_text())["accepted"] is True


def test_a_lock_released_during_the_wait_is_waited_for(small_run, locked_store, monkeypatch, capsys, caplog):
    db, con = locked_store
    monkeypatch.setenv("HLADR_STORE_WAIT", "20")
    threading.Timer(1.0, lambda: con.execute("ROLLBACK")).start()
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING):
        status = main(["calibrate", str(small_run / "beads.fcs"), "--lot", "96597", "--db", str(db)])
    assert status == 0, capsys.readouterr().err
    assert time.monotonic() - t0 < 15
    assert "waiting for the results store" in caplog.text
    assert len(calibration_series(db)) == 1


def test_a_bad_wait_setting_is_one_line(small_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HLADR_STORE_WAIT", "soon")
    status = main(["calibrate", str(small_run / "beads.fcs"), "--lot", "96597", "--db", str(tmp_path / "s.sqlite")])
    clean_error(capsys.readouterr().err, "HLADR_STORE_WAIT")
    assert status == 2
