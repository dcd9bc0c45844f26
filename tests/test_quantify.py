"""quantify: the monocyte summary through the bead curve (SPEC.md section 3).

Every expected number is worked out by hand from ``AB/C = 10**(intercept + slope*log10(PE))``.
The curve itself (``beads.calibrate.apply_bead_curve``, 0 for PE <= 0) is tested with the beads.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hladr.beads.calibrate import BeadCurve, BeadLevel
from hladr.quantify import HladrSummary, summarise_monocytes

pytestmark = pytest.mark.filterwarnings("error")


def _curve(intercept: float = 0.0, slope: float = 1.0, mfi=(50.0, 500.0, 2000.0, 20_000.0),
           used=(True, True, True, True)) -> BeadCurve:
    """A curve with four levels at ``mfi``; the levels ``used`` in the fit set the extrapolation range."""
    names = ("low", "med-low", "med-high", "high")
    levels = tuple(
        BeadLevel(name=n, pe_per_bead=10.0 ** (intercept + slope * math.log10(m)), mfi=m, events=1000,
                  rcv=0.05, saturated=not u, used=u)
        for n, m, u in zip(names, mfi, used, strict=True)
    )
    return BeadCurve(slope=slope, intercept=intercept, r2=1.0, levels=levels, accepted=True, flags=(),
                     reasons=(), pe_channel="PE-A", singlets=4000, events=4000)


# --------------------------------------------------------------------------- summarise_monocytes
def test_median_geometric_mean_and_rcv_by_hand():
    # AB/C = PE; median 1000; geometric mean 10**((2 + 3 + 4) / 3) = 1000;
    # MAD of PE = median(|100-1000|, 0, |10000-1000|) = 900, rCV = 100 * 1.4826 * 900 / 1000 = 133.434
    s = summarise_monocytes(np.array([100.0, 1000.0, 10_000.0]), _curve())
    assert s.n_monocytes == 3 and s.n_nonpositive == 0
    assert s.median_pe == 1000.0
    assert s.hladr_abc == pytest.approx(1000.0, rel=1e-12)
    assert s.hladr_abc_geomean == pytest.approx(1000.0, rel=1e-12)
    assert s.rcv_pct == pytest.approx(133.434, rel=1e-12)
    assert s.flags == ()


def test_the_median_commutes_with_the_curve_for_an_odd_count():
    # slope 1.1, intercept -0.2: the median AB/C is the curve at the median PE (a monotone map)
    pe = np.array([820.0, 3.0, 15_000.0, 640.0, 2200.0])
    s = summarise_monocytes(pe, _curve(intercept=-0.2, slope=1.1))
    assert s.median_pe == 820.0
    assert s.hladr_abc == pytest.approx(10.0 ** (-0.2 + 1.1 * math.log10(820.0)), rel=1e-12)


def test_an_even_count_takes_the_mean_of_the_two_middle_abc():
    # AB/C = PE**2 / 10 (slope 2, intercept -1): middle PE 100 and 300 -> AB/C 1000 and 9000 -> median 5000,
    # not the curve at the median PE 200 (4000); the median PE itself is 200
    s = summarise_monocytes(np.array([10.0, 100.0, 300.0, 1000.0]), _curve(intercept=-1.0, slope=2.0))
    assert s.median_pe == 200.0
    assert s.hladr_abc == pytest.approx(5000.0, rel=1e-12)


def test_events_with_pe_not_positive_rank_lowest_and_are_counted():
    # AB/C [0, 0, 100, 1000, 10000]: median 100 (not 1000, as if the two were dropped);
    # geometric mean over the three positive values only: 1000
    s = summarise_monocytes(np.array([-5.0, 0.0, 100.0, 1000.0, 10_000.0]), _curve())
    assert s.n_monocytes == 5 and s.n_nonpositive == 2
    assert s.hladr_abc == pytest.approx(100.0, rel=1e-12)
    assert s.hladr_abc_geomean == pytest.approx(1000.0, rel=1e-12)


def test_no_monocytes():
    assert summarise_monocytes(np.array([]), _curve()) == HladrSummary(0, 0, None, None, None, None, ("no_monocytes",))


def test_a_median_pe_not_positive_is_not_measurable():
    # 3 of 5 events at PE <= 0: the median AB/C is 0 -> no value, flagged; it lies below the low bead too
    s = summarise_monocytes(np.array([-20.0, -1.0, 0.0, 400.0, 900.0]), _curve())
    assert s.hladr_abc is None
    assert s.hladr_abc_geomean == pytest.approx(600.0, rel=1e-12)  # sqrt(400 * 900)
    assert s.rcv_pct is None  # no spread relative to a median PE of 0
    assert s.flags == ("extrapolated_below_low_bead", "hladr_not_measurable")


def test_all_pe_not_positive_gives_no_geometric_mean():
    s = summarise_monocytes(np.array([-3.0, 0.0, -1.0]), _curve())
    assert s.n_nonpositive == 3 and s.hladr_abc is None and s.hladr_abc_geomean is None


@pytest.mark.parametrize(("median_pe", "flags"), [
    (49.9, ("extrapolated_below_low_bead",)),
    (50.0, ()),           # exactly the low bead: inside the fitted range
    (20_000.0, ()),       # exactly the high bead
    (20_000.1, ("extrapolated_above_high_bead",)),
])
def test_extrapolation_is_flagged_strictly_outside_the_bead_range(median_pe, flags):
    pe = np.array([median_pe * 0.5, median_pe, median_pe * 2.0])
    assert summarise_monocytes(pe, _curve()).flags == flags


def test_the_range_is_that_of_the_levels_used_in_the_fit():
    # the high level saturated and was left out: above the med-high bead (2000) is already extrapolated
    curve = _curve(used=(True, True, True, False))
    assert curve.mfi_range == (50.0, 2000.0)
    s = summarise_monocytes(np.array([2500.0, 3000.0, 3500.0]), curve)
    assert s.flags == ("extrapolated_above_high_bead",)
    assert s.hladr_abc == pytest.approx(3000.0, rel=1e-12)  # still reported, with the flag


def test_float32_pe_is_summarised_in_double_precision():
    pe32 = np.array([1234.5, 2345.25, 3456.125], dtype=np.float32)  # exactly representable
    s = summarise_monocytes(pe32, _curve(intercept=0.3, slope=1.0))
    assert s.hladr_abc == pytest.approx(2345.25 * 10.0 ** 0.3, rel=1e-12)
