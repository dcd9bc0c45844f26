"""`hladr run` keeps every result in the store: provenance, idempotent re-runs, new versions only with a reason."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from hladr import __version__
from hladr.cli import main
from hladr.store import canonical_json, current_results, sample_versions, verify_audit
from hladr.store.results import KEPT_OUT

OTHER_LOT = '[lot]\nid = "TEST2"\npe_per_bead = [700, 7000, 31000, 68000]\nexpiry = 2099-12-31\n'


def _rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def _copy_store(db: Path, dst: Path) -> Path:
    shutil.copyfile(db, dst)  # every connection is closed: the WAL is checkpointed into the file
    return dst


@pytest.fixture(scope="module")
def kept(run_a, tmp_path_factory):
    """run_a analysed once into a new store: (store, output folder)."""
    root = tmp_path_factory.mktemp("kept")
    db, out = root / "hladr.sqlite", root / "out"
    assert main(["run", str(run_a), "--out", str(out), "--quiet", "--db", str(db), "--user", "tech1"]) in (0, 1)
    return db, out


def test_every_result_is_kept_with_its_provenance(kept):
    db, out = kept
    doc = json.loads((out / "results.json").read_text())
    cal = json.loads((out / "calibration.json").read_text())
    ((run_id, finished, n, user, cal_row),) = _rows(db, "SELECT run_id, finished_utc, n_results, user, "
                                                       "calibration_row FROM runs")
    assert run_id == doc["run_id"] and finished and n == 3 and user == "tech1"
    assert _rows(db, "SELECT calibration_id FROM calibrations WHERE id = ?", (cal_row,)) == [(cal["id"],)]
    stored = current_results(db)
    assert [r.sample_id for r in stored] == [s["sample_id"] for s in doc["samples"]]
    for r, sample in zip(stored, doc["samples"], strict=True):
        assert r.version == 1 and r.kind == "analysis" and r.run_id == run_id and r.user == "tech1"
        assert r.record == {k: v for k, v in sample.items() if k not in KEPT_OUT}  # results.json's record
        assert r.result_id == hashlib.sha256(canonical_json(r.content).encode()).hexdigest()
        # provenance: the FCS file and the bead file, the tube's settings, calibration, gates, rules, software
        assert r.sha256 == sample["sha256"] and len(r.sha256) == 64
        assert r.content["calibration"] == {"id": cal["id"], "accepted": True, "lot": "96597",
                                            "bead_files": cal["inputs"]}
        tube = r.content["tube"]
        assert tube["instrument"] == cal["settings"]["instrument"] and tube["serial"] == cal["settings"]["serial"]
        assert tube["voltages"][cal["pe_channel"]] == cal["settings"]["pe_voltage"]
        ((serial, voltages),) = _rows(db, "SELECT serial, voltages_json FROM tubes WHERE sha256 = ?", (r.sha256,))
        assert serial == tube["serial"] and json.loads(voltages) == tube["voltages"]
        assert r.record["gate"] and r.ruleset == sample["ruleset"] == "immunosep-2025@5"
        ((gate_sha,),) = _rows(db, "SELECT gate_sha256 FROM results WHERE result_id = ?", (r.result_id,))
        assert gate_sha == hashlib.sha256(canonical_json(sample["gate"]).encode()).hexdigest()
        assert r.content["software"]["hladr"] == __version__ and r.content["software"]["numpy"]
    assert verify_audit(db).ok
    actions = [a for (a,) in _rows(db, "SELECT action FROM audit_log ORDER BY seq")]
    assert actions == ["calibration_stored", "run_started", *["result_stored"] * 3, "run_finished"]


def test_running_the_same_run_again_keeps_nothing_twice(kept, run_a, tmp_path, capsys):
    db = _copy_store(kept[0], tmp_path / "s.sqlite")
    before = [(r.sample_id, r.result_id) for r in current_results(db)]
    assert main(["run", str(run_a), "--out", str(tmp_path / "again"), "--db", str(db)]) in (0, 1)
    assert "kept 0 new results" in capsys.readouterr().err
    assert [(r.sample_id, r.result_id) for r in current_results(db)] == before  # the same result ids
    assert _rows(db, "SELECT COUNT(*) FROM results") == [(3,)]
    assert _rows(db, "SELECT COUNT(*) FROM calibrations") == [(1,)]
    runs = _rows(db, "SELECT id, finished_utc IS NOT NULL FROM runs ORDER BY id")
    assert [done for _, done in runs] == [1, 1]  # the re-run is a run of its own, with the same results
    links = _rows(db, "SELECT run_row, position, new FROM run_results ORDER BY run_row, position")
    assert links == [(runs[0][0], k, 1) for k in range(3)] + [(runs[1][0], k, 0) for k in range(3)]
    assert verify_audit(db).ok


def test_a_different_analysis_is_a_new_version_only_with_a_reason(kept, run_a, tmp_path, capsys):
    db = _copy_store(kept[0], tmp_path / "s.sqlite")
    lot = tmp_path / "lot.toml"
    lot.write_text(OTHER_LOT)
    out = tmp_path / "other_lot"
    status = main(["run", str(run_a), "--out", str(out), "--quiet", "--db", str(db), "--lot-file", str(lot)])
    err = capsys.readouterr().err
    # the run did its work: SPEC.md's exit status (0 or 1), and one warning line naming --reason
    assert status in (0, 1) and f"results are complete in {out}" in err and "--reason" in err
    assert (out / "results.csv").is_file()  # the outputs are written all the same
    notes = json.loads((out / "results.json").read_text())["notes"]
    assert sum("not kept in the results store" in n for n in notes) == 3
    assert all(r.version == 1 for r in current_results(db))  # nothing was kept
    assert verify_audit(db).ok

    status = main(["run", str(run_a), "--out", str(out), "--quiet", "--db", str(db), "--lot-file", str(lot),
                   "--reason", "bead lot TEST2 assigned by the manufacturer's correction"])
    assert status in (0, 1)
    doc = json.loads((out / "results.json").read_text())
    for sample in doc["samples"]:
        v1, v2 = sample_versions(db, sample["sample_id"])
        assert (v1.version, v2.version, v1.current, v2.current) == (1, 2, False, True)
        assert v2.reason == "bead lot TEST2 assigned by the manufacturer's correction" and v1.reason is None
        assert v2.record["hladr_abc"] == sample["hladr_abc"] and v2.calibration_id == doc["calibration"]["id"]
        assert v1.calibration_id != v2.calibration_id
        assert v1.record["hladr_abc"] is None or v1.record["hladr_abc"] != v2.record["hladr_abc"]  # the curve changed
    assert verify_audit(db).ok
    assert main(["results", "show", "P001", "--db", str(db)]) == 0
    shown = capsys.readouterr().out
    assert "version 1" in shown and "version 2" in shown and "bead lot TEST2" in shown


def test_without_db_the_run_is_kept_in_the_user_data_folder(run_a, tmp_path, monkeypatch):
    monkeypatch.delenv("HLADR_DB", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["run", str(run_a), "--out", str(tmp_path / "out"), "--quiet"]) in (0, 1)
    db = tmp_path / ".local" / "share" / "hladr" / "hladr.sqlite"
    assert len(current_results(db)) == 3


def test_hladr_db_names_the_store(run_a, tmp_path, monkeypatch):
    monkeypatch.setenv("HLADR_DB", str(tmp_path / "env.sqlite"))
    assert main(["run", str(run_a), "--out", str(tmp_path / "out"), "--quiet"]) in (0, 1)
    assert len(current_results(tmp_path / "env.sqlite")) == 3


def test_a_file_that_is_not_a_store_stops_the_run_before_any_work(run_a, tmp_path, capsys):
    db = tmp_path / "notes.txt"
    db.write_text("not a database\n" * 100)
    out = tmp_path / "out"
    assert main(["run", str(run_a), "--out", str(out), "--quiet", "--db", str(db)]) == 2
    assert "not an hladr results store" in capsys.readouterr().err
    assert not out.exists()


def test_a_reused_calibration_is_kept_with_the_results(kept, run_a, tmp_path):
    db = tmp_path / "s.sqlite"
    cal = kept[1] / "calibration.json"
    assert main(["run", str(run_a), "--out", str(tmp_path / "out"), "--quiet", "--calibration", str(cal),
                 "--db", str(db)]) in (0, 1)
    cal_id = json.loads(cal.read_text())["id"]
    ((row, source),) = _rows(db, "SELECT id, source FROM calibrations WHERE calibration_id = ?", (cal_id,))
    assert source.startswith("hladr run --calibration")
    assert _rows(db, "SELECT calibration_row FROM runs") == [(row,)]
    assert _rows(db, "SELECT DISTINCT calibration_row FROM results") == [(row,)]
    assert verify_audit(db).ok


def test_a_result_the_store_cannot_hold_never_costs_the_outputs(run_a, tmp_path, monkeypatch, capsys):
    import hladr.batch.keeping as keeping

    def broken(result, **kw):
        raise TypeError("object of type Thing is not JSON serialisable")

    monkeypatch.setattr(keeping, "analysis_content", broken)
    out = tmp_path / "out"
    assert main(["run", str(run_a), "--out", str(out), "--quiet", "--db", str(tmp_path / "s.sqlite")]) == 2
    err = capsys.readouterr().err
    assert f"results are complete in {out}" in err and "TypeError" in err and "Traceback" not in err
    assert (out / "results.csv").is_file()
    notes = json.loads((out / "results.json").read_text())["notes"]
    assert any("not kept in the results store" in n for n in notes)
