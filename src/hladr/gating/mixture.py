"""The Gaussian mixture of a tube's gating features: the density-dependent sample, the fit, its scores.

Calling contract: every function takes plain arrays in the gate's feature space (one row
per event, ``asinh(value / cofactor)`` of CD14, SSC, FSC and, when the panel has it, CD45)
and returns arrays or a frozen :class:`MixtureFit`; nothing here reads files, prints or
keeps state. :mod:`hladr.gating.populations` merges and names the components.

Notes
-----
The sample keeps each row with a probability that falls with its local density
(:func:`density_sample`, SPADE's density-dependent downsampling), so that a population of
1 % keeps enough rows to get its own components; every kept row carries the weight 1/p,
and the mixture's weights are re-estimated with those weights, so they are shares of the
tube again (:func:`fit_mixture`). The fit is ``GaussianMixture(covariance_type="full")``:
scikit-learn's k-means++ start, our EM (:mod:`hladr.gating._em`), scored at many rows by
the kernels of :mod:`hladr.gating._mixture_scores`.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np

from .._parallel import blas_threads
from . import _em
from ._kmeans import kmeans_plusplus
from ._mixture_scores import best_of, mahalanobis_scores

__all__ = [
    "MixtureFit",
    "Gmm",
    "component_scores",
    "likeliest",
    "chi2_ppf",
    "chi2_cdf",
    "density_sample",
    "weighted_median",
    "gaussian_mixture",
    "fit_mixture",
    "bhattacharyya",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class MixtureFit:
    """A fitted mixture: weights (shares of the tube), means, covariances and precisions."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray

    @functools.cached_property
    def precisions(self) -> np.ndarray:
        return np.linalg.inv(self.covariances)

    @functools.cached_property
    def log_norm(self) -> np.ndarray:
        """log(weight) - log(normaliser) of each component."""
        d = self.means.shape[1]
        logdet = np.linalg.slogdet(self.covariances)[1]
        return np.log(np.maximum(self.weights, 1e-300)) - 0.5 * logdet - 0.5 * d * np.log(2.0 * np.pi)


def component_scores(X: np.ndarray, means: np.ndarray, precisions: np.ndarray,
                     log_norm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, k) log of weight x density of each component at each row of ``X``, and the squared
    Mahalanobis distances they come from.

    Both are transposed views of C-contiguous ``(k, n)`` arrays (``.T`` gives those back): the
    Numba kernel :func:`hladr.gating._mixture_scores.mahalanobis_scores` runs along the rows, 10 times NumPy's einsum.
    """
    k = means.shape[0]
    lp, d2 = np.empty((k, X.shape[0])), np.empty((k, X.shape[0]))
    mahalanobis_scores(np.ascontiguousarray(X.T, dtype=np.float64), np.ascontiguousarray(means, dtype=np.float64),
                       np.ascontiguousarray(precisions, dtype=np.float64),
                       np.ascontiguousarray(log_norm, dtype=np.float64), lp, d2)
    return lp.T, d2.T


def likeliest(X: np.ndarray, fit: MixtureFit) -> np.ndarray:
    """The component of ``fit`` with the largest weight x density at each row of ``X``."""
    lp = component_scores(X, fit.means, fit.precisions, fit.log_norm)[0].T
    return best_of(lp, np.ones(lp.shape[0], dtype=bool))


def chi2_ppf(q: float, df: int) -> float:
    """``scipy.stats.chi2.ppf(q, df)``, the same formula without its per-call argument handling (~0.1 ms)."""
    from scipy.special import gammaincinv  # heavy (~0.2 s to import): loaded only when a gate is fitted

    return 2.0 * gammaincinv(df / 2, q)


def chi2_cdf(x: float, df: int) -> float:
    """``scipy.stats.chi2.cdf(x, df)``, the same formula without its per-call argument handling."""
    from scipy.special import chdtr  # heavy (~0.2 s to import): loaded only when a gate is fitted

    return chdtr(df, x)


# --------------------------------------------------------------------------- sampling
def density_sample(
    X: np.ndarray, rng: np.random.Generator, target: int, *, bins: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows kept by density-dependent downsampling, and their probabilities of being kept.

    The local density of a row is the count of its cell in a ``bins``-per-dimension grid;
    a row is kept with probability ``min(1, t / count)``, ``t`` set so that about ``target``
    rows are kept (SPADE, Qiu et al. 2011). Rare populations keep all their rows.
    """
    n, d = X.shape
    if n <= target:
        return np.arange(n), np.ones(n)
    lo = np.percentile(X, 0.5, axis=0)
    hi = np.percentile(X, 99.5, axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    cell = np.zeros(n, dtype=np.int64)
    for j in range(d):
        cell = cell * bins + np.clip(((X[:, j] - lo[j]) / span[j] * bins).astype(np.int64), 0, bins - 1)
    per_cell = np.bincount(cell, minlength=bins**d)  # at most 8^4 cells: counting, not sorting
    c = per_cell[cell].astype(np.float64)
    cnt = per_cell[per_cell > 0].astype(np.float64)  # the occupied cells' counts: the sum below over cells
    lo_t, hi_t = 1.0, float(cnt.max())
    for _ in range(50):  # bisection on t: sum over rows of min(1, t/c) = target
        t = 0.5 * (lo_t + hi_t)
        if cnt @ np.minimum(1.0, t / cnt) > target:
            hi_t = t
        else:
            lo_t = t
    p = np.minimum(1.0, lo_t / c)
    keep = np.flatnonzero(rng.random(n) < p)
    return keep, p[keep]


def weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    """Median of ``x`` with weights ``w`` (the sample's 1/p: a median of the tube, not of the sample)."""
    o = np.argsort(x)
    c = np.cumsum(w[o])
    return float(x[o][np.searchsorted(c, 0.5 * c[-1])])


# --------------------------------------------------------------------------- mixtures
@dataclass(frozen=True, eq=False)
class Gmm:
    """A fitted mixture as EM left it: weights, means, covariances and the sample's responsibilities."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    resp: np.ndarray
    n_iter: int


def gaussian_mixture(X: np.ndarray, k: int, seed: int, tol: float) -> Gmm:
    """``GaussianMixture(k, covariance_type="full", reg_covar=1e-3, init_params="k-means++", tol=tol,
    max_iter=300, random_state=seed).fit(X)``: scikit-learn's own start, our EM (:mod:`hladr.gating._em`).

    scikit-learn's EM costs ~6 ms per iteration at this size, nearly all of it overhead around
    the arithmetic (see :mod:`hladr.gating._em`); the start is the same k-means++ draw and one M-step on
    its one-hot responsibilities, so the fit is scikit-learn's up to rounding.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    n = X.shape[0]
    if n < k:
        raise ValueError(f"Gaussian mixture: {n} rows for {k} components")
    # a small draw gains nothing from threads; with them it stalls on a busy machine
    with blas_threads().limit(limits=1):
        _, centres = kmeans_plusplus(X, k, random_state=seed)
    resp = np.zeros((n, k))
    resp[centres, np.arange(k)] = 1.0
    w, m, c, resp, n_iter, converged = _em.em_fit(X, resp, reg_covar=1e-3, tol=tol, max_iter=300)
    if not converged:
        logger.debug("Gaussian mixture of %d rows, %d components: not converged in %d iterations", n, k, n_iter)
    return Gmm(w, m, c, resp, n_iter)


def fit_mixture(X: np.ndarray, inv_p: np.ndarray, *, k: int, seed: int) -> MixtureFit:
    """Gaussian mixture of the sample ``X``; weights re-estimated with the rows' weights ``inv_p``."""
    k = min(k, max(1, X.shape[0] // 30))
    g = gaussian_mixture(X, k, seed, 1e-3)
    w = inv_p @ g.resp
    return MixtureFit(weights=w / w.sum(), means=g.means, covariances=g.covariances)


def bhattacharyya(m1: np.ndarray, c1: np.ndarray, m2: np.ndarray, c2: np.ndarray) -> float:
    """Bhattacharyya distance between two Gaussians (0: identical; > 1: well apart)."""
    c = 0.5 * (c1 + c2)
    dm = m1 - m2
    ld = np.linalg.slogdet(c)[1] - 0.5 * (np.linalg.slogdet(c1)[1] + np.linalg.slogdet(c2)[1])
    return float(0.125 * dm @ np.linalg.solve(c, dm) + 0.5 * ld)


