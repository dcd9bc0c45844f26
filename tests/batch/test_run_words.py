"""What a run says beside its numbers (issue 15): every flag code in results.csv and the table, the
qc's reasons for warn rows too, a missing ferritin flagged and noted, FCS files the worklist leaves
out named in the notes, and a tube without an HLA-DR value saying why.

The run: ``hladr simulate`` of three tubes of 40,000 events (every tube ``warn``, ``monocytes_low``;
see test_batch.py), P001 ferritin 45 pmol/L, P002 1199 ng/mL, P003 17150 ng/mL.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from hladr.batch.daily import NO_FERRITIN_COLUMN, NO_WORKLIST_FERRITIN, run_folder
from hladr.flags import FLAGS
from hladr.pipeline import analyze_sample
from hladr.results import SampleInput
from hladr.simulate.simulator import simulate_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("day")
    simulate_run(d, seed=11, instrument="canto", n_samples=3, events_per_tube=40_000)
    return d


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(run_dir, dst)
    return dst


def _worklist(run: Path) -> list[dict[str, str]]:
    with open(run / "worklist.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _write_worklist(run: Path, rows: list[dict[str, str]]) -> None:
    with open(run / "worklist.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _outputs(out: Path) -> tuple[dict[str, dict[str, str]], dict]:
    with open(out / "results.csv", newline="", encoding="utf-8") as fh:
        rows = {r["sample_id"]: r for r in csv.DictReader(fh)}
    return rows, json.loads((out / "results.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def edited(run_dir, tmp_path_factory):
    """P002's ferritin cell emptied; two FCS files in the folder that the worklist does not list."""
    base = tmp_path_factory.mktemp("edited")
    run = _copy(run_dir, base)
    rows = _worklist(run)
    for r in rows:
        if r["sample_id"] == "P002":
            r["ferritin"] = ""
    _write_worklist(run, rows)
    shutil.copy(run / "P001_HLADR.fcs", run / "P099_HLADR.fcs")
    shutil.copy(run / "P001_HLADR.fcs", run / "late_tube.LMD")
    (run / "notes.txt").write_text("not a tube")
    out = base / "out"
    status = run_folder(str(run), str(out))
    return status, out


def test_every_flag_code_is_in_results_csv_with_its_message_and_severity_in_results_json(edited, capsys):
    status, out = edited
    assert status == 0  # warn rows only: ferritin_missing (info) fails nothing
    rows, doc = _outputs(out)
    for sample in doc["samples"]:
        codes = [f["code"] for f in sample["flags"]]
        assert rows[sample["sample_id"]]["flags"] == ";".join(codes)  # info flags too
        for f in sample["flags"]:
            assert f["severity"] == FLAGS[f["code"]].severity and f["message"]
    p002 = next(s for s in doc["samples"] if s["sample_id"] == "P002")
    missing = next(f for f in p002["flags"] if f["code"] == "ferritin_missing")
    assert missing["severity"] == "info" and "no ferritin" in missing["message"]
    assert rows["P002"]["flags"].split(";") == ["monocytes_low", "ferritin_missing"]
    assert rows["P001"]["flags"] == "monocytes_low"  # a ferritin on the worklist: no ferritin_missing


def test_qc_reasons_of_a_warn_row_are_its_warn_messages(edited):
    rows, doc = _outputs(edited[1])
    for sample in doc["samples"]:
        row = rows[sample["sample_id"]]
        assert row["qc"] == "warn"
        warns = [f["message"] for f in sample["flags"] if f["severity"] == "warn"]
        assert warns and row["qc_reasons"] == " | ".join(warns)
        assert row["qc_reasons"].endswith("monocytes < 3000")


def test_missing_ferritin_cell_gives_indeterminate_saying_so_and_keeps_hladr(edited):
    rows, doc = _outputs(edited[1])
    assert rows["P002"]["phenotype"] == "indeterminate" and rows["P002"]["hladr_abc"] != ""
    p002 = next(s for s in doc["samples"] if s["sample_id"] == "P002")
    assert p002["phenotype_reasons"][0] == "ferritin missing: MALS cannot be excluded"
    assert NO_FERRITIN_COLUMN not in doc["notes"]  # the column is there; one cell is empty


def test_fcs_files_not_on_the_worklist_are_named_in_the_notes(edited):
    _, doc = _outputs(edited[1])
    (note,) = [n for n in doc["notes"] if "not on the worklist" in n]
    assert note.startswith("2 FCS files are in the run folder but not on the worklist, so not analysed:")
    assert note.endswith("P099_HLADR.fcs, late_tube.LMD")
    for listed in ("beads.fcs", "P001_HLADR.fcs", "worklist.csv", "notes.txt"):
        assert listed not in note
    assert note in (edited[1] / "report.html").read_text(encoding="utf-8")


def test_the_table_shows_every_code_and_why_a_row_is_not_pass(run_dir, tmp_path, capsys):
    run = _copy(run_dir, tmp_path)
    rows = _worklist(run)
    rows[2]["ferritin"] = ""
    _write_worklist(run, rows)
    capsys.readouterr()
    run_folder(str(run), str(tmp_path / "out"))
    printed = capsys.readouterr()
    lines = printed.out.splitlines()
    row = next(k for k, line in enumerate(lines) if line.startswith(rows[2]["sample_id"]))
    assert lines[row].endswith("monocytes_low;ferritin_missing")
    assert lines[row + 1].startswith("    warn: ") and lines[row + 1].endswith("monocytes < 3000")
    assert max(len(line) for line in lines if line.startswith("    ")) <= 4 + len("warn: ") + 100


def test_many_unlisted_files_are_counted_and_the_first_named(run_dir, tmp_path):
    from hladr.batch.daily import NOTE_NAMES_SHOWN, _worklist_notes

    run = _copy(run_dir, tmp_path)
    for k in range(NOTE_NAMES_SHOWN + 3):
        shutil.copy(run / "P001_HLADR.fcs", run / f"X{k:02d}.fcs")
    rows = _worklist(run)
    (note,) = _worklist_notes(run, [{k: v for k, v in r.items()} for r in rows])
    assert note.startswith(f"{NOTE_NAMES_SHOWN + 3} FCS files are in the run folder")
    assert note.endswith("X00.fcs, X01.fcs, X02.fcs, X03.fcs, X04.fcs and 3 more")
    assert _worklist_notes(run_dir, rows) == []  # everything listed, ferritin column present


def test_a_worklist_without_ferritin_column_notes_it_once(run_dir, tmp_path):
    run = _copy(run_dir, tmp_path)
    rows = [{k: v for k, v in r.items() if k not in ("ferritin", "ferritin_unit")} for r in _worklist(run)]
    _write_worklist(run, rows)
    out = tmp_path / "out"
    assert run_folder(str(run), str(out), quiet=True) == 0
    table, doc = _outputs(out)
    assert doc["notes"].count(NO_FERRITIN_COLUMN) == 1
    for sample in doc["samples"]:
        row = table[sample["sample_id"]]
        assert row["phenotype"] == "indeterminate" and row["qc"] == "warn" and row["hladr_abc"] != ""
        assert "ferritin_missing" in row["flags"].split(";")
        assert "ferritin missing: MALS cannot be excluded" in sample["phenotype_reasons"]


def test_no_worklist_notes_that_ferritin_is_unknown(run_dir, tmp_path):
    run = _copy(run_dir, tmp_path)
    (run / "worklist.csv").unlink()
    out = tmp_path / "out"
    run_folder(str(run), str(out), quiet=True)
    table, doc = _outputs(out)
    assert NO_WORKLIST_FERRITIN in doc["notes"]
    assert not any("not on the worklist" in n for n in doc["notes"])
    assert all("ferritin_missing" in r["flags"].split(";") for r in table.values())


# --------------------------------------------------------------------------- a tube without HLA-DR
def test_an_unreadable_tube_is_mals_from_ferritin_and_says_hladr_was_not_measured(tmp_path):
    bad = tmp_path / "P003_HLADR.fcs"
    bad.write_bytes(b"FCS3.1    this is not a list-mode file")
    r = analyze_sample(SampleInput(path=str(bad), sample_id="P003", ferritin="17150"), None)
    assert r.qc == "fail" and r.phenotype == "MALS" and r.hladr_abc is None
    (unreadable,) = [f for f in r.flags if f.code == "unreadable"]
    assert r.phenotype_reasons == ("ferritin 17150 ng/mL > 4420", f"HLA-DR not measured ({unreadable.message})")
    low = analyze_sample(SampleInput(path=str(bad), sample_id="P003", ferritin="1199"), None)
    assert low.phenotype == "indeterminate"  # SPEC.md section 2: without HLA-DR only MALS can be called
    assert f"HLA-DR not measured ({unreadable.message})" in low.phenotype_reasons


def test_a_tube_without_calibration_says_why_hladr_was_not_measured(run_dir):
    r = analyze_sample(SampleInput(path=str(run_dir / "P003_HLADR.fcs"), sample_id="P003", ferritin="17150"), None)
    assert r.qc == "fail" and r.phenotype == "MALS" and r.hladr_abc is None and r.monocyte_count
    assert "HLA-DR not measured (no accepted bead calibration for this run)" in r.phenotype_reasons


def test_a_failed_gate_is_mals_from_ferritin_and_says_why_hladr_was_not_measured(run_dir):
    """The bead tube analysed as a sample: an accepted calibration, but no monocytes to gate."""
    from hladr.beads.lots import resolve_lot
    from hladr.beads.record import Calibration, calibrate_beads
    from hladr.results import RunConfig

    lot, _ = resolve_lot(lot_id=None, lot_file=None, worklist_lot=None)
    cal = calibrate_beads(str(run_dir / "beads.fcs"), lot, RunConfig())
    assert isinstance(cal, Calibration) and cal.accepted
    for ferritin, label in (("9000", "MALS"), ("100", "indeterminate")):
        r = analyze_sample(SampleInput(path=str(run_dir / "beads.fcs"), sample_id="X", ferritin=ferritin), cal)
        failed = [f for f in r.flags if f.severity == "fail"]
        assert r.qc == "fail" and r.hladr_abc is None and r.phenotype == label
        assert failed and all(f.message.startswith("gating failed: ") for f in failed)
        assert f"HLA-DR not measured ({'; '.join(f.message for f in failed)})" in r.phenotype_reasons


def test_a_second_bead_tube_is_named_as_not_analysed(run_dir, tmp_path):
    """Without a worklist, every tube that looks like beads is kept out of the samples: the ones not used are
    named, so that no tube of the run disappears without a word."""
    run = _copy(run_dir, tmp_path)
    (run / "worklist.csv").unlink()
    shutil.copy(run / "beads.fcs", run / "beads_repeat.fcs")
    out = tmp_path / "out"
    run_folder(str(run), str(out), quiet=True)
    table, doc = _outputs(out)
    assert "2 files look like bead tubes: using beads.fcs; not used and not analysed: beads_repeat.fcs" in doc["notes"]
    assert sorted(table) == ["P001", "P002", "P003"]


def test_a_second_bead_row_of_the_worklist_is_named_as_not_used(run_dir, tmp_path):
    run = _copy(run_dir, tmp_path)
    shutil.copy(run / "beads.fcs", run / "beads_repeat.fcs")
    rows = _worklist(run)
    bead = next(r for r in rows if r["role"] == "beads")
    rows.append({**bead, "file": "beads_repeat.fcs"})
    _write_worklist(run, rows)
    out = tmp_path / "out"
    run_folder(str(run), str(out), quiet=True)
    _, doc = _outputs(out)
    assert "2 bead tubes in the worklist: using beads.fcs; not used: beads_repeat.fcs" in doc["notes"]
