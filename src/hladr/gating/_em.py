"""Expectation-maximisation of full-covariance Gaussian mixtures: Numba kernels (``cache=True``) and NumPy twins.

The same algorithm as scikit-learn's ``GaussianMixture(covariance_type="full")``
after its initialisation (:func:`em_fit`): E-step with log-densities through the
Cholesky factor of each precision and log-sum-exp responsibilities; M-step with
``nk = sum(resp) + 10 eps``, means, covariances plus ``reg_covar`` on the diagonal
and weights ``nk / sum(nk)``; stop when the mean log-likelihood (computed in the
E-step, with the parameters before the M-step) changes by less than ``tol``, or after
``max_iter`` iterations. The parameters returned are those of the last M-step.

Why we write our own EM: the gate fits two mixtures per tube, 6 components on 5,000
rows and 10 components on ~10,000 rows of 3-4 features, 5-25 iterations each. At that
size scikit-learn's EM spends its time around the arithmetic -- input validation and
array-API dispatch at every step, a BLAS call per component on (n, 4) arrays, n x k
temporaries: 117 ms for the main fit and its ``predict_proba`` and 55 ms for the coarse
debris mixture in a 1M-event tube's gate (profile of issue 11). benchmarks/bench_em.py
times both on the same rows (6 simulated tubes, one core): main fit 109 ms with
scikit-learn (8.3 ms per iteration, its k-means++ start included) and 11 ms here (0.85 ms
per iteration, the same start included); coarse fit 24 ms and 3.1 ms. The
initialisation stays scikit-learn's (:func:`hladr.gating.populations` calls its
``kmeans_plusplus`` with the same random state, then one M-step on the one-hot
responsibilities, as ``GaussianMixture(init_params="k-means++")`` does), so both start
from the same point and take the same steps up to rounding: tests/gating/test_em.py finds the
same iteration count and parameters equal to ~1e-13, and the same gate.

Layout: rows are columns here (``Xt`` is ``(d, n)``, responsibilities ``(k, n)``), so
every inner loop runs along contiguous rows and vectorises. The exponentials of the
E-step are NumPy's (SIMD; Numba's scalar ``exp`` is ~20 times slower per value and would
be most of an iteration), so :func:`e_step` and :func:`em_fit` are Python functions
around the kernels :func:`log_scores` and :func:`m_step`. Four features (the panels with
CD45) take written-out loops with every coefficient and sum in registers, 3-5 times faster
than the loops over ``d``. A fitted mixture is scored with the same layout
(:mod:`hladr.gating._mixture_scores`).
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import njit
from ._mixture_scores import best_of

__all__ = ["precision_cholesky", "precision_cholesky_ref", "log_scores", "log_scores_ref",
           "m_step", "m_step_ref", "e_step", "em_fit", "predict"]

_LOG_2PI = math.log(2.0 * math.pi)
_EPS10 = 10.0 * float(np.finfo(np.float64).eps)  # scikit-learn's guard against empty components


# --------------------------------------------------------------------------- kernels
@njit(cache=True, nogil=True)
def precision_cholesky(covs):  # pragma: no cover - compiled; tested against precision_cholesky_ref
    """``(k, d, d)`` upper-triangular ``inv(cholesky(cov)).T`` per component, ``(k,)`` the log of its
    determinant, and ``ok`` (False when a covariance is not positive definite)."""
    k, d, _ = covs.shape
    prec = np.zeros((k, d, d))
    log_det = np.zeros(k)
    low = np.zeros((d, d))
    for c in range(k):
        low[:, :] = 0.0
        for i in range(d):  # Cholesky-Banachiewicz: cov = low @ low.T
            for j in range(i + 1):
                s = covs[c, i, j]
                for m in range(j):
                    s -= low[i, m] * low[j, m]
                if i == j:
                    if not (s > 0.0):
                        return prec, log_det, False
                    low[i, i] = math.sqrt(s)
                else:
                    low[i, j] = s / low[j, j]
        for col in range(d):  # inv(low) by forward substitution, column by column, stored transposed
            for i in range(col, d):
                s = 1.0 if i == col else 0.0
                for m in range(col, i):
                    s -= low[i, m] * prec[c, col, m]
                prec[c, col, i] = s / low[i, i]
        for i in range(d):
            log_det[c] += math.log(prec[c, i, i])
    return prec, log_det, True


@njit(cache=True, nogil=True)
def log_scores(Xt, weights, means, prec, log_det, out):  # pragma: no cover - compiled
    """``out[c, r]`` = log(weight) + Gaussian log-density of row ``r`` (column of ``Xt``) under component ``c``.

    ``y = (x - mean) @ prec`` with the upper-triangular precision Cholesky factor; the
    log-density is ``-(d log(2 pi) + |y|^2) / 2 + log_det``. Four features (the panels with
    CD45) take a written-out loop with every coefficient in a register (4-5 times faster).
    """
    if Xt.shape[0] == 4:
        _log_scores4(Xt, weights, means, prec, log_det, out)
        return
    d, n = Xt.shape
    k = means.shape[0]
    diff = np.empty((d, n))
    y = np.empty(n)
    for c in range(k):
        base = -0.5 * d * _LOG_2PI + log_det[c] + math.log(weights[c])
        for i in range(d):
            m = means[c, i]
            for r in range(n):
                diff[i, r] = Xt[i, r] - m
        q = out[c]
        q[:] = 0.0
        for j in range(d):
            p = prec[c, 0, j]
            for r in range(n):
                y[r] = diff[0, r] * p
            for i in range(1, j + 1):
                p = prec[c, i, j]
                for r in range(n):
                    y[r] += diff[i, r] * p
            for r in range(n):
                q[r] += y[r] * y[r]
        for r in range(n):
            q[r] = base - 0.5 * q[r]


@njit(cache=True, nogil=True)
def _log_scores4(Xt, weights, means, prec, log_det, out):  # pragma: no cover - compiled
    """:func:`log_scores` for four features, the same operations in the same order."""
    n = Xt.shape[1]
    x0, x1, x2, x3 = Xt[0], Xt[1], Xt[2], Xt[3]
    for c in range(means.shape[0]):
        base = -0.5 * 4 * _LOG_2PI + log_det[c] + math.log(weights[c])
        m0, m1, m2, m3 = means[c, 0], means[c, 1], means[c, 2], means[c, 3]
        p00, p01, p02, p03 = prec[c, 0, 0], prec[c, 0, 1], prec[c, 0, 2], prec[c, 0, 3]
        p11, p12, p13 = prec[c, 1, 1], prec[c, 1, 2], prec[c, 1, 3]
        p22, p23, p33 = prec[c, 2, 2], prec[c, 2, 3], prec[c, 3, 3]
        o = out[c]
        for r in range(n):
            a0 = x0[r] - m0
            a1 = x1[r] - m1
            a2 = x2[r] - m2
            a3 = x3[r] - m3
            y0 = a0 * p00
            y1 = a0 * p01 + a1 * p11
            y2 = a0 * p02 + a1 * p12 + a2 * p22
            y3 = a0 * p03 + a1 * p13 + a2 * p23 + a3 * p33
            o[r] = base - 0.5 * (((y0 * y0 + y1 * y1) + y2 * y2) + y3 * y3)


# sums in any order (vectorised): the rounding differs from BLAS's by ~1e-16 relative, as BLAS's own does
@njit(cache=True, nogil=True, fastmath={"reassoc"})
def m_step(Xt, resp, reg_covar):  # pragma: no cover - compiled; tested against m_step_ref
    """``nk`` (``sum(resp) + 10 eps`` per component), means and covariances (+ ``reg_covar`` on the diagonal)
    from rows ``Xt`` ``(d, n)`` and responsibilities ``resp`` ``(k, n)``; two passes (means, then the
    deviations from them). Four features take a written-out loop, sums in registers (3 times faster)."""
    if Xt.shape[0] == 4:
        return _m_step4(Xt, resp, reg_covar)
    d, n = Xt.shape
    k = resp.shape[0]
    nk = np.empty(k)
    means = np.empty((k, d))
    covs = np.empty((k, d, d))
    diff = np.empty((d, n))
    for c in range(k):
        w = resp[c]
        s = 0.0
        for r in range(n):
            s += w[r]
        s += _EPS10
        nk[c] = s
        for i in range(d):
            t = 0.0
            for r in range(n):
                t += w[r] * Xt[i, r]
            m = t / s
            means[c, i] = m
            for r in range(n):
                diff[i, r] = Xt[i, r] - m
        for i in range(d):
            for j in range(i + 1):
                t = 0.0
                for r in range(n):
                    t += w[r] * diff[i, r] * diff[j, r]
                covs[c, i, j] = t / s
                covs[c, j, i] = t / s
            covs[c, i, i] += reg_covar
    return nk, means, covs


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _m_step4(Xt, resp, reg_covar):  # pragma: no cover - compiled; tested through m_step
    """:func:`m_step` for four features."""
    n = Xt.shape[1]
    k = resp.shape[0]
    x0, x1, x2, x3 = Xt[0], Xt[1], Xt[2], Xt[3]
    nk = np.empty(k)
    means = np.empty((k, 4))
    covs = np.empty((k, 4, 4))
    for c in range(k):
        w = resp[c]
        s = t0 = t1 = t2 = t3 = 0.0
        for r in range(n):
            wr = w[r]
            s += wr
            t0 += wr * x0[r]
            t1 += wr * x1[r]
            t2 += wr * x2[r]
            t3 += wr * x3[r]
        s += _EPS10
        nk[c] = s
        m0, m1, m2, m3 = t0 / s, t1 / s, t2 / s, t3 / s
        means[c, 0], means[c, 1], means[c, 2], means[c, 3] = m0, m1, m2, m3
        c00 = c01 = c02 = c03 = c11 = c12 = c13 = c22 = c23 = c33 = 0.0
        for r in range(n):
            wr = w[r]
            a0 = x0[r] - m0
            a1 = x1[r] - m1
            a2 = x2[r] - m2
            a3 = x3[r] - m3
            b0, b1, b2, b3 = wr * a0, wr * a1, wr * a2, wr * a3
            c00 += b0 * a0
            c01 += b1 * a0
            c02 += b2 * a0
            c03 += b3 * a0
            c11 += b1 * a1
            c12 += b2 * a1
            c13 += b3 * a1
            c22 += b2 * a2
            c23 += b3 * a2
            c33 += b3 * a3
        v = (c00, c01, c02, c03, c01, c11, c12, c13, c02, c12, c22, c23, c03, c13, c23, c33)
        for i in range(4):
            for j in range(4):
                covs[c, i, j] = v[4 * i + j] / s
            covs[c, i, i] += reg_covar
    return nk, means, covs


# --------------------------------------------------------------------------- NumPy twins
def precision_cholesky_ref(covs: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Twin of :func:`precision_cholesky` (scikit-learn's ``_compute_precision_cholesky``)."""
    from scipy.linalg import solve_triangular  # heavy (~0.2 s to import); only this twin (the tests) needs it

    k, d, _ = covs.shape
    prec = np.zeros((k, d, d))
    for c in range(k):
        try:
            low = np.linalg.cholesky(covs[c])
        except np.linalg.LinAlgError:
            return prec, np.zeros(k), False
        prec[c] = solve_triangular(low, np.eye(d), lower=True).T
    return prec, np.log(np.diagonal(prec, axis1=1, axis2=2)).sum(axis=1), True


def log_scores_ref(Xt, weights, means, prec, log_det, out) -> None:
    """Twin of :func:`log_scores` (scikit-learn's ``_estimate_weighted_log_prob``, transposed)."""
    X = Xt.T
    d = Xt.shape[0]
    for c in range(means.shape[0]):
        q = np.sum(np.square(X @ prec[c] - means[c] @ prec[c]), axis=1)
        out[c] = -0.5 * (d * _LOG_2PI + q) + log_det[c] + np.log(weights[c])


def m_step_ref(Xt, resp, reg_covar) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Twin of :func:`m_step` (scikit-learn's ``_estimate_gaussian_parameters``, full covariances)."""
    X = Xt.T
    d = Xt.shape[0]
    nk = resp.sum(axis=1) + _EPS10
    means = resp @ X / nk[:, None]
    covs = np.empty((means.shape[0], d, d))
    for c in range(means.shape[0]):
        diff = X - means[c]
        covs[c] = (resp[c] * diff.T) @ diff / nk[c] + reg_covar * np.eye(d)
    return nk, means, covs


# --------------------------------------------------------------------------- EM
def e_step(Xt: np.ndarray, weights: np.ndarray, means: np.ndarray, prec: np.ndarray, log_det: np.ndarray,
           out: np.ndarray, *, reference: bool = False) -> float:
    """Responsibilities into ``out`` ``(k, n)``; returns the rows' mean log-likelihood (log-sum-exp)."""
    (log_scores_ref if reference else log_scores)(Xt, weights, means, prec, log_det, out)
    if out.shape[1] == 0:
        return float("nan")
    top = out.max(axis=0)
    with np.errstate(under="ignore"):
        out -= top
        np.exp(out, out=out)
    s = out.sum(axis=0)
    out /= s
    return float(np.mean(top + np.log(s)))


def em_fit(X: np.ndarray, resp: np.ndarray, *, reg_covar: float, tol: float, max_iter: int,
           reference: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, bool]:
    """EM of a full-covariance Gaussian mixture of the rows ``X`` ``(n, d)``, started by one M-step on the
    initial responsibilities ``resp`` ``(n, k)`` whose weights are ``nk / n`` (as scikit-learn's start).

    Returns weights, means, covariances, the responsibilities of ``X`` under them ``(n, k)``, the
    iterations run and whether the lower bound converged. Raises ValueError, as scikit-learn does,
    when a component's covariance is not positive definite (not with ``reg_covar`` > 0 in practice).
    ``reference=True`` runs the NumPy twins.
    """
    Xt = np.ascontiguousarray(X.T, dtype=np.float64)
    n = Xt.shape[1]
    mstep = m_step_ref if reference else m_step
    chol = precision_cholesky_ref if reference else precision_cholesky
    nk, means, covs = mstep(Xt, np.ascontiguousarray(resp.T, dtype=np.float64), reg_covar)
    weights = nk / n
    work = np.empty((means.shape[0], n))
    lower, n_iter, converged = -np.inf, 0, False
    for it in range(1, max_iter + 1):
        n_iter = it
        prec, log_det, ok = chol(covs)
        if not ok:
            break
        lb = e_step(Xt, weights, means, prec, log_det, work, reference=reference)
        nk, means, covs = mstep(Xt, work, reg_covar)
        weights = nk / nk.sum()
        change, lower = lb - lower, lb
        if abs(change) < tol:
            converged = True
            break
    prec, log_det, ok = chol(covs)
    if not ok:
        raise ValueError("Gaussian mixture: a component's covariance is not positive definite "
                         "(collapsed on too few distinct rows)")
    e_step(Xt, weights, means, prec, log_det, work, reference=reference)
    return weights, means, covs, work.T, n_iter, converged


def predict(X: np.ndarray, weights: np.ndarray, means: np.ndarray, covs: np.ndarray) -> np.ndarray:
    """Likeliest component of each row of ``X`` ``(n, d)`` (scikit-learn's ``GaussianMixture.predict``)."""
    Xt = np.ascontiguousarray(X.T, dtype=np.float64)
    prec, log_det, ok = precision_cholesky(covs)
    if not ok:
        raise ValueError("Gaussian mixture: a component's covariance is not positive definite")
    out = np.empty((means.shape[0], Xt.shape[1]))
    log_scores(Xt, weights, means, prec, log_det, out)
    return best_of(out, np.ones(means.shape[0], dtype=np.bool_))
