"""batch.daily: ``run_folder`` on a small simulated run -- the outputs, their values against the
simulator's truth and SPEC.md, one bad tube failing alone, what stops a run before any work.

The run: ``hladr simulate`` of three tubes of 40,000 events (about 1,300-1,700 monocytes each, so
every tube is ``warn``, ``monocytes_low``: SPEC.md section 4) and a bead tube. Its three samples
fall into the three calls of SPEC.md section 2: P001 ferritin 45 pmol/L and ~52,600 AB/C
(intermediate), P002 ferritin 1199 ng/mL and ~2,500 AB/C (immunoparalysis), P003 ferritin 17150
ng/mL (MALS).
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from hladr.batch.daily import run_folder
from hladr.errors import CalibrationError, ConfigError, LotError
from hladr.gating.gatingml import _static_cache
from hladr.gating.gatingml._cache import cache_key
from hladr.simulate.simulator import simulate_run

TEMPLATE = Path(__file__).parents[1] / "data" / "monocytes_template.xml"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("day")
    simulate_run(d, seed=11, instrument="canto", n_samples=3, events_per_tube=40_000)
    return d


@pytest.fixture(scope="module")
def clean(run_dir, tmp_path_factory) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("clean") / "out"
    return run_folder(str(run_dir), str(out), quiet=True), out


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _truth(run_dir: Path) -> dict[str, dict[str, str]]:
    with open(run_dir / "truth.csv", newline="") as fh:
        return {r["sample_id"]: r for r in csv.DictReader(fh)}


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(run_dir, dst)
    return dst


# --------------------------------------------------------------------------- a clean run
def test_a_clean_run_writes_one_complete_set(clean):
    code, out = clean
    assert code == 0  # every sample passed or warned
    assert sorted(p.name for p in out.iterdir()) == [
        ".hladr-output", "calibration.json", "figures.json", "report.html", "report.pdf", "results.csv", "results.json"]
    rows = _rows(out)
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    cal = json.loads((out / "calibration.json").read_text(encoding="utf-8"))
    # one run id in all four files
    run_id = doc["run_id"]
    assert cal["run_id"] == run_id and {r["run_id"] for r in rows} == {run_id}
    assert f'<meta name="hladr-run-id" content="{run_id}">' in (out / "report.html").read_text(encoding="utf-8")
    assert cal["accepted"] is True and doc["calibration"]["id"] == cal["id"]
    assert {s["calibration_id"] for s in doc["samples"]} == {cal["id"]}


def test_values_match_the_truth_and_the_spec(clean, run_dir):
    _, out = clean
    rows, truth = _rows(out), _truth(run_dir)
    assert [r["sample_id"] for r in rows] == ["P001", "P002", "P003"]  # the worklist's order
    for r in rows:
        t = truth[r["sample_id"]]
        assert abs(float(r["hladr_abc"]) / float(t["true_hladr_abc"]) - 1) < 0.03, r["sample_id"]
        assert abs(int(r["monocyte_count"]) / int(t["true_monocytes"]) - 1) < 0.10, r["sample_id"]
        assert r["phenotype"] == t["expected_phenotype"], r["sample_id"]
        assert 1000 <= int(r["monocyte_count"]) < 3000 and (r["qc"], r["flags"]) == ("warn", "monocytes_low")
        assert r["sha256"] == hashlib.sha256((run_dir / r["file"]).read_bytes()).hexdigest()
    assert [r["phenotype"] for r in rows] == ["intermediate", "immunoparalysis", "MALS"]
    assert float(rows[0]["ferritin_ng_ml"]) == pytest.approx(45 / 2.247, abs=1e-4)  # pmol/L / 2.247


# --------------------------------------------------------------------------- a bad tube fails alone
def test_a_bad_tube_fails_alone(clean, run_dir, tmp_path):
    _, clean_out = clean
    run = _copy(run_dir, tmp_path)
    (run / "P003_HLADR.fcs").write_bytes(b"FCS3.1    this is not a list-mode file")
    out = tmp_path / "out"
    assert run_folder(str(run), str(out), quiet=True) == 1  # at least one sample failed
    rows = {r["sample_id"]: r for r in _rows(out)}
    before = {r["sample_id"]: r for r in _rows(clean_out)}
    for sid in ("P001", "P002"):  # the other tubes: the same row, to the last digit
        assert {k: v for k, v in rows[sid].items() if k != "run_id"} == \
               {k: v for k, v in before[sid].items() if k != "run_id"}, sid
    bad = rows["P003"]
    assert bad["qc"] == "fail" and "unreadable" in bad["flags"].split(";")
    assert bad["hladr_abc"] == "" and bad["monocyte_count"] == ""
    assert bad["phenotype"] == "MALS"  # ferritin 17150 > 4420 decides alone (SPEC.md section 2)
    sample = next(s for s in json.loads((out / "results.json").read_text())["samples"] if s["sample_id"] == "P003")
    message = next(f["message"] for f in sample["flags"] if f["code"] == "unreadable")
    assert "P003_HLADR.fcs" in message and "\n" not in message


def test_a_kept_calibration_gives_the_same_values(clean, run_dir, tmp_path):
    _, clean_out = clean
    out = tmp_path / "out"
    assert run_folder(str(run_dir), str(out), quiet=True, calibration_file=str(clean_out / "calibration.json")) == 0
    got, want = _rows(out), _rows(clean_out)
    for g, w in zip(got, want, strict=True):
        for key in ("hladr_abc", "hladr_abc_geomean", "monocyte_count", "phenotype", "qc", "calibration_id"):
            assert g[key] == w[key], (g["sample_id"], key)


def test_the_table_is_printed_unless_quiet(clean, run_dir, tmp_path, capsys):
    capsys.readouterr()
    run_folder(str(run_dir), str(tmp_path / "loud"))
    printed = capsys.readouterr()
    assert "HLA-DR AB/C" in printed.out and all(sid in printed.out for sid in ("P001", "P002", "P003"))
    assert "note: no lot given: using the only registered lot 96597" in printed.err
    run_folder(str(run_dir), str(tmp_path / "quiet"), quiet=True)
    assert capsys.readouterr().out == ""


# --------------------------------------------------------------------------- refused before any work
@pytest.mark.parametrize(("change", "error", "words"), [
    ({"run_dir": "missing"}, ConfigError, "run folder not found"),
    ({"workers": 0}, ConfigError, "--workers must be at least 1, not 0"),
    ({"ship_files": True}, ConfigError, "--ship-files sends the files to Dask workers: it needs --scheduler"),
    ({"scheduler": "tcp://127.0.0.1:9", "workers": 2}, ConfigError, "--workers and --scheduler: give one"),
    ({"lot_id": "00000"}, LotError, "unknown bead lot '00000'"),
])
def test_refused_before_any_work(run_dir, tmp_path, change, error, words):
    args = {"run_dir": str(run_dir), "out_dir": str(tmp_path / "out"), "quiet": True, **change}
    if args["run_dir"] == "missing":
        args["run_dir"] = str(tmp_path / "missing")
    with pytest.raises(error) as exc:
        run_folder(**args)
    assert words in str(exc.value) and "\n" not in str(exc.value)
    assert not (tmp_path / "out").exists()


def test_no_bead_tube_and_no_calibration(run_dir, tmp_path):
    run = _copy(run_dir, tmp_path)
    lines = (run / "worklist.csv").read_text().splitlines()
    (run / "worklist.csv").write_text("\n".join(line for line in lines if ",beads," not in line) + "\n")
    with pytest.raises(CalibrationError, match="no bead tube found and no --calibration given"):
        run_folder(str(run), str(tmp_path / "out"), quiet=True)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- the template cache
def test_the_template_cache_is_where_the_caller_says(run_dir, tmp_path, monkeypatch):
    home, env = tmp_path / "home", tmp_path / "env"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("HLADR_CACHE", str(env))
    _static_cache._stored_statics.cache_clear()
    key = cache_key(hashlib.sha256(TEMPLATE.read_bytes()).hexdigest())
    try:
        folder = tmp_path / "templates"
        assert run_folder(str(run_dir), str(tmp_path / "kept"), quiet=True, gates_file=str(TEMPLATE),
                          template_cache=folder) == 0
        assert sorted(p.name for p in folder.iterdir()) == [f"{key}.json", f"{key}.static.npz"]
        assert run_folder(str(run_dir), str(tmp_path / "none"), quiet=True, gates_file=str(TEMPLATE)) == 0
    finally:
        _static_cache._stored_statics.cache_clear()
    assert not home.exists() and not env.exists()  # without a folder the run keeps nothing, anywhere
    assert _rows(tmp_path / "kept")[0]["hladr_abc"] == _rows(tmp_path / "none")[0]["hladr_abc"] != ""
