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

__all__ = ["MAD_TO_SD", "mad", "robust_sd", "DensityPeaks", "density_peaks"]

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
    # scipy.signal and scipy.ndimage take about a second to import: loaded only when a density is searched
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import find_peaks

    hist, edges = np.histogram(values, bins=bins, range=value_range)
    dens = gaussian_filter1d(hist.astype(float), sigma)
    padded = np.concatenate([[0.0], dens, [0.0]])
    peaks, _ = find_peaks(padded, prominence=prominence * dens.max())
    return DensityPeaks(dens, edges, peaks - 1)
