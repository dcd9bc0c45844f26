"""A user's mistake in the arguments or output paths: exit 2 and one line, before any work.

Every case here used to end in a traceback, some after the whole analysis (which was
then lost). Paths under an existing regular file fail for every user, root included;
the permission-based variants are skipped when the tests run as root.
"""

from __future__ import annotations

import os

import pytest
from _helpers import clean_error

from hladr.cli import main

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def no_analysis(monkeypatch):
    """Fail the test if the run gets as far as analysing a sample: the mistake must be found first."""
    import hladr.batch.daily

    def boom(*a, **k):
        raise AssertionError("the analysis started although the arguments were bad")

    monkeypatch.setattr(hladr.batch.daily, "_analyse_all", boom)


@pytest.fixture
def a_file(tmp_path):
    f = tmp_path / "a_file.txt"
    f.write_text("not a folder\n")
    return f


def _status_and_error(capsys, argv, *words):
    status = main(argv)
    err = capsys.readouterr().err
    return status, clean_error(err, *words)


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_run_out_is_a_file_or_under_one(small_run, a_file, no_analysis, capsys, where):
    out = a_file if where == "file" else a_file / "sub"
    status, line = _status_and_error(capsys, ["run", str(small_run), "--out", str(out), "--quiet"], "a_file.txt")
    assert status == 2
    assert a_file.read_text() == "not a folder\n"


@pytest.mark.skipif(IS_ROOT, reason="root may write into a read-only folder")
def test_run_out_in_unwritable_folder(small_run, tmp_path, no_analysis, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        status, _ = _status_and_error(capsys, ["run", str(small_run), "--out", str(ro / "out"), "--quiet"], "ro")
    finally:
        ro.chmod(0o755)
    assert status == 2


@pytest.mark.parametrize("where", ["under_file", "folder"])
def test_run_db_that_cannot_be_made(small_run, tmp_path, a_file, no_analysis, capsys, where):
    db = a_file / "sub" / "hladr.sqlite" if where == "under_file" else tmp_path
    status, _ = _status_and_error(capsys, ["run", str(small_run), "--out", str(tmp_path / "out"), "--quiet",
                                           "--db", str(db)], "--db")
    assert status == 2
    assert not (tmp_path / "out").exists()


def test_calibrate_out_and_db_unwritable(small_run, a_file, capsys):
    beads = str(small_run / "beads.fcs")
    status, _ = _status_and_error(capsys, ["calibrate", beads, "--lot", "96597", "--out", str(a_file / "cal.json")],
                                  "a_file.txt")
    assert status == 2
    status, _ = _status_and_error(capsys, ["calibrate", beads, "--lot", "96597", "--db", str(a_file / "s.sqlite")],
                                  "--db")
    assert status == 2


def test_calibration_history_out_unwritable(small_run, tmp_path, a_file, capsys):
    db = tmp_path / "store.sqlite"
    assert main(["calibrate", str(small_run / "beads.fcs"), "--lot", "96597", "--db", str(db)]) == 0
    capsys.readouterr()
    status, _ = _status_and_error(capsys, ["calibration", "history", "--db", str(db), "--out", str(a_file / "lj.png")],
                                  "a_file.txt")
    assert status == 2


@pytest.mark.parametrize("extra, word", [
    (["--samples", "-3"], "--samples"),
    (["--samples", "0"], "--samples"),
    (["--events", "0"], "--events"),
    (["--events", "-5"], "--events"),
    (["--seed", "-1"], "--seed"),
])
def test_simulate_bad_numbers(tmp_path, capsys, extra, word):
    status, _ = _status_and_error(capsys, ["simulate", str(tmp_path / "sim"), *extra], word)
    assert status == 2
    assert not (tmp_path / "sim").exists()


def test_simulate_bad_path(a_file, capsys):
    status, _ = _status_and_error(capsys, ["simulate", str(a_file / "sim"), "--samples", "1", "--events", "1000"],
                                  "a_file.txt")
    assert status == 2
