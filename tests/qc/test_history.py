"""`hladr calibration history`: series table, Westgard violations, Levey-Jennings PNG, exit codes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics

import numpy as np
import pytest

from calibration_records import make_calibration
from hladr.cli import main
from hladr.qc.history import history_metrics
from hladr.store import calibration_series, open_store, record_calibration

LEVELS = ("low", "med-low", "med-high", "high")
DAY0 = dt.date(2026, 1, 5)

# 20 in-control baseline values (in SD-like units): signs alternate, so no run rule fires
PATTERN = [0.4, -0.6, 1.2, -1.1, 0.2, -0.3, 1.6, -0.5, 0.8, -1.6,
           0.1, -0.2, 1.5, -1.4, 0.3, -0.9, 0.7, -0.1, 1.1, -0.8]
# Ten days after the baseline, each metric given a known fault (z in units of the baseline SD).
TAIL = {
    "slope": [3.5, 0, 0, 0, 0, 0, 0, 0, 0, 0],                        # 1-3s at day 20
    "intercept": [0, 2.5, 2.5, 0, 0, 0, 0, 0, 0, 0],                  # 2-2s at day 22
    "mfi_low": [0, 0, 2.5, -2.5, 0, 0, 0, 0, 0, 0],                   # R-4s at day 23
    "mfi_med-low": [1.5, 1.5, 1.5, 1.5, 0, 0, 0, 0, 0, 0],            # 4-1s at day 23
    "mfi_med-high": [0.5] * 10,                                       # 10x at day 29
    "mfi_high": [0] * 10,                                             # in control
}
CENTRE = {"slope": (1.01, 0.002), "intercept": (-0.31, 0.007), "mfi_low": (1200.0, 20.0),
          "mfi_med-low": (12800.0, 200.0), "mfi_med-high": (56500.0, 900.0), "mfi_high": (122000.0, 2000.0)}


def _series_values(key: str) -> list[float]:
    """Baseline + tail of one metric, in its units; tail z-scores are exact w.r.t. the baseline."""
    centre, scale = CENTRE[key]
    base = [centre + scale * p for p in PATTERN]
    m, s = statistics.fmean(base), statistics.stdev(base)
    return base + [m + z * s for z in TAIL[key]]


def _record(n: int, day: dt.date, *, slope, intercept, mfi, accepted=True, serial="V33896202",
            instrument="FACSCanto II"):
    return make_calibration(n, date=day.strftime("%d-%b-%Y").upper(), serial=serial, instrument=instrument,
                            slope=slope, intercept=intercept, mfi=mfi, accepted=accepted)


def _fill(db, n_days: int = 30, *, rejected_at_end: bool = True) -> list[dt.date]:
    cols = {k: _series_values(k) for k in TAIL}
    days = [DAY0 + dt.timedelta(days=k) for k in range(n_days)]
    for k, day in enumerate(days):
        record_calibration(db, _record(k, day, slope=cols["slope"][k], intercept=cols["intercept"][k],
                                       mfi=[cols[f"mfi_{lv}"][k] for lv in LEVELS]), source="synthetic")
    if rejected_at_end:  # a wild, rejected calibration: listed and drawn, not evaluated
        day = DAY0 + dt.timedelta(days=n_days)
        record_calibration(db, _record(999, day, slope=1.4, intercept=-2.0, mfi=[10.0, 20.0, 30.0, 40.0],
                                       accepted=False), source="synthetic")
        days.append(day)
    return days


@pytest.fixture
def store(tmp_path):
    db = tmp_path / "hladr.sqlite"
    _fill(db)
    return db


def test_each_metric_catches_its_known_fault(store):
    metrics = {m.key: m for m in history_metrics(calibration_series(store))}
    found = {k: [(v.rule, v.index) for v in m.violations] for k, m in metrics.items()}
    assert found == {
        "slope": [("1-3s", 20)],
        "intercept": [("2-2s", 22)],
        "mfi_low": [("R-4s", 23)],
        "mfi_med-low": [("4-1s", 23)],
        "mfi_med-high": [("10x", 29)],
        "mfi_high": [],
    }
    slope = metrics["slope"]
    assert slope.limits.n == 20 and slope.limits.mean == pytest.approx(statistics.fmean(_series_values("slope")[:20]))
    assert slope.in_qc[-1] is False and slope.values[-1] == 1.4  # the rejected one is drawn, not evaluated


def test_cli_prints_table_and_violations_writes_png_and_exits_1(store, tmp_path, capsys):
    png = tmp_path / "charts" / "lj.png"
    assert main(["calibration", "history", "--db", str(store), "--out", str(png)]) == 1
    out = capsys.readouterr().out
    assert "FACSCanto II (SN V33896202), 2026-01-05 to 2026-02-04, 31 calibrations (1 rejected" in out
    table = [ln for ln in out.splitlines() if ln[:3].strip().isdigit()]
    assert len(table) == 31
    assert table[20].split()[1] == "2026-01-25" and table[20].endswith("1-3s")
    assert " NO " in table[30]
    expected = [("slope", "1-3s", "2026-01-25"), ("intercept", "2-2s", "2026-01-27"),
                ("MFI low", "R-4s", "2026-01-28"), ("MFI med-low", "4-1s", "2026-01-28"),
                ("MFI med-high", "10x", "2026-02-03")]
    lines = out.split("Westgard violations (5):")[1].splitlines()[2:]
    assert [(ln[2:16].strip(), ln[17:22].strip(), ln[23:33]) for ln in lines if ln.strip() and "wrote" not in ln] \
        == expected
    assert f"wrote {png}" in out
    _assert_png(png)


def _assert_png(path):
    from matplotlib.image import imread

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    h, w = imread(str(path)).shape[:2]
    assert w >= 1000 and h >= 1200  # six readable panels


def test_in_control_series_exits_0_and_writes_the_default_png(tmp_path, monkeypatch, capsys):
    db = tmp_path / "s.sqlite"
    _fill(db, n_days=20, rejected_at_end=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HLADR_DB", str(db))  # --db defaults to $HLADR_DB
    assert main(["calibration", "history"]) == 0
    out = capsys.readouterr().out
    assert "Westgard: no violation" in out and "provisional" not in out
    _assert_png(tmp_path / "levey_jennings.png")


def test_since_restricts_the_series_and_restarts_the_baseline(store, tmp_path, capsys):
    code = main(["calibration", "history", "--db", str(store), "--since", "2026-01-20",
                 "--out", str(tmp_path / "x.png")])
    out = capsys.readouterr().out
    table = [ln for ln in out.splitlines() if ln[:3].strip().isdigit()]
    assert len(table) == 16 and table[0].split()[1] == "2026-01-20"
    assert "limits from only 15 accepted calibrations" in out and "provisional" in out
    assert code in (0, 1)


def test_missing_or_empty_store_exits_2_with_one_line(tmp_path, capsys):
    missing = tmp_path / "none.sqlite"
    assert main(["calibration", "history", "--db", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "no results store" in err and len(err.strip().splitlines()) == 1
    assert not missing.exists()
    empty = tmp_path / "empty.sqlite"
    open_store(empty).close()
    assert main(["calibration", "history", "--db", str(empty), "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "no calibrations stored" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


def test_bad_since_exits_2(store, capsys):
    assert main(["calibration", "history", "--db", str(store), "--since", "yesterday"]) == 2
    assert "not a date" in capsys.readouterr().err


def test_several_instruments_need_instrument(store, tmp_path, capsys):
    record_calibration(store, _record(1, DAY0, slope=1.0, intercept=-0.3, mfi=[1, 2, 3, 4], serial="R0001",
                                      instrument="CytoFLEX"), source="synthetic")
    assert main(["calibration", "history", "--db", str(store), "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "2 instruments" in err and "CytoFLEX SN R0001" in err and "--instrument" in err
    assert main(["calibration", "history", "--db", str(store), "--instrument", "V33896202",
                 "--out", str(tmp_path / "a.png")]) == 1
    assert main(["calibration", "history", "--db", str(store), "--instrument", "cytoflex",
                 "--out", str(tmp_path / "b.png")]) == 0  # by model name; one point: no limits
    out = capsys.readouterr().out
    assert "too few accepted values" in out
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["calibration", "history", "--db", str(store), "--instrument", "SN-NONE"]) == 2
    assert "for instrument 'SN-NONE'" in capsys.readouterr().err


def test_end_to_end_from_simulated_bead_tubes(tmp_path, capsys):
    """22 bead tubes through `hladr calibrate --db`; the PE laser loses 9 % on the last two days."""
    from hladr.beads.lots import find_lot
    from hladr.simulate.instruments import PEResponse
    from hladr.simulate.simulator import simulate_bead_tube

    lot = find_lot("96597")
    rng = np.random.default_rng(2026)
    db = tmp_path / "store.sqlite"
    base = PEResponse(c0=0.307, c1=0.99, c2=0.0, voltage=520.0, voltage_exponent=7.0)
    files = []
    for k in range(22):
        day = DAY0 + dt.timedelta(days=k)
        drop = -0.04 if k >= 20 else 0.0
        resp = dataclasses.replace(base, c0=base.c0 + rng.normal(0, 0.004) + drop)
        tube = simulate_bead_tube(tmp_path / f"beads_{k:02d}.fcs", rng=rng, lot=lot, n_events=4000, response=resp,
                                  keywords={"$DATE": day.strftime("%d-%b-%Y").upper()})
        assert main(["calibrate", tube.path, "--lot", "96597", "--db", str(db)]) == 0
        files.append(tube.path)
    out = capsys.readouterr().out
    assert out.count("stored calibration") == 22
    # the same tube again: stored once, and said so
    assert main(["calibrate", files[0], "--lot", "96597", "--db", str(db)]) == 0
    assert "was already in" in capsys.readouterr().out
    assert len(calibration_series(db)) == 22

    png = tmp_path / "lj.png"
    assert main(["calibration", "history", "--db", str(db), "--out", str(png)]) == 1
    out = capsys.readouterr().out
    for level in LEVELS:
        for day in ("2026-01-25", "2026-01-26"):
            assert any(f"MFI {level}" in ln and "1-3s" in ln and day in ln for ln in out.splitlines()), (level, day)
    _assert_png(png)
