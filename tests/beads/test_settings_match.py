"""Beads and samples must be acquired with identical settings (SPEC.md §3, issue 4)."""

from __future__ import annotations

import csv
import datetime as dt
import shutil

import numpy as np
import pytest

from hladr.beads.record import AcquisitionSettings
from hladr.cli import main
from hladr.events import parse_fcs_date
from hladr.fcs.read import read_events
from hladr.fcs.write import write_fcs

BASE = AcquisitionSettings(instrument="FACSCanto II", serial="V1", pe_channel="PE-A", pe_voltage="480",
                           pe_gain="1", date="20-NOV-2026",
                           spillover={"channels": ["PE-A", "X-A"], "matrix": [[1, 0.1], [0.02, 1]]})


def _with(**kw):
    return AcquisitionSettings(**{**BASE.__dict__, **kw})


def test_identical_settings_match():
    assert BASE.mismatches(_with()) == []
    assert BASE.mismatches(_with(pe_gain="1.0")) == []   # same number, other spelling


@pytest.mark.parametrize(
    "change, expect",
    [
        (dict(pe_voltage="510"), "PE voltage 480 vs 510"),
        (dict(pe_gain="2"), "PE gain 1 vs 2"),
        (dict(instrument="LSRII"), "instrument FACSCanto II vs LSRII"),
        (dict(serial="V2"), "instrument serial V1 vs V2"),
        (dict(spillover={"channels": ["PE-A", "X-A"], "matrix": [[1, 0.2], [0.02, 1]]}), "spillover matrix differs"),
        (dict(spillover=None), "spillover present in only one"),
        (dict(date="21-NOV-2026"), "acquisition date 2026-11-20 vs 2026-11-21"),
    ],
)
def test_each_mismatch_is_named(change, expect):
    assert any(expect in m for m in BASE.mismatches(_with(**change)))


def test_date_window_is_configurable():
    assert BASE.mismatches(_with(date="21-NOV-2026"), max_days=1) == []
    assert BASE.mismatches(_with(date="22-NOV-2026"), max_days=1)


@pytest.mark.parametrize(
    "text, expect",
    [("20-NOV-2026", dt.date(2026, 11, 20)), ("18-May-05", dt.date(2005, 5, 18)),
     ("2026-11-20", dt.date(2026, 11, 20)), ("24/12/2026", dt.date(2026, 12, 24)),
     ("03/04/2026", None), ("", None), (None, None), ("yesterday", None)],
)
def test_parse_fcs_date(text, expect):
    assert parse_fcs_date(text) == expect


def test_voltage_mismatch_fails_that_sample_in_a_run(tmp_path):
    from hladr.simulate.simulator import simulate_run

    run = tmp_path / "run"
    simulate_run(run, seed=11, instrument="canto", n_samples=2, events_per_tube=40_000)
    with open(run / "worklist.csv", newline="") as fh:
        victim = next(r for r in csv.DictReader(fh) if r["role"] == "sample")["file"]
    ev = read_events(run / victim)
    k = ev.index("PE-A") + 1
    kw = {f"${key.upper()}": v for key, v in ev.keywords.items()
          if not key.startswith(("p", "begin", "end", "byteord", "datatype", "mode", "nextdata", "par", "tot"))}
    kw[f"$P{k}V"] = str(int(float(ev.keyword(f"p{k}v"))) + 30)
    for j in range(1, len(ev.pnn) + 1):
        if j != k and ev.keyword(f"p{j}v"):
            kw[f"$P{j}V"] = ev.keyword(f"p{j}v")
    write_fcs(run / victim, np.asarray(ev.data), list(ev.pnn), pns=list(ev.pns), pnr=list(ev.pnr), keywords=kw)
    out = tmp_path / "out"
    assert main(["run", str(run), "--out", str(out), "--quiet"]) == 1
    with open(out / "results.csv", newline="") as fh:
        rows = {r["file"]: r for r in csv.DictReader(fh)}
    assert rows[victim]["qc"] == "fail" and "settings_mismatch" in rows[victim]["flags"]
    assert "PE voltage" in rows[victim]["qc_reasons"]
    assert all(r["qc"] != "fail" for f, r in rows.items() if f != victim)
    shutil.rmtree(run)
