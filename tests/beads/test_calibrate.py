"""QuantiBRITE calibration against simulated bead tubes with known truth (SPEC.md §3)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from hladr.beads.calibrate import apply_bead_curve, judge_fit
from hladr.beads.lots import find_lot
from hladr.beads.record import calibrate_beads
from hladr.rules import load_rules
from hladr.simulate.simulator import simulate_bead_tube

INSTRUMENTS = ["canto", "cytoflex", "navios"]
LOT = find_lot("96597")
REPO = Path(__file__).resolve().parents[2]


def _fit(tmp_path, inst, seed=5, **kw):
    path = tmp_path / f"beads_{inst}.fcs"
    truth = simulate_bead_tube(path, rng=np.random.default_rng(seed), instrument=inst, lot=LOT, **kw)
    cal = calibrate_beads(str(path), LOT)
    assert cal, f"no fit: {cal}"
    return truth, cal.curve


@pytest.mark.parametrize("inst", INSTRUMENTS)
def test_clean_tube_is_accepted_with_the_true_slope(tmp_path, inst):
    truth, curve = _fit(tmp_path, inst)
    assert curve.accepted and curve.flags == ()
    assert curve.slope == pytest.approx(truth.calibration_slope, abs=0.02)
    assert curve.r2 >= 0.999
    assert [lv.used for lv in curve.levels] == [True] * 4
    for lv, mfi in zip(curve.levels, truth.mfi_true, strict=True):
        assert lv.mfi == pytest.approx(mfi, rel=0.03)          # median of each level
        assert abs(lv.residual_pct) < 3.0


@pytest.mark.parametrize("inst", INSTRUMENTS)
def test_fitted_curve_within_3_percent_of_truth_across_the_bead_range(tmp_path, inst):
    truth, curve = _fit(tmp_path, inst)
    molecules = np.geomspace(LOT.pe_per_bead[0], LOT.pe_per_bead[-1], 25)
    mfi = np.array([truth.response.mfi(m) for m in molecules], dtype=float)
    err = curve.pe_molecules(mfi) / molecules - 1.0
    assert np.max(np.abs(err)) < 0.03, err


@pytest.mark.parametrize("inst", INSTRUMENTS)
def test_saturated_high_level_is_dropped_flagged_and_fit_on_three(tmp_path, inst):
    truth, curve = _fit(tmp_path, inst, saturate_high=True)
    high = curve.levels[-1]
    assert high.saturated and not high.used
    assert "saturated:high" in curve.flags
    assert curve.accepted
    assert curve.slope == pytest.approx(truth.calibration_slope, abs=0.02)


@pytest.mark.parametrize("inst", INSTRUMENTS)
@pytest.mark.parametrize("missing", [0, 1, 2, 3])
def test_missing_level_is_named_and_rejected(tmp_path, inst, missing):
    _, curve = _fit(tmp_path, inst, missing_level=missing)
    name = ("low", "med-low", "med-high", "high")[missing]
    assert f"level_missing:{name}" in curve.flags
    assert not curve.accepted
    assert curve.levels[missing].mfi is None and curve.levels[missing].events == 0
    assert any(name in r for r in curve.reasons)


def test_stray_cells_and_debris_do_not_disturb_the_fit(tmp_path):
    truth, curve = _fit(tmp_path, "canto", stray_cells=800)
    assert curve.accepted
    assert curve.slope == pytest.approx(truth.calibration_slope, abs=0.02)


def test_a_sample_tube_is_not_a_bead_tube(tmp_path):
    from hladr.simulate.simulator import simulate_sample_tube

    path = tmp_path / "s.fcs"
    simulate_sample_tube(path, rng=np.random.default_rng(1), instrument="canto", hladr_abc=8000, n_events=20000)
    cal = calibrate_beads(str(path), LOT)
    assert not cal or not cal.curve.accepted


RULES = load_rules()


@pytest.mark.parametrize(
    "slope, r2, n_used, n_missing, accepted, flag",
    [
        (1.0, 0.98, 4, 0, True, None),                 # R² limit is inclusive
        (1.0, 0.97999, 4, 0, False, "r2_low"),
        (0.85, 0.999, 4, 0, True, None),               # slope limits inclusive
        (1.15, 0.999, 4, 0, True, None),
        (0.8499, 0.999, 4, 0, False, "slope_out_of_range"),
        (1.1501, 0.999, 4, 0, False, "slope_out_of_range"),
        (1.0, 0.999, 3, 0, True, None),                # 3 usable levels (one saturated) is enough
        (1.0, 0.999, 2, 0, False, "too_few_levels"),
        (1.0, 0.999, 3, 1, False, "levels_missing"),   # an absent level rejects the tube
        (float("nan"), 0.999, 4, 0, False, "slope_out_of_range"),
    ],
)
def test_acceptance_boundaries(slope, r2, n_used, n_missing, accepted, flag):
    ok, flags, reasons = judge_fit(slope, r2, n_used=n_used, n_missing=n_missing, rules=RULES)
    assert ok is accepted
    if flag:
        assert flag in flags and reasons


def test_acceptance_follows_the_rule_table():
    strict = dataclasses.replace(RULES, cal_r2_min=0.9999)
    assert not judge_fit(1.0, 0.999, n_used=4, n_missing=0, rules=strict)[0]


# --------------------------------------------------------------------------- the bead curve, applied
def test_the_curve_gives_zero_for_pe_at_or_below_zero_and_for_nan():
    pe = np.array([-5.0, -0.0, 0.0, np.nan, 1e-300, 10.0, 1000.0])
    got = apply_bead_curve(pe, 0.5, 1.0)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got[:4], 0.0)
    assert got[4] > 0
    np.testing.assert_allclose(got[5:], [10 ** 1.5, 10 ** 3.5], rtol=1e-14)


def test_the_curve_follows_log10_pe_molecules_equals_intercept_plus_slope_log10_pe():
    pe = np.geomspace(1.0, 1e5, 41)
    got = apply_bead_curve(pe, -0.31, 1.04)
    np.testing.assert_allclose(np.log10(got), -0.31 + 1.04 * np.log10(pe), rtol=1e-13, atol=1e-13)


def test_the_curve_keeps_the_shape_of_its_input():
    assert apply_bead_curve(100.0, 0.0, 1.0).shape == ()
    assert float(apply_bead_curve(100.0, 0.0, 1.0)) == pytest.approx(100.0, rel=1e-14)
    grid = np.array([[1.0, -1.0], [10.0, 100.0]], dtype=np.float32)
    np.testing.assert_allclose(apply_bead_curve(grid, 0.0, 1.0), [[1.0, 0.0], [10.0, 100.0]], rtol=1e-6)


def test_one_function_applies_the_curve_for_the_fit_the_samples_and_the_figures():
    """The fit's fitted PE, each sample's AB/C (kernel) and BeadCurve.pe_molecules agree to the last bit."""
    from hladr import _kernels
    from hladr.quantify import summarise_monocytes

    curve = calibrate_beads(str(REPO / "example_fcs" / "beads.fcs"), LOT).curve
    for lv in curve.levels:
        assert lv.fitted_pe == float(curve.pe_molecules(lv.mfi)) == float(apply_bead_curve(lv.mfi, curve.intercept,
                                                                                             curve.slope))
        assert lv.residual_pct == 100.0 * (lv.fitted_pe - lv.pe_per_bead) / lv.pe_per_bead
    rng = np.random.default_rng(4)
    pe = np.concatenate([rng.lognormal(7.0, 1.0, 2000), [-3.0, 0.0, -20.0]])  # 2003 events, 3 not positive
    abc = curve.pe_molecules(pe)
    np.testing.assert_array_equal(abc, _kernels.abc_from_pe(pe, curve.intercept, curve.slope))
    np.testing.assert_allclose(abc, _kernels.abc_from_pe_ref(pe, curve.intercept, curve.slope), rtol=1e-12)
    summary = summarise_monocytes(pe, curve)
    assert summary.hladr_abc == float(np.median(abc))  # odd count: the middle value itself
    assert summary.n_nonpositive == 3 and summary.n_monocytes == 2003
