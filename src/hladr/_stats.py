"""Two small statistics shared by the bead fit, the bead-tube detection, the gate and quantification.

``robust_sd(x)`` is ``1.4826 * median(|x - median(x)|)``: the median absolute deviation
scaled to estimate the standard deviation of a normal distribution, unmoved by the few
outliers (debris, doublets, a neighbouring population) that would inflate a plain SD.

``density_peaks(values, ...)`` is the histogram of ``values`` smoothed by a Gaussian and
the peaks of that density; the bead fit finds its bead levels with it and the gate the
valley below the first substantial peak.

Both keep the arithmetic of the expressions they replaced, call for call, so moving them
here changed no result in its last bit (``tests/test_stats.py`` checks them against those
expressions).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["MAD_TO_SD", "mad", "robust_sd", "DensityPeaks", "density_peaks", "gaussian_smooth", "prominent_peaks"]

MAD_TO_SD = 1.4826
"""MAD x 1.4826 estimates the SD of normally distributed data (1 / Phi^-1(3/4) = 1.4826...)."""


def mad(x: np.ndarray, centre: float | None = None) -> np.floating:
    """Median absolute deviation of ``x`` from ``centre`` (default: the median of ``x``).

    Pass ``centre`` when the median is already at hand: the value is the same, one
    median fewer is computed. A NumPy scalar in the precision of ``x`` (a float32 column
    gives a float32 MAD, as the expressions this replaced did).
    """
    c = np.median(x) if centre is None else centre
    return np.median(np.abs(x - c))


def robust_sd(x: np.ndarray, centre: float | None = None) -> np.floating:
    """Robust SD of ``x``: ``MAD_TO_SD * mad(x, centre)``, in the precision of ``x``."""
    return MAD_TO_SD * mad(x, centre)


class DensityPeaks(NamedTuple):
    """A smoothed histogram and its peaks (indices into ``density``, low to high)."""

    density: np.ndarray
    edges: np.ndarray
    peaks: np.ndarray


def density_peaks(
    values: np.ndarray, *, bins: int, value_range: tuple[float, float], sigma: float, prominence: float
) -> DensityPeaks:
    """Peaks of the smoothed density of ``values``.

    Parameters
    ----------
    values : (N,) float ndarray
        Finite values; those outside ``value_range`` are not counted.
    bins : int
        Histogram bins over ``value_range``.
    value_range : (float, float)
        Low and high edge of the histogram.
    sigma : float
        SD of the Gaussian smoothing, in bins.
    prominence : float
        A peak must stand out by at least this fraction of the highest density.

    Returns
    -------
    DensityPeaks
        ``density`` (bins,) the smoothed counts, ``edges`` (bins + 1,) the bin edges,
        ``peaks`` the bins holding a peak. The density is padded with a zero bin on
        each side before the search, so a population cut by the range's edge (its
        peak in the first or last bin) is still found.
    """
    hist, edges = np.histogram(values, bins=bins, range=value_range)
    dens = gaussian_smooth(hist.astype(float), sigma)
    padded = np.concatenate([[0.0], dens, [0.0]])
    peaks = prominent_peaks(padded, prominence * dens.max())
    return DensityPeaks(dens, edges, peaks - 1)


# scipy.ndimage.gaussian_filter1d and scipy.signal.find_peaks did this, and every run paid a second
# to import scipy.signal and scipy.ndimage for these two small functions (a whole one-tube run takes
# about two). The two below are theirs, operation for operation, so every result is the same to the
# last bit (tests/test_stats.py compares them with SciPy on many inputs).
def gaussian_smooth(x: np.ndarray, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter1d(x, sigma)`` of a float64 line: mode ``reflect`` (``d c b a | a b
    c d | d c b a``), the kernel truncated at ``truncate`` SDs and summed symmetrically, outermost first."""
    x = np.asarray(x, dtype=np.float64)
    sd = float(sigma)
    radius = int(truncate * sd + 0.5)
    k = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sd * sd) * k**2)
    w = (phi / phi.sum())[::-1]  # correlate1d's weights; the centre is w[radius]
    n = x.size
    if n == 0:
        return x.copy()
    xp = np.pad(x, radius, mode="symmetric")
    out = xp[radius:radius + n] * w[radius]
    for j in range(radius, 0, -1):  # as NI_Correlate1D's symmetric loop: (x[i-j] + x[i+j]) * w, j = radius..1
        out += (xp[radius - j:radius - j + n] + xp[radius + j:radius + j + n]) * w[radius - j]
    return out


def prominent_peaks(x: np.ndarray, min_prominence: float) -> np.ndarray:
    """``scipy.signal.find_peaks(x, prominence=min_prominence)[0]``: local maxima (a plateau's middle,
    rounded down), kept when their prominence (height above the higher of the lowest points reached
    on each side before a higher point) is at least ``min_prominence``."""
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    peaks = []
    i = 1
    while i < n - 1:
        if x[i - 1] < x[i]:
            ahead = i + 1
            while ahead < n - 1 and x[ahead] == x[i]:
                ahead += 1
            if x[ahead] < x[i]:
                peaks.append((i + ahead - 1) // 2)
                i = ahead
        i += 1
    keep = []
    for p in peaks:
        top = x[p]
        i, left_min = p, top
        while i >= 0 and x[i] <= top:
            left_min = min(left_min, x[i])
            i -= 1
        i, right_min = p, top
        while i <= n - 1 and x[i] <= top:
            right_min = min(right_min, x[i])
            i += 1
        if top - max(left_min, right_min) >= min_prominence:
            keep.append(p)
    return np.array(keep, dtype=np.intp)
