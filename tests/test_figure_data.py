"""The report's gating-plot histogram equals NumPy's histogram2d, bin for bin."""

from __future__ import annotations

import numpy as np
import pytest

from hladr.figures import histogram2d as _histogram2d


@pytest.mark.parametrize("seed", range(6))
def test_histogram2d_is_numpys(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 5000))
    x, y = rng.normal(5, 1, n), rng.normal(6, 1, n)
    xr = [4.0, 6.0] if seed % 2 else ([float(x.min()), float(x.max())] if n else [0.0, 1.0])
    yr = [5.0, 7.0]
    if n > 20:
        x[:3] = [xr[0], xr[1], 100.0]  # on both outer edges, and outside
        y[3:20] = np.linspace(*yr, 49)[rng.integers(0, 49, 17)]  # on inner edges
    np.testing.assert_array_equal(_histogram2d(x, y, 48, xr, yr), np.histogram2d(x, y, bins=48, range=[xr, yr])[0])
    z = np.full(7, 3.0)  # a range of zero width, as histogram2d widens it
    np.testing.assert_array_equal(_histogram2d(z, z, 4, [3.0, 3.0], [3.0, 3.0]),
                                  np.histogram2d(z, z, bins=4, range=[[3.0, 3.0], [3.0, 3.0]])[0])
