"""Tests of the simulator: files, physics truth, phenotype truth, reproducibility."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from hladr.beads.lots import find_lot
from hladr.errors import ConfigError
from hladr.fcs.read import read_events
from hladr.rules import load_rules
from hladr.simulate import blood_profiles as bp
from hladr.simulate.patients import draw_patients
from hladr.simulate.simulator import (
    EVENT_LABELS,
    INSTRUMENTS,
    expected_phenotype,
    read_truth_events,
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


# ---------------------------------------------------------------- blood profiles (septic blood)

PROFILES = bp.PROFILE_NAMES


def _comp(ev, prof):
    """Compensated fluorescence (fitc, pe, cd14, cd45) of TubeEvents with all four channels."""
    s = np.array(prof.spillover)
    return ev.data[:, [prof.role_index(r) for r in ("fitc", "pe", "cd14", "cd45")]] @ np.linalg.inv(s)


@pytest.mark.parametrize("instrument", ALL)
@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_writes_a_readable_tube_with_matching_labels(tmp_path, instrument, profile):
    prof = INSTRUMENTS[instrument]
    truth = simulate_sample_tube(tmp_path / "s.fcs", rng=np.random.default_rng(31), instrument=instrument,
                                 hladr_abc=900, n_events=20_000, profile=profile,
                                 truth_events_path=tmp_path / "te" / "s.npz")
    ev = read_events(truth.path)
    assert ev.n_events == 20_000 and ev.pnn == tuple(ch.pnn for ch in prof.channels)
    assert ev.data.max() <= prof.pnr - 1
    te = read_truth_events(tmp_path / "te" / "s.npz")
    assert te["label_codes"].dtype == np.uint8 and len(te["labels"]) == 20_000
    names, n = np.unique(te["labels"], return_counts=True)
    assert dict(zip(names.tolist(), n.tolist(), strict=True)) == dict(truth.counts)
    assert truth.n_monocytes == int((te["labels"] == "monocyte").sum()) > 0
    assert set(te["subsets"][te["labels"] == "monocyte"]) <= {"classical", "intermediate", "non_classical"}
    assert sum(truth.monocyte_subsets.values()) == truth.n_monocytes
    assert truth.profile == profile
    ranges = bp.resolve_features(profile)
    assert set(truth.morphology) == set(ranges)
    leuk = sum(truth.counts.get(k, 0) for k in bp.LEUKOCYTE_LABELS)
    assert truth.n_leukocytes == leuk
    assert truth.monocyte_fraction_of_leukocytes == pytest.approx(truth.n_monocytes / leuk)


@pytest.mark.parametrize("profile", PROFILES)
def test_drawn_pictures_stay_within_the_profile_ranges(profile):
    ranges = bp.resolve_features(profile)
    rng = np.random.default_rng(41)
    draws = [bp.draw_morphology(rng, ranges) for _ in range(200)]
    for name, (lo, hi) in ranges.items():
        values = np.array([d[name] for d in draws])
        if bp.FEATURES[name].scale == "chance":
            assert set(values) <= {0.0, 1.0}
            if lo == hi:
                assert abs(values.mean() - lo) < 0.12, name
        else:
            assert np.all((values >= lo - 1e-12) & (values <= hi + 1e-12)), name
            if hi > lo:  # the whole range is used, not one fixed picture
                assert np.ptp(values) > 0.8 * (hi - lo) or bp.FEATURES[name].scale == "log", name
                assert len(np.unique(values)) == 200


def _arrays(profile, n=200, seed=43):
    rng = np.random.default_rng(seed)
    ranges = bp.resolve_features(profile)
    draws = [bp.draw_morphology(rng, ranges) for _ in range(n)]
    return {k: np.array([d[k] for d in draws]) for k in draws[0]}


def test_septic_profiles_carry_the_septic_features_and_the_hard_cases_are_common():
    h, s, sv = _arrays("healthy"), _arrays("sepsis"), _arrays("severe-sepsis")

    def granulocytes(a):  # neutrophils + IG = the rest of the leukocytes
        return 1 - sum(a[k] for k in ("monocyte_fraction_of_leukocytes", "lymphocyte_fraction_of_leukocytes",
                                      "eosinophil_fraction_of_leukocytes", "basophil_fraction_of_leukocytes"))

    # neutrophilia and lymphopenia
    assert np.all((granulocytes(s) >= 0.70) & (granulocytes(s) <= 0.95))
    assert np.all((granulocytes(sv) >= 0.80) & (granulocytes(sv) <= 0.97))
    assert np.all(granulocytes(h) <= 0.70) and np.all(h["lymphocyte_fraction_of_leukocytes"] >= 0.25)
    assert np.median(sv["lymphocyte_fraction_of_leukocytes"]) < 0.06
    # left shift: IGs common and large in severe sepsis, rare in health
    assert np.all(h["immature_granulocyte_fraction_of_leukocytes"] <= 0.005)
    assert np.all(sv["immature_granulocyte_fraction_of_leukocytes"] >= 0.03)
    assert np.mean(sv["immature_granulocyte_fraction_of_leukocytes"] > 0.10) > 0.35
    # IG SSC below the neutrophils and reaching into the monocytes; CD45 dimmer; CD14 under 1 decade
    ig_ssc = sv["neutrophil_ssc"] * sv["ig_ssc_relative_to_neutrophils"]
    assert np.all(ig_ssc < sv["neutrophil_ssc"])
    assert np.mean(ig_ssc < 1.3 * sv["monocyte_ssc"]) > 0.4
    assert np.all(sv["ig_cd45_relative_to_neutrophils"] < 1)
    assert np.mean(sv["ig_cd14_decades_below_monocytes"] < 1.0) == 1.0
    assert np.all(sv["ig_fsc_relative_to_monocytes"] >= 1.0)
    # monocyte CD14 several-fold lower, SSC raised, CD16+ monocytes expanded
    assert np.median(h["monocyte_cd14"]) / np.median(sv["monocyte_cd14"]) > 3
    assert np.median(sv["monocyte_ssc"]) > np.median(h["monocyte_ssc"]) * 1.2
    cd16 = {k: a["intermediate_fraction_of_monocytes"] + a["nonclassical_fraction_of_monocytes"]
            for k, a in (("h", h), ("s", s), ("sv", sv))}
    assert np.all((h["nonclassical_fraction_of_monocytes"] >= 0.05) & (h["nonclassical_fraction_of_monocytes"] <= 0.15))
    assert np.median(cd16["sv"]) > 2 * np.median(cd16["h"])
    # monocytopenia (~1 % of leukocytes) common in severe sepsis, absent in health
    assert np.mean(sv["monocyte_fraction_of_leukocytes"] < 0.015) > 0.2
    assert np.min(sv["monocyte_fraction_of_leukocytes"]) >= 0.008
    assert np.all(h["monocyte_fraction_of_leukocytes"] >= 0.04)
    # broad and bimodal HLA-DR
    assert np.max(sv["hladr_log10_sd"]) <= 0.4 and np.mean(sv["hladr_log10_sd"] > 0.3) > 0.4
    assert 0.35 < sv["hladr_bimodal"].mean() < 0.65 and h["hladr_bimodal"].sum() == 0
    # debris, dead cells, aggregates up; eosinophils near zero
    for k in ("debris_fraction_of_events", "dead_cell_fraction_of_events",
              "mono_gran_doublet_fraction_of_monocytes"):
        assert np.median(sv[k]) > np.median(h[k]), k
    assert np.all(sv["eosinophil_fraction_of_leukocytes"] <= 0.003)
    assert np.all(h["eosinophil_fraction_of_leukocytes"] >= 0.01)


def _tube(profile, seed, features=None, abc=1500.0, n=20_000):
    return simulate_sample_events(rng=np.random.default_rng(seed), hladr_abc=abc, n_events=n,
                                  profile=profile, features=features)


def test_monocytopenic_tubes_have_about_one_percent_monocytes():
    for k, profile in enumerate(("healthy", "sepsis", "severe-sepsis")):
        for seed in range(3):
            ev = _tube(profile, 100 + 10 * k + seed, "monocytopenic")
            counts = ev.counts()
            leuk = sum(counts.get(lab, 0) for lab in bp.LEUKOCYTE_LABELS)
            assert 0.007 <= counts["monocyte"] / leuk <= 0.014
            assert ev.params["scenarios"] == ("monocytopenic",)


def test_forcing_one_feature_keeps_the_other_draws():
    a = _tube("sepsis", 7)
    b = _tube("sepsis", 7, {"monocyte_fraction_of_leukocytes": 0.02, "hladr_log10_sd": (0.3, 0.3)})
    ma, mb = a.params["morphology"], b.params["morphology"]
    assert mb["monocyte_fraction_of_leukocytes"] == pytest.approx(0.02) and mb["hladr_log10_sd"] == 0.3
    assert {k: v for k, v in ma.items() if k not in ("monocyte_fraction_of_leukocytes", "hladr_log10_sd")} == {
        k: v for k, v in mb.items() if k not in ("monocyte_fraction_of_leukocytes", "hladr_log10_sd")}
    assert b.params["feature_overrides"]["monocyte_fraction_of_leukocytes"] == (0.02, 0.02)
    both = bp.resolve_features("healthy", ["left_shift", {"immature_granulocyte_fraction_of_leukocytes": 0.2}])
    assert both["immature_granulocyte_fraction_of_leukocytes"] == (0.2, 0.2)
    assert both["ig_ssc_relative_to_neutrophils"] == bp.SCENARIOS["left_shift"]["ig_ssc_relative_to_neutrophils"]
    with pytest.raises(ConfigError, match="unknown blood feature"):
        bp.resolve_features("sepsis", {"monocyte_fraction": 0.01})
    with pytest.raises(ConfigError, match="unknown blood scenario"):
        bp.resolve_features("sepsis", "monocytopaenic")
    with pytest.raises(ConfigError, match="unknown blood profile"):
        _tube("septic", 1)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        bp.resolve_features("sepsis", {"monocyte_fraction_of_leukocytes": (0.5, 1.5)})


def test_severe_tube_populations_sit_where_the_picture_says():
    prof = INSTRUMENTS["canto"]
    ev = _tube("severe-sepsis", 12, ["left_shift", "aggregates", "dirty"], n=40_000)
    c = _comp(ev, prof)
    lab = ev.labels
    ssc, fsc = ev.column("ssc_a"), ev.column("fsc_a")

    def med(x, name):
        return float(np.median(x[lab == name]))

    cd14, cd45 = c[:, 2], c[:, 3]
    # IGs: SSC below the neutrophils, overlapping the monocytes; CD45 dimmer than neutrophils
    assert med(ssc, "immature_granulocyte") < med(ssc, "granulocyte")
    lo, hi = np.percentile(ssc[lab == "monocyte"], [5, 95])
    ig = ssc[lab == "immature_granulocyte"]
    assert np.mean((ig >= lo) & (ig <= hi)) > 0.3
    assert med(cd45, "immature_granulocyte") < med(cd45, "granulocyte") < med(cd45, "monocyte")
    assert med(fsc, "immature_granulocyte") > 0.95 * med(fsc, "monocyte")
    # CD14: IGs within 1 decade of the monocytes, neutrophils dim
    assert np.log10(med(cd14, "monocyte") / med(cd14, "immature_granulocyte")) < 1.0
    # monocyte-granulocyte aggregates: CD14 bright, SSC high, not monocytes
    assert med(cd14, "mono_gran_doublet") > 0.8 * med(cd14, "monocyte")
    assert med(ssc, "mono_gran_doublet") > 1.5 * med(ssc, "monocyte")
    # dead cells: low FSC, SSC high for the FSC, dim CD45
    assert med(fsc, "dead_cell") < 0.7 * med(fsc, "granulocyte")
    assert med(ssc / np.maximum(fsc, 1), "dead_cell") > med(ssc / np.maximum(fsc, 1), "granulocyte")
    assert med(cd45, "dead_cell") < med(cd45, "granulocyte")
    assert ev.counts()["debris"] / len(lab) >= 0.24


def test_healthy_blood_has_eosinophils_basophils_and_cd14_bright_monocytes():
    prof = INSTRUMENTS["canto"]
    ev = _tube("healthy", 13, n=40_000)
    c, lab, ssc = _comp(ev, prof), ev.labels, ev.column("ssc_a")
    counts = ev.counts()
    leuk = sum(counts.get(k, 0) for k in bp.LEUKOCYTE_LABELS)
    assert 0.01 <= counts["eosinophil"] / leuk <= 0.06 and counts["basophil"] > 0
    assert np.median(ssc[lab == "eosinophil"]) > np.median(ssc[lab == "granulocyte"])
    assert np.median(c[lab == "eosinophil", 3]) > np.median(c[lab == "granulocyte", 3])
    assert np.median(c[lab == "eosinophil", 2]) < 0.3 * np.median(c[lab == "granulocyte", 2])
    sub = ev.subsets[lab == "monocyte"]
    assert 0.04 <= np.mean(sub == "non_classical") <= 0.16
    mono14 = c[lab == "monocyte", 2]
    assert np.median(mono14[sub == "classical"]) > 10_000
    assert np.median(mono14[sub == "non_classical"]) < 0.35 * np.median(mono14[sub == "classical"])
    assert np.log10(np.median(mono14) / np.median(c[lab == "granulocyte", 2])) >= 0.9
    nk = ev.subsets[lab == "lymphocyte"] == "nk"
    assert 0.03 < nk.mean() < 0.25


@pytest.mark.parametrize("abc", [300.0, 1000.0, 4000.0])
def test_septic_monocyte_median_is_exact_over_all_subsets(abc):
    ev = _tube("severe-sepsis", int(abc), ["cd16_monocytes", "hladr_bimodal", "hladr_broad"], abc=abc)
    mono = ev.labels == "monocyte"
    assert np.median(ev.pe_molecules[mono]) == pytest.approx(abc, rel=1e-9)
    sub = ev.subsets[mono]
    assert np.mean(sub != "classical") > 0.3
    log_abc = np.log10(ev.pe_molecules[mono])
    m = ev.params["morphology"]
    assert m["hladr_bimodal"] == 1.0
    within = 0.7 * m["hladr_log10_sd"]
    assert np.std(log_abc) > np.hypot(within, 0.3 * m["hladr_mode_separation_decades"])
    # aggregates and doublets hold monocytes too, but only singlets are the truth
    assert "mono_gran_doublet" in ev.counts()


def test_septic_runs_draw_low_abc_with_both_sides_of_the_threshold():
    thr = RULES.immunoparalysis_hladr_abc
    for profile, hi in (("sepsis", 15_000), ("severe-sepsis", 8_000)):
        pts = draw_patients(np.random.default_rng(5), 200, RULES, run_profile=profile)
        abc = np.array([p["abc"] for p in pts])
        assert abc.min() >= 300 and abc.max() <= hi
        assert np.mean(abc < thr) > 0.55 and np.any(abc > thr)
        called = np.array([p["ferritin_ng_ml"] < RULES.mals_ferritin_ng_ml for p in pts])  # not MALS
        assert not np.any(called & (abc > thr / 1.1) & (abc < thr * 1.1))
        for n in (2, 3):
            few = [p["abc"] for p in draw_patients(np.random.default_rng(n), n, RULES, run_profile=profile)]
            assert min(few) < thr < max(few)
    healthy = [p["abc"] for p in draw_patients(np.random.default_rng(5), 200, RULES)]
    assert min(healthy) >= 500 and max(healthy) <= 60_000


def test_run_mixes_profiles_per_sample_and_writes_event_truth(tmp_path):
    mix = ["healthy"] * 8 + [("sepsis", "monocytopenic"), ("severe-sepsis", "left_shift")]
    kw = dict(seed=9, n_samples=10, events_per_tube=20_000, bead_events=3000, sample_profiles=mix)
    run = simulate_run(tmp_path / "a", **kw)
    simulate_run(tmp_path / "b", **kw)
    record = json.loads(run.truth_json.read_text(encoding="utf-8"))
    tubes = [s["tube"] for s in record["samples"]]
    assert [t["profile"] for t in tubes] == ["healthy"] * 8 + ["sepsis", "severe-sepsis"]
    assert tubes[8]["scenarios"] == ["monocytopenic"] and tubes[9]["scenarios"] == ["left_shift"]
    assert 0.007 <= tubes[8]["monocyte_fraction_of_leukocytes"] <= 0.014
    assert tubes[9]["morphology"]["immature_granulocyte_fraction_of_leukocytes"] >= 0.10
    assert record["beads"]["truth_events"] == "truth_events/beads.npz"
    for rec, t in zip(run.samples, tubes, strict=True):
        assert t["truth_events"] == f"truth_events/{rec.file[:-4]}.npz"
        te = read_truth_events(tmp_path / "a" / t["truth_events"])
        assert len(te["labels"]) == read_events(tmp_path / "a" / rec.file).n_events
        assert int((te["labels"] == "monocyte").sum()) == rec.tube.n_monocytes == t["n_monocytes"]
        assert "morphology" in t and t["morphology"]["hladr_log10_sd"] == pytest.approx(t["hladr_log10_sd"])
    bead_te = read_truth_events(tmp_path / "a" / "truth_events" / "beads.npz")
    assert set(np.unique(bead_te["labels"])) <= set(EVENT_LABELS) and "bead_high" in bead_te["labels"]
    # the event truth is outside the top level: a run reader sees only the FCS files
    assert sorted(p.name for p in (tmp_path / "a").iterdir() if p.suffix == ".npz") == []
    names = [p.relative_to(tmp_path / "a") for p in sorted((tmp_path / "a").rglob("*")) if p.is_file()]
    assert len(names) == 11 + 3 + 11
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    with pytest.raises(ConfigError, match="entries"):
        simulate_run(tmp_path / "c", n_samples=3, sample_profiles=["sepsis"])
    with pytest.raises(ConfigError, match="unknown blood profile"):
        simulate_run(tmp_path / "d", n_samples=2, sample_profiles=["sepsis", "septic"])
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("instrument", ALL)
def test_septic_run_on_every_instrument_keeps_phenotype_margins(tmp_path, instrument):
    run = simulate_run(tmp_path, seed=4, instrument=instrument, n_samples=4, events_per_tube=4000,
                       bead_events=3000, profile="severe-sepsis")
    abcs = [r.tube.hladr_abc for r in run.samples]
    assert min(abcs) < 5000 < max(abcs) and all(300 <= a <= 8000 for a in abcs)
    for r in run.samples:
        assert r.tube.profile == "severe-sepsis"
        assert r.expected_phenotype == expected_phenotype(r.ferritin_text, r.ferritin_unit, r.tube.hladr_abc,
                                                          rules=RULES)
        assert read_events(tmp_path / r.file).n_events == 4000


def test_cli_simulate_profile(tmp_path):
    from hladr.cli import main

    assert main(["simulate", str(tmp_path / "r"), "--profile", "sepsis", "--samples", "2", "--events", "3000",
                 "--scenario", "monocytopenic"]) == 0
    record = json.loads((tmp_path / "r" / "truth.json").read_text(encoding="utf-8"))
    assert record["profile"] == "sepsis"
    assert all(s["tube"]["scenarios"] == ["monocytopenic"] for s in record["samples"])
    assert (tmp_path / "r" / "truth_events" / "P002_HLADR.npz").is_file()
    assert main(["simulate", str(tmp_path / "x"), "--profile", "septic"]) == 2
