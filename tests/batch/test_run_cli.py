"""`hladr run` end to end: outputs, columns, exit codes and bad input (SPEC.md section 5)."""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
from pathlib import Path

import pytest

from hladr.batch.daily import RESULT_COLUMNS
from hladr.cli import main


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    from hladr.simulate.simulator import simulate_run

    d = tmp_path_factory.mktemp("small")
    simulate_run(d, seed=7, instrument="canto", n_samples=3, events_per_tube=30_000)
    return d


def _copy(src, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(src, dst)
    return dst


def _rows(out):
    with open(out / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_outputs_and_columns(small_run, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(small_run), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "HLA-DR AB/C" in printed and "phenotype" in printed
    for name in ("results.csv", "results.json", "calibration.json", "report.html"):
        assert (out / name).is_file(), name
    rows = _rows(out)
    assert list(rows[0].keys())[: len(RESULT_COLUMNS)] == RESULT_COLUMNS
    for r in rows:
        assert r["phenotype"] in ("MALS", "immunoparalysis", "intermediate", "indeterminate")
        assert r["qc"] in ("pass", "warn", "fail")
        assert "," not in r["hladr_abc"] and float(r["hladr_abc"]) > 0
    doc = json.loads((out / "results.json").read_text())
    s = doc["samples"][0]
    assert len(s["sha256"]) == 64 and s["ruleset"] == "immunosep-2025@5" and s["software_version"]
    assert s["calibration_id"] == doc["calibration"]["id"]
    cal = json.loads((out / "calibration.json").read_text())
    for key in ("fit", "accepted", "levels", "flags", "lot", "inputs"):
        assert key in cal
    assert set(cal["fit"]) >= {"slope", "intercept", "r2"}
    assert [lv["name"] for lv in cal["levels"]] == ["low", "med-low", "med-high", "high"]
    assert len(cal["inputs"][0]["sha256"]) == 64


def test_without_worklist_the_bead_tube_is_found_from_its_data(small_run, tmp_path):
    run = _copy(small_run, tmp_path)
    (run / "worklist.csv").unlink()
    out = tmp_path / "out"
    assert main(["run", str(run), "--out", str(out), "--quiet", "--lot", "96597"]) == 0
    rows = _rows(out)
    assert len(rows) == 3
    assert all(r["ferritin_ng_ml"] == "" and r["phenotype"] == "indeterminate" for r in rows)
    cal = json.loads((out / "calibration.json").read_text())
    assert cal["inputs"][0]["file"] == "beads.fcs"


def test_unreadable_file_fails_that_sample_only(small_run, tmp_path):
    run = _copy(small_run, tmp_path)
    with open(run / "worklist.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    victim = next(r for r in rows if r["role"] == "sample")["file"]
    (run / victim).write_bytes(b"this is not an FCS file")
    out = tmp_path / "out"
    assert main(["run", str(run), "--out", str(out), "--quiet"]) == 1
    res = {r["file"]: r for r in _rows(out)}
    assert res[victim]["qc"] == "fail" and "unreadable" in res[victim]["flags"]
    assert res[victim]["hladr_abc"] == ""
    others = [r for f, r in res.items() if f != victim]
    assert others and all(r["qc"] != "fail" and r["hladr_abc"] for r in others)


def test_tube_without_cd14_fails_with_reason(small_run, tmp_path):
    import numpy as np

    from hladr.fcs.read import read_events
    from hladr.fcs.write import write_fcs

    run = _copy(small_run, tmp_path)
    with open(run / "worklist.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    victim = next(r for r in rows if r["role"] == "sample")["file"]
    ev = read_events(run / victim)
    keep = [k for k, s in enumerate(ev.pns) if "CD14" not in s.upper()]
    write_fcs(run / victim, ev.data[:, keep], [ev.pnn[k] for k in keep], pns=[ev.pns[k] for k in keep],
              keywords={"$CYT": ev.keyword("cyt") or ""})
    out = tmp_path / "out"
    assert main(["run", str(run), "--out", str(out), "--quiet"]) == 1
    res = {r["file"]: r for r in _rows(out)}
    assert res[victim]["qc"] == "fail" and "missing_channel" in res[victim]["flags"]
    assert "no CD14 channel" in res[victim]["qc_reasons"]
    assert np.all([r["qc"] != "fail" for f, r in res.items() if f != victim])


def test_empty_run_folder_cannot_start(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["run", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no FCS files" in err[0]
    assert not (tmp_path / "o" / "results.csv").exists()


def test_unknown_lot_cannot_start(small_run, tmp_path, capsys):
    assert main(["run", str(small_run), "--out", str(tmp_path / "o"), "--lot", "NOPE"]) == 2
    err = capsys.readouterr().err
    assert "unknown bead lot 'NOPE'" in err and "Traceback" not in err


def test_unreadable_lot_file_cannot_start(small_run, tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[lot]\nid = 'x'\npe_per_bead = [3, 2, 1, 0]\n")
    assert main(["run", str(small_run), "--out", str(tmp_path / "o"), "--lot-file", str(bad)]) == 2
    assert "increasing" in capsys.readouterr().err


def test_no_bead_tube_and_no_calibration_cannot_start(small_run, tmp_path, capsys):
    run = _copy(small_run, tmp_path)
    (run / "beads.fcs").unlink()
    (run / "worklist.csv").unlink()
    assert main(["run", str(run), "--out", str(tmp_path / "o"), "--lot", "96597"]) == 2
    assert "no bead tube" in capsys.readouterr().err


def test_bad_arguments_exit_2(capsys):
    assert main(["run"]) == 2
    assert main(["frobnicate"]) == 2


def test_calibrate_command_and_reuse_of_the_record(small_run, tmp_path, capsys):
    cal = tmp_path / "cal.json"
    assert main(["calibrate", str(small_run / "beads.fcs"), "--lot", "96597", "--out", str(cal)]) == 0
    text = capsys.readouterr().out
    assert "ACCEPTED" in text and "med-high" in text
    run = _copy(small_run, tmp_path)
    (run / "beads.fcs").unlink()
    (run / "worklist.csv").write_text(
        "\n".join(line for line in (small_run / "worklist.csv").read_text().splitlines()
                  if ",beads," not in line) + "\n")
    out1, out2 = tmp_path / "o1", tmp_path / "o2"
    assert main(["run", str(run), "--out", str(out1), "--quiet", "--calibration", str(cal)]) == 0
    assert main(["run", str(small_run), "--out", str(out2), "--quiet"]) == 0
    a = {r["sample_id"]: r["hladr_abc"] for r in _rows(out1)}
    b = {r["sample_id"]: r["hladr_abc"] for r in _rows(out2)}
    assert a == b


def test_a_reused_record_is_written_back_as_it_was_read(small_run, tmp_path, capsys):
    """calibration.json of a run with --calibration is the record given (not one rebuilt from it), with the run's
    id; the id of the run that made the record, when it has one, is kept as calibration_run_id."""
    cal = tmp_path / "cal.json"
    assert main(["calibrate", str(small_run / "beads.fcs"), "--lot", "96597", "--out", str(cal)]) == 0
    record = json.loads(cal.read_text())
    out1, out2 = tmp_path / "o1", tmp_path / "o2"
    assert main(["run", str(small_run), "--out", str(out1), "--quiet", "--calibration", str(cal)]) == 0
    doc1 = json.loads((out1 / "calibration.json").read_text())
    assert list(doc1) == ["run_id", *record] and {k: v for k, v in doc1.items() if k != "run_id"} == record
    assert main(["run", str(small_run), "--out", str(out2), "--quiet",
                 "--calibration", str(out1 / "calibration.json")]) == 0
    doc2 = json.loads((out2 / "calibration.json").read_text())
    assert doc2["calibration_run_id"] == doc1["run_id"] != doc2["run_id"]
    assert {k: v for k, v in doc2.items() if k not in ("run_id", "calibration_run_id")} == record
    assert {r["calibration_id"] for r in _rows(out2)} == {record["id"]}


@pytest.mark.parametrize("damage, code", [("unreadable", "bead_tube_unusable"), ("empty", "no_bead_singlets")])
def test_a_bead_tube_without_a_fit_is_recorded_with_why(small_run, tmp_path, damage, code):
    import numpy as np

    from hladr.fcs.write import write_fcs

    run = _copy(small_run, tmp_path)
    if damage == "unreadable":
        (run / "beads.fcs").write_bytes(b"this is not an FCS file")
    else:  # a readable tube with 50 events: no bead population to fit
        data = np.random.default_rng(0).uniform(100.0, 50_000.0, size=(50, 3))
        write_fcs(run / "beads.fcs", data, ["FSC-A", "SSC-A", "PE-A"], pns=["", "", "HLA-DR"])
    out = tmp_path / "out"
    assert main(["run", str(run), "--out", str(out), "--quiet"]) == 1
    cal = json.loads((out / "calibration.json").read_text())
    assert list(cal) == ["run_id", "accepted", "flags", "reasons", "lot", "inputs"]
    assert cal["accepted"] is False and cal["flags"] == [code] and len(cal["reasons"]) == 1
    assert cal["lot"]["id"] == "96597" and cal["inputs"] == [{"file": "beads.fcs", "sha256": None}]
    doc = json.loads((out / "results.json").read_text())
    assert doc["calibration"] == cal
    assert f"bead calibration not accepted (beads.fcs): {cal['reasons'][0]}" in doc["notes"]
    assert all(r["qc"] == "fail" and r["hladr_abc"] == "" for r in _rows(out))
    report = (out / "report.html").read_text()
    assert "No calibration fit." in report and f"<li>{html.escape(cal['reasons'][0])}</li>" in report


def test_gate_command_json(small_run, capsys):
    with open(small_run / "worklist.csv", newline="") as fh:
        f = next(r for r in csv.DictReader(fh) if r["role"] == "sample")["file"]
    assert main(["gate", str(small_run / f), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    g = doc["gates"]
    assert g["cells"] >= g["singlets"] >= g["leukocytes"] >= g["monocytes"] > 1000
    assert set(doc["channels"]) == {"fsc_a", "fsc_h", "ssc_a", "cd45", "cd14", "hladr"}
    assert isinstance(doc["flags"], list)


def test_gate_command_on_real_monocyte_file(corpus, capsys):
    f = corpus / "flowWorkspaceData" / "a2004_O1T2pb05i_A2_A02.fcs"
    assert main(["gate", str(f), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["gates"]["leukocytes"] is None and doc["channels"]["cd45"] is None
    assert "gated_without_cd45" in doc["flags"]
    assert 1000 < doc["gates"]["monocytes"] < doc["gates"]["singlets"]


def test_run_keeps_its_calibration_in_the_store_once(small_run, tmp_path, capsys):
    from hladr.store import calibration_series

    db = tmp_path / "hladr.sqlite"
    for k in range(2):
        assert main(["run", str(small_run), "--out", str(tmp_path / f"o{k}"), "--db", str(db)]) == 0
    err = capsys.readouterr().err
    assert "stored calibration" in err and "already in" in err
    series = calibration_series(db)
    assert len(series) == 1 and series[0].accepted


@pytest.mark.parametrize("policy, status", [("warn", 0), ("fail", 1)])
def test_expired_lot(small_run, tmp_path, monkeypatch, policy, status):
    import dataclasses

    import hladr.results as run_mod
    from hladr.rules import load_rules

    rules = dataclasses.replace(load_rules(), cal_expired_lot=policy)
    monkeypatch.setattr(run_mod.RunConfig, "rules", lambda self: rules)
    lot = tmp_path / "old.toml"
    lot.write_text('[lot]\nid = "OLD1"\npe_per_bead = [638, 6930, 31008, 67601]\nexpiry = 2020-01-31\n')
    out = tmp_path / "out"
    assert main(["run", str(small_run), "--out", str(out), "--quiet", "--lot-file", str(lot)]) == status
    cal = json.loads((out / "calibration.json").read_text())
    assert "lot_expired" in cal["flags"] and cal["accepted"] is (policy == "warn")
    rows = _rows(out)
    if policy == "warn":
        assert all("lot_expired" in r["flags"] and r["qc"] == "warn" for r in rows)
    else:
        assert all(r["qc"] == "fail" and r["hladr_abc"] == "" for r in rows)


TEMPLATE = Path(__file__).parents[1] / "data" / "monocytes_template.xml"


def test_run_with_a_gating_ml_template(small_run, tmp_path):
    out = tmp_path / "out"
    assert main(["run", str(small_run), "--out", str(out), "--quiet", "--gates", str(TEMPLATE)]) == 0
    with open(small_run / "truth.csv", newline="") as fh:
        truth = {r["sample_id"]: r for r in csv.DictReader(fh)}
    for r in _rows(out):
        t = truth[r["sample_id"]]
        assert abs(int(r["monocyte_count"]) / int(t["true_monocytes"]) - 1) < 0.03
        assert abs(float(r["hladr_abc"]) / float(t["true_hladr_abc"]) - 1) < 0.05
    s = json.loads((out / "results.json").read_text())["samples"][0]
    assert s["gate"]["template"] == TEMPLATE.name and len(s["gate"]["template_sha256"]) == 64
    assert s["gate"]["gate_path"][-1].lower() == "monocytes"


def test_per_row_template_from_the_worklist(small_run, tmp_path):
    run = _copy(small_run, tmp_path)
    shutil.copy(TEMPLATE, run / "lab_gates.xml")
    with open(run / "worklist.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    first = next(r for r in rows if r["role"] == "sample")
    first["gates"] = "lab_gates.xml"
    with open(run / "worklist.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0].keys()) + ["gates"])
        w.writeheader()
        w.writerows(rows)
    out = tmp_path / "out"
    assert main(["run", str(run), "--out", str(out), "--quiet"]) == 0
    samples = {s["file"]: s for s in json.loads((out / "results.json").read_text())["samples"]}
    assert samples[first["file"]]["gate"]["template"] == "lab_gates.xml"
    assert all("mixture" in s["gate"] for f, s in samples.items() if f != first["file"])
    # the report marks that tube's gates as manual, in the summary and its section, and draws the template's path
    page = (out / "report.html").read_text(encoding="utf-8")
    sid = samples[first["file"]]["sample_id"]
    assert page.count("<span class=manual>manual gates</span>") == 2
    assert re.search(rf'>{re.escape(sid)}</a> <span class=manual>manual gates</span>', page)
    assert "Gates: <b>manual (Gating-ML lab_gates.xml, SHA-256" in page
    figs = json.loads((out / "figures.json").read_text(encoding="utf-8"))["samples"]
    drawn = next(f["figure"] for f in figs if f["file"] == first["file"])
    assert drawn["manual"] is True
    assert [s["name"] for s in drawn["steps"]] == samples[first["file"]]["gate"]["gate_path"]


def test_unusable_template_stops_the_run(small_run, tmp_path, capsys):
    bad = tmp_path / "bad.xml"
    bad.write_text("<not-gating-ml/>")
    assert main(["run", str(small_run), "--out", str(tmp_path / "o"), "--gates", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.xml" in err[0]


def test_gate_command_with_a_template(small_run, capsys):
    with open(small_run / "worklist.csv", newline="") as fh:
        f = next(r for r in csv.DictReader(fh) if r["role"] == "sample")["file"]
    assert main(["gate", str(small_run / f), "--json", "--gates", str(TEMPLATE)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["gates"]["monocytes"] == doc["template_gates"]["Monocytes"] > 1000
    assert doc["gates"]["cells"] >= doc["gates"]["singlets"] >= doc["gates"]["leukocytes"] >= doc["gates"]["monocytes"]
