"""The output set of ``hladr run`` is switched in whole: a reader sees the old set or the new one.

Before: each file was replaced atomically but one after the other, so a failure (or a
kill) between two replacements left e.g. the new results.csv beside the previous run's
results.json; a re-run silently overwrote the previous results; a folder of other files
was written into.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import shutil

import pytest
from _helpers import clean_error, without_run_id

import hladr.batch.daily as batch
from hladr.cli import main

try:  # the module that switches the set in (absent before issue 12)
    import hladr.batch.output_set as output_set
except ImportError:  # pragma: no cover - only when checking the tests against the old code
    output_set = None

OUTPUTS = ("results.csv", "results.json", "calibration.json", "report.html")


def _keep_two_samples(run_dir) -> None:
    """Make the run a different one: drop the last sample row of the worklist."""
    text = (run_dir / "worklist.csv").read_text()
    rows = list(csv.reader(io.StringIO(text)))
    role = rows[0].index("role")
    last = max(k for k, r in enumerate(rows) if k and r[role] == "sample")
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(r for k, r in enumerate(rows) if k != last)
    (run_dir / "worklist.csv").write_text(buf.getvalue())


def _which_set(folder, sets: dict[str, bytes]) -> str:
    """Which complete output set ``folder`` holds (a key of ``sets``); fails on a mixed or partial set."""
    names = {p.name for p in folder.iterdir()}
    assert set(OUTPUTS) <= names, f"{folder}: incomplete set {sorted(names)}"
    assert not [n for n in names if n.endswith(".tmp")], f"{folder}: temporary files {sorted(names)}"
    csv_bytes = without_run_id(folder / "results.csv")  # each run has its own id: compare the rest
    match = [k for k, v in sets.items() if v == csv_bytes]
    assert match, f"{folder}: results.csv is neither set's"
    rows = list(csv.DictReader(io.StringIO((folder / "results.csv").read_text())))
    doc = json.loads((folder / "results.json").read_text())
    assert len(doc["samples"]) == len(rows), f"{folder}: results.json ({len(doc['samples'])}) vs csv ({len(rows)})"
    # one run id across the set (a reader can tell two runs apart)
    ids = {r["run_id"] for r in rows} | {doc["run_id"], json.loads((folder / "calibration.json").read_text())["run_id"]}
    assert len(ids) == 1 and doc["run_id"] in (folder / "report.html").read_text(), f"{folder}: run ids {ids}"
    return match[0]


def _sets_in(area, sets) -> list[str]:
    """Every complete set found in ``area`` (the output folder and its siblings)."""
    found = []
    for d in sorted(area.iterdir()):
        if d.is_dir() and (d / "results.csv").is_file():
            try:
                found.append(_which_set(d, sets))
            except AssertionError:
                pass
    return found


def _crash_at(k: int, area, counter: list[int]):
    """Wrap a rename function: the k-th call touching ``area`` fails with an I/O error instead."""
    def wrap(real):
        def f(src, dst, *a, **kw):
            if str(area) in os.fspath(src) or str(area) in os.fspath(dst):
                counter[0] += 1
                if counter[0] == k:
                    raise OSError(errno.EIO, "simulated I/O failure", os.fspath(dst))
            return real(src, dst, *a, **kw)
        return f
    return wrap


def test_interrupted_switch_never_mixes_old_and_new(clean_outputs, run_copy, tmp_path, monkeypatch, capsys):
    """Fail each rename of the writing in turn: the folder always holds one complete set, and the old set survives."""
    _keep_two_samples(run_copy)
    captured = {}
    real = batch._analyse_all

    def capture(*a, **k):
        captured["results"] = real(*a, **k)
        return captured["results"]

    monkeypatch.setattr(batch, "_analyse_all", capture)
    ref_b = tmp_path / "ref_b"
    assert main(["run", str(run_copy), "--out", str(ref_b), "--quiet"]) in (0, 1)
    sets = {"old": without_run_id(clean_outputs / "results.csv"), "new": without_run_id(ref_b / "results.csv")}
    assert sets["old"] != sets["new"]
    # the same analysis again, without its cost: only the writing is under test
    monkeypatch.setattr(batch, "_analyse_all", lambda inputs, *a, **k: list(captured["results"]))
    capsys.readouterr()

    for k in range(1, 30):
        area = tmp_path / f"k{k}"
        area.mkdir()
        out = area / "out"
        shutil.copytree(clean_outputs, out)
        counter = [0]
        wrap = _crash_at(k, area, counter)
        with monkeypatch.context() as m:
            m.setattr(os, "replace", wrap(os.replace))
            m.setattr(os, "rename", wrap(os.rename))
            if output_set is not None:
                m.setattr(output_set, "_exchange", wrap(output_set._exchange))
            try:
                status = main(["run", str(run_copy), "--out", str(out), "--quiet"])
            except OSError:
                status = None  # escaped as a traceback
        err = capsys.readouterr().err
        state = _which_set(out, sets)
        assert "old" in _sets_in(area, sets), f"crash at rename {k}: the previous set is lost"
        if counter[0] < k:  # no crash: the run went through
            assert state == "new" and status in (0, 1)
            break
        assert status is not None and "Traceback" not in err, f"crash at rename {k}: {err}"
        if state == "old":
            assert status == 2
            clean_error(err, "out")
        # a clean run afterwards leaves no staging folder and loses nothing
        assert main(["run", str(run_copy), "--out", str(out), "--quiet"]) in (0, 1)
        capsys.readouterr()
        assert _which_set(out, sets) == "new"
        assert "old" in _sets_in(area, sets)
        assert not [p.name for p in area.iterdir() if ".tmp-" in p.name], sorted(p.name for p in area.iterdir())
    else:
        pytest.fail("the run never completed")


def test_rerun_moves_the_previous_set_aside(clean_outputs, small_run, tmp_path, capsys):
    """A second run into the same folder keeps the first run's files, and says where."""
    out = tmp_path / "out"
    shutil.copytree(clean_outputs, out)
    (out / "my_notes.txt").write_text("kept\n")  # anything a user added to an hladr output folder stays too
    assert main(["run", str(small_run), "--out", str(out), "--quiet"]) in (0, 1)
    err = capsys.readouterr().err
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("out.previous-")]
    assert len(aside) == 1, sorted(p.name for p in tmp_path.iterdir())
    for name in OUTPUTS:
        assert (aside[0] / name).read_bytes() == (clean_outputs / name).read_bytes(), name
    assert (aside[0] / "my_notes.txt").read_text() == "kept\n"
    assert aside[0].name in err
    assert without_run_id(out / "results.csv") == without_run_id(clean_outputs / "results.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", aside[0].name])


def test_a_folder_of_other_files_is_refused(small_run, tmp_path, capsys, monkeypatch):
    """OUT_DIR that exists, is not empty and is not an hladr output folder: exit 2 before any work."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.docx").write_text("precious")
    monkeypatch.setattr(batch, "_analyse_all", lambda *a, **k: pytest.fail("analysis started"))
    assert main(["run", str(small_run), "--out", str(out), "--quiet"]) == 2
    clean_error(capsys.readouterr().err, str(out))
    assert sorted(p.name for p in out.iterdir()) == ["thesis.docx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_empty_existing_folder_is_used(small_run, clean_outputs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert main(["run", str(small_run), "--out", str(out), "--quiet"]) in (0, 1)
    assert without_run_id(out / "results.csv") == without_run_id(clean_outputs / "results.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
