"""k-means for the gate's second estimate: scikit-learn's k-means++ start, our Lloyd iterations.

Calling contract: ``kmeans(X, k, seed)`` returns ``(labels, centres)`` as
``KMeans(n_clusters=k, n_init=1, random_state=seed).fit(X)`` gives ``labels_`` and
``cluster_centers_``; :func:`lloyd` (Numba) and :func:`lloyd_ref` (its NumPy twin, used by
the tests) are the iterations. :func:`nearest_centre` assigns other rows (the check pool) to
the centres, as ``KMeans.predict`` does.

Why our own iterations: on the gate's 10,000 x 4 sample ``KMeans.fit`` costs ~12 ms, most of
it validation and OpenMP set-up, and its OpenMP threads add up the cluster sums in an order
set by a process-wide thread count that another thread can change -- the gate computes this
estimate in a second thread beside the mixture fit, and must give the same numbers with one
thread or two. These are scikit-learn's Lloyd steps (the same k-means++ start on centred data,
the same stopping rule -- labels unchanged, or a squared centre shift at most ``tol`` x the
mean variance -- and the same relocation of an empty cluster to the farthest row) in one
thread and a fixed order. Distances are summed per feature, not as ``|c|^2 - 2 x.c`` by BLAS,
so a row at a near-tie between two centres may go the other way (tests: >= 99.9 % of labels
equal to scikit-learn's).
"""

from __future__ import annotations

import numpy as np

from .._jit import njit

__all__ = ["kmeans", "kmeans_plusplus", "lloyd", "lloyd_ref", "nearest_centre", "nearest_centre_ref"]

_TOL = 1e-4  # scikit-learn's default, relative to the mean variance of the features
_MAX_ITER = 300


def kmeans(X: np.ndarray, k: int, seed: int, *, reference: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Labels (int64) and centres of a k-means partition of the rows of ``X`` (one start, k-means++).

    The caller limits BLAS threads if it wants (the start uses BLAS through scikit-learn).
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    Xc = X - mean  # as KMeans.fit: centred for accurate distances
    start, _ = kmeans_plusplus(Xc, k, random_state=seed)
    tol = float(np.mean(np.var(Xc, axis=0))) * _TOL
    fn = lloyd_ref if reference else lloyd
    labels, centres = fn(Xc, np.ascontiguousarray(start), tol, _MAX_ITER)
    return labels, centres + mean


def kmeans_plusplus(X: np.ndarray, k: int, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """``sklearn.cluster.kmeans_plusplus(X, k, random_state=seed)`` of a float64 C-contiguous ``X``: (centres, indices).

    scikit-learn's greedy k-means++ (2 + log k trials a centre), operation for operation: the same
    RandomState draws, the same squared distances (``-2 X.Y + |X|^2 + |Y|^2``, clipped at 0) and
    the same BLAS products, so the same centres to the last bit (``tests/test_kmeans.py``). Ours
    because importing scikit-learn for it took a second of every run that fits a gate.
    """
    n, d = X.shape
    rs = np.random.RandomState(random_state)
    weight = np.ones(n, dtype=X.dtype)
    x_sq = np.einsum("ij,ij->i", X, X)
    trials = 2 + int(np.log(k))
    centres = np.empty((k, d), dtype=X.dtype)
    indices = np.full(k, -1, dtype=int)
    first = rs.choice(n, p=weight / weight.sum())
    centres[0], indices[0] = X[first], first

    def sq_dist(rows: np.ndarray) -> np.ndarray:  # sklearn's _euclidean_distances(rows, X, squared=True)
        dist = -2 * (rows @ X.T)
        dist += np.einsum("ij,ij->i", rows, rows)[:, np.newaxis]
        dist += x_sq.reshape(1, -1)
        np.maximum(dist, 0, out=dist)
        return dist

    closest = sq_dist(centres[0, np.newaxis])
    pot = closest @ weight
    for c in range(1, k):
        candidates = np.searchsorted(np.cumsum(weight * closest), rs.uniform(size=trials) * pot)
        np.clip(candidates, None, closest.size - 1, out=candidates)
        to_candidates = sq_dist(X[candidates])
        np.minimum(closest, to_candidates, out=to_candidates)
        pots = to_candidates @ weight.reshape(-1, 1)
        best = np.argmin(pots)
        pot = pots[best]
        closest = to_candidates[best]
        centres[c], indices[c] = X[candidates[best]], candidates[best]
    return centres, indices


@njit(cache=True, nogil=True)
def _assign(X, centres, labels):  # pragma: no cover - compiled
    """Nearest centre of each row (squared Euclidean, the first of ties) into ``labels``; their distances."""
    n, d = X.shape
    k = centres.shape[0]
    dist = np.empty(n)
    for r in range(n):
        top = np.inf
        best = 0
        for c in range(k):
            s = 0.0
            for j in range(d):
                v = X[r, j] - centres[c, j]
                s += v * v
            if s < top:
                top = s
                best = c
        labels[r] = best
        dist[r] = top
    return dist


@njit(cache=True, nogil=True)
def lloyd(X, centres, tol, max_iter):  # pragma: no cover - compiled; tested against lloyd_ref
    """Lloyd iterations from ``centres``: (labels, centres). ``X`` centred, float64 C-contiguous."""
    n, d = X.shape
    k = centres.shape[0]
    C = centres.copy()
    labels = np.full(n, -1, dtype=np.int64)
    old = labels.copy()
    strict = False
    for _ in range(max_iter):
        dist = _assign(X, C, labels)
        sums = np.zeros((k, d))
        count = np.zeros(k)
        for r in range(n):
            c = labels[r]
            count[c] += 1.0
            for j in range(d):
                sums[c, j] += X[r, j]
        _relocate_empty(X, C, labels, dist, sums, count)
        shift = 0.0
        for c in range(k):
            for j in range(d):
                v = sums[c, j] / count[c] if count[c] > 0 else C[c, j]
                shift += (v - C[c, j]) ** 2
                C[c, j] = v
        same = True
        for r in range(n):
            if labels[r] != old[r]:
                same = False
                break
        if same:
            strict = True
            break
        if shift <= tol:
            break
        old[:] = labels
    if not strict:
        _assign(X, C, labels)
    return labels, C


@njit(cache=True, nogil=True)
def _relocate_empty(X, C, labels, dist, sums, count):  # pragma: no cover - compiled
    """An empty cluster takes the row farthest from its centre (scikit-learn's rule), in place."""
    empty = np.flatnonzero(count == 0)
    if empty.size == 0:
        return
    far = np.argsort(-dist, kind="mergesort")[: empty.size]
    for t in range(empty.size):
        new, r = empty[t], far[t]
        old = labels[r]
        for j in range(X.shape[1]):
            sums[old, j] -= X[r, j]
            sums[new, j] = X[r, j]
        count[new] = 1.0
        count[old] -= 1.0


def lloyd_ref(X: np.ndarray, centres: np.ndarray, tol: float, max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """NumPy twin of :func:`lloyd`."""
    n, d = X.shape
    k = centres.shape[0]
    C = centres.astype(np.float64, copy=True)
    labels = np.full(n, -1, dtype=np.int64)
    strict = False

    def assign(C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        D = np.zeros((n, k))
        for j in range(d):  # per feature, in order: the same sums as the kernel
            D += (X[:, j][:, None] - C[:, j][None, :]) ** 2
        lab = np.argmin(D, axis=1).astype(np.int64)
        return lab, D[np.arange(n), lab]

    for _ in range(max_iter):
        old = labels
        labels, dist = assign(C)
        count = np.bincount(labels, minlength=k).astype(np.float64)
        sums = np.zeros((k, d))
        for j in range(d):
            sums[:, j] = np.bincount(labels, weights=X[:, j], minlength=k)
        empty = np.flatnonzero(count == 0)
        if empty.size:
            far = np.argsort(-dist, kind="stable")[: empty.size]
            for new, r in zip(empty, far, strict=True):
                sums[labels[r]] -= X[r]
                sums[new] = X[r]
                count[new] = 1.0
                count[labels[r]] -= 1.0
        new_c = np.where(count[:, None] > 0, sums / np.where(count > 0, count, 1.0)[:, None], C)
        shift = float(((new_c - C) ** 2).sum())
        C = new_c
        if np.array_equal(labels, old):
            strict = True
            break
        if shift <= tol:
            break
    if not strict:
        labels, _ = assign(C)
    return labels, C


# --------------------------------------------------------------------------- assignment of other rows
@njit(cache=True, nogil=True)
def nearest_centre(Xt, centres):  # pragma: no cover - compiled; tested against nearest_centre_ref
    """Per row (column of ``Xt`` ``(d, n)``): the nearest of ``centres`` ``(k, d)`` in squared Euclidean
    distance, the first of ties (k-means' assignment; scikit-learn's ``KMeans.predict`` without its
    per-call validation and thread set-up)."""
    d, n = Xt.shape
    k = centres.shape[0]
    best = np.zeros(n, dtype=np.int64)
    top = np.full(n, np.inf)
    dist = np.empty(n)
    for c in range(k):
        dist[:] = 0.0
        for i in range(d):
            m = centres[c, i]
            for r in range(n):
                v = Xt[i, r] - m
                dist[r] += v * v
        for r in range(n):
            if dist[r] < top[r]:
                top[r] = dist[r]
                best[r] = c
    return best


def nearest_centre_ref(Xt, centres) -> np.ndarray:
    """Twin of :func:`nearest_centre`."""
    X = Xt.T
    return np.argmin(((X[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
