"""Scores of a fitted Gaussian mixture at many rows: Numba kernels (``cache=True``) and NumPy twins.

The gate scores rows against the components it fitted (:func:`hladr.gating.mixture.component_scores`,
:func:`hladr.gating.mixture.likeliest`): :func:`mahalanobis_scores` gives each row's squared
Mahalanobis distance to each component and its log of weight x density, the same quadratic
form, term for term, as the gate's own kernel (:func:`hladr.gating._kernels.monocyte_chain`);
:func:`best_of` picks the likeliest allowed component of each row. The layout is that of the
EM (:mod:`hladr.gating._em`): rows are columns (``Xt`` is ``(d, n)``, scores ``(k, n)``), so
every inner loop runs along contiguous rows; four features take written-out loops with every
coefficient in registers.

Kernels take only primitive arrays and scalars; each has a NumPy twin (``*_ref``) that the
tests compare it with.
"""

from __future__ import annotations

import numpy as np

from .._jit import njit

__all__ = ["mahalanobis_scores", "mahalanobis_scores_ref", "best_of", "best_of_ref"]


@njit(cache=True, nogil=True)
def mahalanobis_scores(Xt, means, precs, log_norm, lp, d2):  # pragma: no cover - compiled
    """``d2[c, r]``: squared Mahalanobis distance of row ``r`` (column of ``Xt``) to component ``c`` with
    the full precision matrices ``precs``; ``lp[c, r] = log_norm[c] - d2[c, r] / 2``.

    The scores of a fitted gate (:func:`hladr.gating.mixture.component_scores`): the same
    quadratic form, term for term, as the gate's kernel ``monocyte_chain``.
    """
    if Xt.shape[0] == 4:
        _mahalanobis_scores4(Xt, means, precs, log_norm, lp, d2)
        return
    d, n = Xt.shape
    k = means.shape[0]
    diff = np.empty((d, n))
    row = np.empty(n)
    for c in range(k):
        for a in range(d):
            m = means[c, a]
            for r in range(n):
                diff[a, r] = Xt[a, r] - m
        q = d2[c]
        q[:] = 0.0
        for a in range(d):
            row[:] = 0.0
            for b in range(d):
                p = precs[c, a, b]
                for r in range(n):
                    row[r] += p * diff[b, r]
            for r in range(n):
                q[r] += diff[a, r] * row[r]
        for r in range(n):
            lp[c, r] = log_norm[c] - 0.5 * q[r]


@njit(cache=True, nogil=True)
def _mahalanobis_scores4(Xt, means, precs, log_norm, lp, d2):  # pragma: no cover - compiled
    """:func:`mahalanobis_scores` for four features, the same operations in the same order."""
    n = Xt.shape[1]
    x0, x1, x2, x3 = Xt[0], Xt[1], Xt[2], Xt[3]
    for c in range(means.shape[0]):
        m0, m1, m2, m3 = means[c, 0], means[c, 1], means[c, 2], means[c, 3]
        P = precs[c]
        p00, p01, p02, p03 = P[0, 0], P[0, 1], P[0, 2], P[0, 3]
        p10, p11, p12, p13 = P[1, 0], P[1, 1], P[1, 2], P[1, 3]
        p20, p21, p22, p23 = P[2, 0], P[2, 1], P[2, 2], P[2, 3]
        p30, p31, p32, p33 = P[3, 0], P[3, 1], P[3, 2], P[3, 3]
        ln = log_norm[c]
        for r in range(n):
            a0 = x0[r] - m0
            a1 = x1[r] - m1
            a2 = x2[r] - m2
            a3 = x3[r] - m3
            q = a0 * (((p00 * a0 + p01 * a1) + p02 * a2) + p03 * a3)
            q += a1 * (((p10 * a0 + p11 * a1) + p12 * a2) + p13 * a3)
            q += a2 * (((p20 * a0 + p21 * a1) + p22 * a2) + p23 * a3)
            q += a3 * (((p30 * a0 + p31 * a1) + p32 * a2) + p33 * a3)
            d2[c, r] = q
            lp[c, r] = ln - 0.5 * q


@njit(cache=True, nogil=True)
def best_of(scores, allowed):  # pragma: no cover - compiled; tested against best_of_ref
    """Per column of ``scores`` ``(k, n)``: the row (component) of the largest score among the ``allowed``
    ones, the first of ties (``np.argmax`` over axis 0, which copies a ``(k, n)`` array row by row)."""
    k, n = scores.shape
    best = np.zeros(n, dtype=np.int64)
    first = -1
    for c in range(k):
        if allowed[c]:
            first = c
            break
    if first < 0:
        return best
    top = scores[first].copy()
    best[:] = first
    for c in range(first + 1, k):
        if not allowed[c]:
            continue
        row = scores[c]
        for r in range(n):
            if row[r] > top[r]:
                top[r] = row[r]
                best[r] = c
    return best



def mahalanobis_scores_ref(Xt, means, precs, log_norm, lp, d2) -> None:
    """Twin of :func:`mahalanobis_scores`."""
    for c in range(means.shape[0]):
        diff = Xt.T - means[c]
        d2[c] = np.einsum("ni,ij,nj->n", diff, precs[c], diff)
        lp[c] = log_norm[c] - 0.5 * d2[c]


def best_of_ref(scores, allowed) -> np.ndarray:
    """Twin of :func:`best_of`."""
    allowed = np.asarray(allowed, dtype=bool)
    if not allowed.any():
        return np.zeros(scores.shape[1], dtype=np.int64)
    return np.argmax(np.where(allowed[:, None], scores, -np.inf), axis=0)


