"""The shared robust SD and density peaks (``hladr._stats``): their values, and bit-identity with the
expressions they replaced in the bead fit, the bead-tube detection, the gate and quantification."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks

from hladr._stats import MAD_TO_SD, density_peaks, mad, robust_sd


def test_robust_sd_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0, 100.0])  # median 3; |x - 3| = 2, 1, 0, 1, 97 -> MAD 1
    assert mad(x) == 1.0
    assert robust_sd(x) == MAD_TO_SD == 1.4826
    assert mad(x, 0.0) == 3.0  # |x - 0| = x: median 3
    assert robust_sd(np.full(7, 5.0)) == 0.0


def test_robust_sd_estimates_the_sd_of_normal_data_and_ignores_outliers():
    rng = np.random.default_rng(0)
    x = rng.normal(10.0, 2.0, 200_000)
    assert robust_sd(x) == pytest.approx(2.0, rel=0.01)
    dirty = np.concatenate([x, np.full(10_000, 1e6)])  # 5 % wild values: the plain SD explodes, this does not
    assert np.std(dirty) > 1e5
    assert robust_sd(dirty) == pytest.approx(2.0, rel=0.1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [1, 2, 5, 1000, 1001])
def test_robust_sd_is_the_replaced_expression_to_the_last_bit(dtype, n):
    rng = np.random.default_rng(n)
    x = rng.lognormal(3.0, 1.5, n).astype(dtype)
    med = np.median(x)
    old = 1.4826 * np.median(np.abs(x - med))  # as written in the gate, the bead fit and the detection
    for new in (robust_sd(x), robust_sd(x, med)):
        assert new == old and np.asarray(new).dtype == np.asarray(old).dtype
    if dtype is np.float64:  # the bead fit's saturation and rCV, and quantify's rCV: float64 PE, Python floats
        old_float = 1.4826 * float(np.median(np.abs(x - float(med))))
        assert float(robust_sd(x, float(med))) == old_float
        old_rcv = 100.0 * 1.4826 * float(np.median(np.abs(x - float(med)))) / float(med)
        assert 100.0 * MAD_TO_SD * float(mad(x, float(med))) / float(med) == old_rcv


def _inline_peaks(v, bins, lo, hi, sigma, prominence):
    """The idiom as it was written in beads/calibrate.py and gating/automated.py."""
    hist, edges = np.histogram(v, bins=bins, range=(lo, hi))
    dens = gaussian_filter1d(hist.astype(float), sigma)
    padded = np.concatenate([[0.0], dens, [0.0]])
    peaks, _ = find_peaks(padded, prominence=prominence * dens.max())
    return dens, edges, peaks - 1


def test_density_peaks_finds_two_populations_where_they_are():
    rng = np.random.default_rng(1)
    v = np.concatenate([rng.normal(2.0, 0.1, 5000), rng.normal(5.0, 0.2, 3000)])
    dens, edges, peaks = density_peaks(v, bins=350, value_range=(0.0, 7.0), sigma=2.0, prominence=0.02)
    assert dens.shape == (350,) and edges.shape == (351,)
    centres = 0.5 * (edges[peaks] + edges[peaks + 1])
    assert centres == pytest.approx([2.0, 5.0], abs=0.1)  # bins 0.02 wide; sampling noise


def test_density_peaks_at_the_edge_of_the_range_are_found():
    rng = np.random.default_rng(2)
    v = np.concatenate([np.zeros(3000), rng.normal(4.0, 0.2, 4000)])  # a pile-up at the low edge, densest there
    dens, _, peaks = density_peaks(v, bins=200, value_range=(0.0, 5.0), sigma=1.0, prominence=0.02)
    assert dens.argmax() == 0
    assert peaks[0] == 0 and len(peaks) == 2


def test_density_peaks_prominence_is_relative_to_the_highest_density():
    rng = np.random.default_rng(3)
    v = np.concatenate([rng.normal(2.0, 0.1, 10_000), rng.normal(5.0, 0.1, 300)])  # a bump 3 % as high
    kw = dict(bins=350, value_range=(0.0, 7.0), sigma=2.0)
    assert len(density_peaks(v, **kw, prominence=0.01).peaks) == 2
    assert len(density_peaks(v, **kw, prominence=0.1).peaks) == 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_density_peaks_is_the_replaced_idiom_to_the_last_bit(seed):
    rng = np.random.default_rng(seed)
    v = np.log10(rng.lognormal(np.repeat([6.0, 8.3, 9.8, 10.6], 500), 0.05))
    lo, hi = v.min(), v.max()
    nbins = int(np.clip((hi - lo) / 0.01, 64, 1024))
    sigma = max(1.0, 0.02 / ((hi - lo) / nbins))
    for args in ((nbins, lo, hi, sigma, 0.01), (256, *np.percentile(v, [0.1, 99.9]), 2.0, 0.02)):  # fit, gate
        bins, a, b, s, p = args
        got = density_peaks(v, bins=bins, value_range=(a, b), sigma=s, prominence=p)
        want = _inline_peaks(v, bins, a, b, s, p)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("seed", range(8))
def test_gaussian_smooth_and_prominent_peaks_are_scipys_to_the_last_bit(seed):
    """Ours because importing scipy.ndimage and scipy.signal cost a second of every run; theirs bit for bit:
    lines short and long, kernels wider than the line (reflected again and again), plateaus and ties."""
    from hladr._stats import gaussian_smooth, prominent_peaks

    rng = np.random.default_rng(seed)
    for _ in range(150):
        n = int(rng.integers(1, 1200))
        sigma = float(rng.choice([0.5, 1.0, 2.0, 2.7, 5.0, 20.0, rng.uniform(0.3, 40.0)]))
        x = rng.poisson(rng.uniform(0, 50), n).astype(float)
        if rng.uniform() < 0.3:
            x = np.round(x / 5) * 5  # ties and plateaus
        smooth = gaussian_filter1d(x, sigma)
        np.testing.assert_array_equal(gaussian_smooth(x, sigma), smooth)
        padded = np.concatenate([[0.0], smooth, [0.0]])
        p = float(rng.uniform(0, 0.3)) * max(smooth.max(), 1e-9)
        np.testing.assert_array_equal(prominent_peaks(padded, p), find_peaks(padded, prominence=p)[0])
        steps = np.round(rng.normal(0, 1, n) * 3) / 3  # many plateaus of equal values
        np.testing.assert_array_equal(prominent_peaks(steps, 0.2), find_peaks(steps, prominence=0.2)[0])
