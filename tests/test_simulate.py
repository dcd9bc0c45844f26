"""Tests of the simulator: files, physics truth, phenotype truth, reproducibility."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from hladr.errors import ConfigError
from hladr.lots import find_lot
from hladr.read import read_events
from hladr.rules import load_rules
from hladr.simulate import (
    INSTRUMENTS,
    expected_phenotype,
    simulate_bead_events,
    simulate_bead_tube,
    simulate_run,
    simulate_sample_events,
    simulate_sample_tube,
)

LOT = find_lot("96597")
RULES = load_rules()
ALL = sorted(INSTRUMENTS)


def _spillover(events):
    """(column indices, matrix) from $SPILLOVER, by name or by parameter number."""
    parts = events.keyword("spillover").split(",")
    k = int(parts[0])
    names = parts[1 : 1 + k]
    matrix = np.array([float(v) for v in parts[1 + k :]]).reshape(k, k)
    if all(n.strip().isdigit() for n in names):
        cols = [int(n) - 1 for n in names]
    else:
        cols = [events.pnn.index(n) for n in names]
    return cols, matrix


def _compensated(events):
    cols, s = _spillover(events)
    data = events.data.astype(np.float64)
    data[:, cols] = data[:, cols] @ np.linalg.inv(s)
    return data


@pytest.mark.parametrize("instrument", ALL)
def test_files_read_back_with_the_instrument_conventions(tmp_path, instrument):
    prof = INSTRUMENTS[instrument]
    rng = np.random.default_rng(1)
    truth = simulate_sample_tube(tmp_path / "s.fcs", rng=rng, instrument=instrument,
                                 hladr_abc=4000, n_events=4000, sample_id="X17")
    beads = simulate_bead_tube(tmp_path / "b.fcs", rng=rng, instrument=instrument, lot=LOT,
                               n_events=3000)
    ev = read_events(truth.path)
    assert ev.n_events == 4000 == int(ev.keyword("tot"))
    assert int(ev.keyword("par")) == len(prof.channels) == len(ev.pnn)
    assert ev.pnn == tuple(ch.pnn for ch in prof.channels)
    assert ev.pns[prof.role_index("pe")] == "HLA-DR PE"
    assert ev.pns[prof.role_index("cd14")].startswith("CD14")
    assert ev.pns[prof.role_index("cd45")].startswith("CD45")
    assert ev.keyword("datatype") == prof.datatype
    assert ev.keyword("smno") == "X17" and ev.keyword("fil") == "s.fcs"
    assert ev.keyword("cyt") == prof.cyt
    t = prof.role_index("time")  # flowio scales the time channel by $TIMESTEP
    assert all(r == prof.pnr for j, r in enumerate(ev.pnr) if j != t)
    cols, s = _spillover(ev)
    assert sorted(cols) == sorted(prof.role_index(r) for r in ("fitc", "pe", "cd14", "cd45"))
    assert np.allclose(np.diag(s), 1.0) and 0.1 <= (s - np.eye(len(cols))).max() < 0.5
    # the same PE voltage and compensation in beads and samples
    bev = read_events(beads.path)
    pe_v = f"p{prof.role_index('pe') + 1}v"
    assert bev.keyword(pe_v) == ev.keyword(pe_v)
    assert bev.keyword("spillover") == ev.keyword("spillover")
    # saturation at the channel maximum, nothing above
    assert ev.data.max() <= prof.pnr - 1


def test_navios_is_integer_with_numbered_spillover(tmp_path):
    simulate_sample_tube(tmp_path / "n.fcs", rng=np.random.default_rng(2), instrument="navios",
                         hladr_abc=8000, n_events=2000)
    ev = read_events(tmp_path / "n.fcs")
    assert ev.keyword("datatype") == "I" and ev.keyword("p1b") == "32"
    assert ev.keyword("p1r") == "1048576"
    values = ev.data[:, :-1]  # the last column is TIME, scaled by $TIMESTEP on reading
    assert np.all(values == np.rint(values)) and values.min() >= 0
    names = ev.keyword("spillover").split(",")[1:5]
    assert names == ["4", "5", "6", "7"]  # FL1, FL2, FL4, FL10 INT by parameter number
    assert ev.pnn[3:7] == ("FL1 INT", "FL2 INT", "FL4 INT", "FL10 INT")


def test_panel_without_cd45_drops_the_channel(tmp_path):
    simulate_sample_tube(tmp_path / "a.fcs", rng=np.random.default_rng(3), hladr_abc=9000,
                         n_events=2000, has_cd45=False)
    ev = read_events(tmp_path / "a.fcs")
    assert "V500-A" not in ev.pnn
    assert ev.keyword("spillover").startswith("3,FITC-A,PE-A,PerCP-Cy5.5-A,")


@pytest.mark.parametrize("instrument", ALL)
def test_calibration_reference_is_the_fit_of_the_noise_free_response(tmp_path, instrument):
    prof = INSTRUMENTS[instrument]
    response = prof.draw_response(np.random.default_rng(7))
    assert 0.95 <= response.c1 <= 1.05 and abs(response.c2) <= 0.01
    truth = simulate_bead_tube(tmp_path / "b.fcs", rng=np.random.default_rng(8),
                               instrument=instrument, lot=LOT, response=response)
    pe = np.array(LOT.pe_per_bead)
    mfi = response.mfi(pe)
    assert np.allclose(truth.mfi_true, mfi)
    slope, intercept = np.polyfit(np.log10(mfi), np.log10(pe), 1)
    assert truth.calibration_slope == pytest.approx(slope, abs=1e-12)
    assert truth.calibration_intercept == pytest.approx(intercept, abs=1e-12)
    # nearly linear in log-log: the straight line is within 2 % over 500-70,000
    m = np.geomspace(500, 70_000, 30)
    fitted = 10 ** (intercept + slope * np.log10(response.mfi(m)))
    assert np.max(np.abs(fitted / m - 1)) < 0.02
    # the bead medians of the written file (true labels, compensated) give the same slope
    ev = simulate_bead_events(rng=np.random.default_rng(8), instrument=instrument, lot=LOT,
                              response=response)
    data = _compensated(read_events(truth.path))
    pe_col = data[:, prof.role_index("pe")]
    medians = [np.median(pe_col[ev.labels == f"bead_{n}"]) for n in
               ("low", "med-low", "med-high", "high")]
    measured_slope = np.polyfit(np.log10(medians), np.log10(pe), 1)[0]
    assert measured_slope == pytest.approx(truth.calibration_slope, abs=0.01)


@pytest.mark.parametrize("instrument", ALL)
def test_high_bead_below_saturation_by_default_and_at_maximum_when_saturated(instrument):
    prof = INSTRUMENTS[instrument]
    ev = simulate_bead_events(rng=np.random.default_rng(4), instrument=instrument, lot=LOT)
    high = ev.column("pe")[ev.labels == "bead_high"]
    assert len(high) > 1500
    assert np.median(high) + 3 * np.std(high) < prof.pnr - 1
    assert np.median(high) > 0.2 * prof.pnr  # near, on a log scale
    sat = simulate_bead_events(rng=np.random.default_rng(4), instrument=instrument, lot=LOT,
                               saturate_high=True)
    assert sat.response.voltage > ev.response.voltage
    high = sat.column("pe")[sat.labels == "bead_high"]
    assert np.mean(high == prof.pnr - 1) > 0.95
    med_high = sat.column("pe")[sat.labels == "bead_med-high"]
    assert np.mean(med_high == prof.pnr - 1) < 0.01


def test_saturated_and_missing_levels_are_reported(tmp_path):
    sat = simulate_bead_tube(tmp_path / "s.fcs", rng=np.random.default_rng(5), lot=LOT,
                             saturate_high=True)
    assert sat.saturated_levels == (3,) and sat.mfi_true[3] > sat.pnr
    ok = simulate_bead_tube(tmp_path / "o.fcs", rng=np.random.default_rng(5), lot=LOT)
    assert ok.saturated_levels == () and ok.missing_level is None
    assert sat.calibration_slope == pytest.approx(ok.calibration_slope)  # gain only moves c0
    miss = simulate_bead_tube(tmp_path / "m.fcs", rng=np.random.default_rng(5), lot=LOT,
                              missing_level=1)
    assert miss.level_events[1] == 0 and min(np.delete(miss.level_events, 1)) > 2500
    ev = simulate_bead_events(rng=np.random.default_rng(5), lot=LOT, missing_level=1,
                              stray_cells=25)
    levels = {lab for lab in np.unique(ev.labels) if lab.startswith("bead_") and
              lab not in ("bead_doublet", "bead_debris")}
    assert levels == {"bead_low", "bead_med-high", "bead_high"}
    assert ev.counts()["stray_cell"] == 25


@pytest.mark.parametrize("abc", [500.0, 4999.0, 60_000.0])
def test_monocyte_median_abc_is_the_truth(abc):
    ev = simulate_sample_events(rng=np.random.default_rng(int(abc)), hladr_abc=abc)
    mono = ev.labels == "monocyte"
    assert np.median(ev.pe_molecules[mono]) == pytest.approx(abc, rel=0.02)
    # HLA-DR is independent of CD14, CD45 and SSC within the monocytes (CD14 compensated:
    # PE spills into its detector)
    prof = INSTRUMENTS["canto"]
    roles = [ch.role for ch in ev.channels if ch.role in ("fitc", "pe", "cd14", "cd45")]
    s = np.array(prof.spillover)  # all four fluorescence roles are present, in this order
    comp = ev.data[:, [prof.role_index(r) for r in roles]] @ np.linalg.inv(s)
    log_abc = np.log10(ev.pe_molecules[mono])
    for values in (comp[mono, 2], ev.column("cd45")[mono], ev.column("ssc_a")[mono]):
        r = np.corrcoef(log_abc, np.log10(np.clip(values, 1, None)))[0, 1]
        assert abs(r) < 0.1


def test_population_mix_of_lysed_whole_blood():
    ev = simulate_sample_events(rng=np.random.default_rng(11), hladr_abc=3000,
                                monocyte_fraction=0.07)
    frac = {k: v / len(ev.labels) for k, v in ev.counts().items()}
    assert frac["monocyte"] == pytest.approx(0.07, abs=0.001)
    assert 0.05 <= frac["debris"] <= 0.15 and 0.03 <= frac["doublet"] <= 0.05
    assert 0.20 <= frac["lymphocyte"] + frac["b_cell"] <= 0.35
    assert 0.4 <= frac["granulocyte"] <= 0.7
    ratio = ev.column("fsc_a") / np.maximum(ev.column("fsc_h"), 1)
    single = np.isin(ev.labels, ("lymphocyte", "monocyte", "granulocyte"))
    assert np.median(ratio[ev.labels == "doublet"]) > 1.3 * np.median(ratio[single])
    ssc = ev.column("ssc_a")
    cd14 = ev.column("cd14")
    assert np.median(ssc[ev.labels == "granulocyte"]) > 2 * np.median(ssc[ev.labels == "monocyte"])
    decades = np.log10(np.median(cd14[ev.labels == "monocyte"]) /
                       np.median(cd14[ev.labels == "granulocyte"]))
    assert 0.9 <= decades <= 1.6
    b = ev.pe_molecules[ev.labels == "b_cell"]
    assert 20_000 <= np.median(b) <= 40_000


@pytest.mark.parametrize("instrument", ALL)
def test_truth_is_recoverable_with_ideal_gates(tmp_path, instrument):
    """Calibrating the true monocytes with the true bead populations meets the acceptance."""
    prof = INSTRUMENTS[instrument]
    response = prof.draw_response(np.random.default_rng(21))
    bt = simulate_bead_tube(tmp_path / "b.fcs", rng=np.random.default_rng(22),
                            instrument=instrument, lot=LOT, response=response)
    bev = simulate_bead_events(rng=np.random.default_rng(22), instrument=instrument, lot=LOT,
                               response=response)
    pe_b = _compensated(read_events(bt.path))[:, prof.role_index("pe")]
    med = [np.median(pe_b[bev.labels == lab]) for lab in
           ("bead_low", "bead_med-low", "bead_med-high", "bead_high")]
    slope, intercept = np.polyfit(np.log10(med), np.log10(LOT.pe_per_bead), 1)
    assert slope == pytest.approx(bt.calibration_slope, abs=0.02)
    for k, abc in enumerate((500.0, 2000.0, 6000.0, 25_000.0, 60_000.0)):
        rng_seed = 100 + k
        st = simulate_sample_tube(tmp_path / f"s{k}.fcs", rng=np.random.default_rng(rng_seed),
                                  instrument=instrument, hladr_abc=abc, n_events=30_000,
                                  response=response)
        ev = simulate_sample_events(rng=np.random.default_rng(rng_seed), instrument=instrument,
                                    hladr_abc=abc, n_events=30_000, response=response)
        pe = _compensated(read_events(st.path))[:, prof.role_index("pe")]
        mono_pe = pe[ev.labels == "monocyte"]
        measured = np.median(10 ** (intercept + slope * np.log10(np.clip(mono_pe, 1e-3, None))))
        assert measured == pytest.approx(st.hladr_abc, rel=0.04)


@pytest.mark.parametrize(
    ("text", "unit", "abc", "call"),
    [
        ("4421", "ng/mL", 9000, "MALS"),
        ("4420", "ng/mL", 4999, "immunoparalysis"),
        ("4420", "ng/mL", 5000, "intermediate"),
        (">5000", "ng/mL", 20_000, "MALS"),
        (">2000", "ng/mL", 20_000, "indeterminate"),
        ("<20", "ng/mL", 3000, "immunoparalysis"),
        ("9935", "pmol/L", 9000, "MALS"),  # 4421.4 ng/mL
        ("9930", "pmol/L", 9000, "intermediate"),  # 4419.2 ng/mL
        ("300", "µg/L", 700, "immunoparalysis"),
        ("", "ng/mL", 700, "indeterminate"),
    ],
)
def test_expected_phenotype_follows_the_rule_table(text, unit, abc, call):
    assert expected_phenotype(text, unit, abc, rules=RULES) == call


def test_run_files_truth_and_reproducibility(tmp_path):
    a = simulate_run(tmp_path / "a", seed=5, n_samples=6, events_per_tube=3000)
    simulate_run(tmp_path / "b", seed=5, n_samples=6, events_per_tube=3000)
    simulate_run(tmp_path / "c", seed=6, n_samples=6, events_per_tube=3000)
    assert [p.name for p in a.files] == ["beads.fcs"] + [f"P00{i}_HLADR.fcs" for i in range(1, 7)]
    for name in [p.name for p in a.files] + ["worklist.csv", "truth.csv", "truth.json"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "P001_HLADR.fcs").read_bytes() != (
        tmp_path / "c" / "P001_HLADR.fcs").read_bytes()
    with open(a.worklist, encoding="utf-8") as fh:
        work = list(csv.DictReader(fh))
    with open(a.truth_csv, encoding="utf-8") as fh:
        truth = list(csv.DictReader(fh))
    assert list(work[0]) == ["file", "role", "sample_id", "subject_id", "visit", "ferritin",
                             "ferritin_unit"]
    assert work[0]["role"] == "beads" and all(w["role"] == "sample" for w in work[1:])
    assert list(truth[0]) == ["sample_id", "file", "true_hladr_abc", "true_monocytes",
                              "ferritin_ng_ml", "expected_phenotype"]
    abcs = [float(t["true_hladr_abc"]) for t in truth]
    assert min(abcs) < 5000 < max(abcs) and all(500 <= x <= 60_000 for x in abcs)
    assert "MALS" in {t["expected_phenotype"] for t in truth}
    for w, t, rec in zip(work[1:], truth, a.samples, strict=True):
        assert w["file"] == t["file"] == rec.file
        assert t["expected_phenotype"] == expected_phenotype(
            w["ferritin"], w["ferritin_unit"], float(t["true_hladr_abc"]), rules=RULES)
        assert int(t["true_monocytes"]) == rec.tube.n_monocytes > 0
        assert read_events(tmp_path / "a" / rec.file).n_events == 3000
    record = json.loads(a.truth_json.read_text(encoding="utf-8"))
    assert record["beads"]["calibration_slope"] == pytest.approx(a.beads.calibration_slope)
    assert len(record["beads"]["mfi_true"]) == 4


def test_ferritin_reports_mix_units_and_censoring(tmp_path):
    run = simulate_run(tmp_path, seed=3, n_samples=40, events_per_tube=500)
    units = {r.ferritin_unit for r in run.samples}
    texts = [r.ferritin_text for r in run.samples]
    assert "pmol/L" in units and "ng/mL" in units
    assert any(t.startswith(">") for t in texts)
    for r in run.samples:
        if r.ferritin_text.startswith(">"):
            assert float(r.ferritin_text[1:]) >= RULES.mals_ferritin_ng_ml
            assert r.ferritin_ng_ml > float(r.ferritin_text[1:])
        elif r.ferritin_text.startswith("<"):
            assert r.ferritin_ng_ml < float(r.ferritin_text[1:])
        elif r.ferritin_unit == "pmol/L":
            assert float(r.ferritin_text) == pytest.approx(
                r.ferritin_ng_ml * RULES.ferritin_pmol_per_ng)


def test_unknown_instrument_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="known: canto, cytoflex, navios"):
        simulate_run(tmp_path, instrument="fortessa-x")
