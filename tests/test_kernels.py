"""Each Numba kernel agrees with its NumPy twin, including on awkward values."""

from __future__ import annotations

import numpy as np
import pytest

from hladr import _kernels as K
from hladr.gating import _kernels as GK


def _awkward(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.lognormal(6, 2, size=n)
    x[rng.random(n) < 0.05] *= -1          # negatives (compensation)
    x[rng.random(n) < 0.02] = np.nan       # NaN
    x[rng.random(n) < 0.02] = 0.0          # zeros
    x[rng.random(n) < 0.02] = 262143.0     # saturated
    return x


@pytest.mark.parametrize("n", [0, 1, 2, 1001])
def test_scatter_range_kernels_agree_with_reference(n):
    rng = np.random.default_rng(n)
    data = np.column_stack([_awkward(rng, n), _awkward(rng, n), _awkward(rng, n)]).astype(np.float32)
    if n:
        data[rng.random(n) < 0.1, 1] = 262143.0  # a pile-up at the top
        data[rng.random(n) < 0.02, 2] = np.inf
    for i_fsc, i_ssc in ((1, 0), (0, 1), (2, 1), (1, 1)):
        for min_pileup, share in ((2, 5e-4), (2, 0.2), (1, 0.0)):
            got = GK.on_scale(data, i_fsc, i_ssc, min_pileup, share)
            ref = GK.on_scale_ref(data, i_fsc, i_ssc, min_pileup, share)
            np.testing.assert_array_equal(got[0], ref[0])
            assert got[1:] == ref[1:]
    if n > 100:  # a pile-up on column 1: its maximum is the limit, and the events holding it are off scale
        _, _, hi, _ = GK.on_scale(data, 1, 0, 2, 5e-4)
        assert hi == 262143.0
    nan = np.full((5, 2), np.nan, dtype=np.float32)
    assert GK.on_scale(nan, 0, 1, 2, 5e-4)[1:] == (0, np.inf, np.inf)


@pytest.mark.parametrize("n", [0, 1, 2, 1001])
def test_gather_ranked_agrees_with_reference(n):
    rng = np.random.default_rng(n)
    data = rng.normal(size=(n, 5)).astype(np.float32)
    mask = rng.random(n) < 0.6
    for k in {0, int(mask.sum()) // 2, int(mask.sum())}:
        ranks = np.sort(rng.choice(int(mask.sum()), k, replace=False))
        np.testing.assert_array_equal(GK.gather_ranked(data, mask, ranks), GK.gather_ranked_ref(data, mask, ranks))


@pytest.mark.parametrize("n", [0, 1, 2, 1001])
def test_abc_kernels_agree_with_reference(n):
    rng = np.random.default_rng(n)
    pe = _awkward(rng, n)
    a, b = 0.12, 1.03
    np.testing.assert_allclose(K.abc_from_pe(pe, a, b), K.abc_from_pe_ref(pe, a, b), rtol=1e-12)
    got, ref = K.abc_summary(pe[np.isfinite(pe)], a, b), K.abc_summary_ref(pe[np.isfinite(pe)], a, b)
    np.testing.assert_allclose(got[:2], ref[:2], rtol=1e-12, equal_nan=True)
    assert got[2] == ref[2]


def test_abc_of_nonpositive_is_zero_and_ranked_lowest():
    pe = np.array([-5.0, 0.0, 10.0, 100.0, 1000.0])
    abc = K.abc_from_pe(pe, 0.0, 1.0)
    assert abc[0] == 0 and abc[1] == 0
    np.testing.assert_allclose(abc[2:], [10.0, 100.0, 1000.0])
    med, geo, npos = K.abc_summary(pe, 0.0, 1.0)
    assert med == pytest.approx(10.0)       # the two non-positive events count, as 0
    assert geo == pytest.approx(100.0)      # geometric mean of positive values only
    assert npos == 3


@pytest.mark.parametrize("seed", [0, 1])
def test_compensation_kernel_agrees_and_inverts_spillover(seed):
    rng = np.random.default_rng(seed)
    true = rng.lognormal(5, 1, size=(500, 5)).astype(np.float32)
    spill = np.eye(3) + rng.uniform(0, 0.2, size=(3, 3)) * (1 - np.eye(3))
    cols = np.array([1, 2, 4])
    observed = true.copy()
    observed[:, cols] = (true[:, cols].astype(np.float64) @ spill).astype(np.float32)
    inv = np.linalg.inv(spill)
    got = K.compensate_columns(observed, cols, inv)
    ref = K.compensate_columns_ref(observed, cols, inv)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(got, true, rtol=1e-4, atol=1e-2)
    np.testing.assert_array_equal(got[:, [0, 3]], observed[:, [0, 3]])  # unlisted untouched


def _chain_args(i_sing=1, sing_is_ratio=True, i_cd45=3, box=True):
    """A 3-component mixture in (asinh CD14, asinh SSC, asinh CD45); component 1 is the monocytes."""
    sing = (1.0, 1.4) if sing_is_ratio else (1e4, 2e5)  # ratio FSC-A/FSC-H, or FSC-W itself
    rng = np.random.default_rng(11)
    means = np.array([[1.0, 4.0, 3.0], [3.0, 5.0, 4.0], [2.0, 6.0, 2.5]])
    covs = []
    for _ in range(3):
        a = rng.normal(0, 0.3, (3, 3))
        covs.append(a @ a.T + 0.2 * np.eye(3))
    precs = np.linalg.inv(np.array(covs))
    log_norm = np.log([0.5, 0.2, 0.3]) - 0.5 * np.linalg.slogdet(np.array(covs))[1]
    is_mono = np.array([False, True, False])
    cof = np.array([262.0, 262.0, 262.0])
    lo, hi = (np.array([1.0, 100.0, 50.0]), np.array([2e5, 2.5e5, 2e5])) if box else (
        np.full(3, -np.inf), np.full(3, np.inf))
    return (0, i_sing, 2, i_cd45, np.array([4, 2, 3], dtype=np.int64),
            100.0, 200000.0, 1.0, 250000.0,
            sing[0], sing[1], sing_is_ratio,
            500.0,
            cof, lo, hi, means, precs, log_norm, is_mono, 11.34, 1.0)


@pytest.mark.parametrize("variant", [dict(), dict(i_sing=-1), dict(i_cd45=-1), dict(sing_is_ratio=False),
                                     dict(box=False)])
def test_monocyte_chain_agrees_with_reference(variant):
    rng = np.random.default_rng(3)
    n = 20000
    data = np.empty((n, 5), dtype=np.float32)
    data[:, 0] = rng.uniform(-1000, 260000, n)
    data[:, 1] = data[:, 0] / rng.uniform(0.6, 1.3, n)
    data[:, 2] = rng.uniform(-100, 262143, n)
    data[:, 3] = rng.lognormal(7, 1.5, n)
    data[:, 4] = rng.lognormal(7, 1.5, n)
    data[rng.random(n) < 0.01, 4] = np.nan
    data[rng.random(n) < 0.01, 1] = 0.0
    args = _chain_args(**variant)
    m1, c1 = GK.monocyte_chain(data, *args)
    m2, c2 = GK.monocyte_chain_ref(data, *args)
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_array_equal(c1, c2)
    assert c1[0] >= c1[1] >= c1[2] >= c1[3] > 0   # each step keeps a subset of its parent


def test_monocyte_chain_box_only_skips_work():
    """The raw-scale box never changes membership when it holds the monocyte ellipsoid."""
    rng = np.random.default_rng(4)
    data = rng.lognormal(7, 1.5, (5000, 5)).astype(np.float32)
    m_box, _ = GK.monocyte_chain_ref(data, *_chain_args(box=True))
    m_all, _ = GK.monocyte_chain_ref(data, *_chain_args(box=False))
    assert m_all.sum() > 0
    # the test box is wide: both agree
    np.testing.assert_array_equal(m_box, m_all)


def test_monocyte_chain_on_empty_input():
    data = np.zeros((0, 5), dtype=np.float32)
    m, c = GK.monocyte_chain(data, *_chain_args())
    assert m.shape == (0,) and list(c) == [0, 0, 0, 0]


@pytest.mark.parametrize("n_rows", [0, 1, 777])
def test_weighted_sum_rows_agrees_with_reference(n_rows):
    rng = np.random.default_rng(n_rows)
    data = _awkward(rng, 4000).reshape(1000, 4).astype(np.float32)
    rows = rng.choice(1000, size=n_rows).astype(np.int64)
    cols, w = np.array([2, 0, 3], dtype=np.int64), np.array([1.02, -0.13, 0.004])
    got, ref = K.weighted_sum_rows(data, rows, cols, w), K.weighted_sum_rows_ref(data, rows, cols, w)
    assert got.dtype == np.float64 and got.shape == (n_rows,)
    np.testing.assert_array_equal(got, ref)  # same terms, same order: bit for bit (NaN included)


@pytest.mark.parametrize("seed", [0, 1])
def test_compensation_kernel_in_place_equals_copy(seed):
    """``out=data`` overwrites the matrix with exactly the values of the copying call (twin too)."""
    rng = np.random.default_rng(seed)
    data = _awkward(rng, 6000).reshape(1000, 6).astype(np.float32)
    cols = np.array([4, 1, 2], dtype=np.int64)
    inv = np.linalg.inv(np.eye(3) + rng.uniform(0, 0.2, size=(3, 3)) * (1 - np.eye(3)))
    for kernel in (K.compensate_columns, K.compensate_columns_ref):
        copied = kernel(data, cols, inv)
        inplace = data.copy()
        got = kernel(inplace, cols, inv, inplace)
        assert got is inplace
        np.testing.assert_array_equal(inplace, copied)  # bit for bit, NaN included
        np.testing.assert_array_equal(inplace[:, [0, 3, 5]], data[:, [0, 3, 5]])  # unlisted untouched
    out = np.full_like(data, 7.0)  # a separate ``out``: only the listed columns are written
    K.compensate_columns(data, cols, inv, out)
    np.testing.assert_array_equal(out[:, cols], K.compensate_columns(data, cols, inv)[:, cols])
    assert np.all(out[:, [0, 3, 5]] == 7.0)
    empty = np.zeros((0, 6), dtype=np.float32)
    assert K.compensate_columns(empty, cols, inv, empty).shape == (0, 6)


@pytest.mark.parametrize("n_rows", [0, 1, 1000])
def test_weighted_sum_all_equals_weighted_sum_rows(n_rows):
    rng = np.random.default_rng(n_rows)
    data = _awkward(rng, 4 * n_rows).reshape(n_rows, 4).astype(np.float32)
    cols, w = np.array([2, 0, 3], dtype=np.int64), np.array([1.02, -0.13, 0.004])
    got = K.weighted_sum_all(data, cols, w, np.empty(n_rows))
    ref = K.weighted_sum_all_ref(data, cols, w, np.empty(n_rows))
    rows = K.weighted_sum_rows(data, np.arange(n_rows, dtype=np.int64), cols, w)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(got, rows)  # the same value per row as the gathering kernel


@pytest.mark.parametrize("threads", [1, 3])
def test_on_scale_over_slices_merges_the_pile_up(threads):
    """Slices of rows in threads: the maxima, their counts and the pile-up's events are merged."""
    rng = np.random.default_rng(threads)
    n = 40_000
    data = np.column_stack([_awkward(rng, n), _awkward(rng, n)]).astype(np.float32)
    data[rng.random(n) < 0.01, 0] = 262143.0  # a pile-up spread over every slice
    data[-3:, 1] = 1e9  # a maximum held by 3 events of the last slice only: not a pile-up of 5e-4
    for share in (5e-4, 0.5):
        got = GK.on_scale(data, 0, 1, 2, share, threads=threads)
        ref = GK.on_scale_ref(data, 0, 1, 2, share)
        np.testing.assert_array_equal(got[0], ref[0])
        assert got[1:] == ref[1:]
