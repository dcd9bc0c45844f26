"""The populations of a tube, fitted in all gating dimensions together and named by their relations.

Calling contract: every function takes plain arrays in the gate's feature space
(one row per event; columns CD14, SSC, FSC and, when the panel has it, CD45, each
``asinh(value / cofactor)``) and returns arrays or small records; nothing here
reads files, prints or keeps state. :mod:`hladr.gating.automated` strings them together.

Notes
-----
Septic blood does not show separated blobs: neutrophils are 70-95 % of the
leukocytes, immature granulocytes sit in the monocytes' side scatter with dim
CD45 and intermediate CD14, monocytes can be 1 % of the leukocytes with
down-regulated CD14, and debris, dead cells and aggregates abound. So:

1. Debris is removed first by a coarse mixture (a broad debris cloud would take
   the components the rare populations need): components far below the
   lymphocytes in FSC (``debris_fsc_ratio``, rule table).
2. The remaining events are subsampled with a probability that falls with their
   local density (SPADE's density-dependent downsampling), so that a
   population of 1 % keeps enough events to get its own components; every kept
   event carries the weight 1/p, and the mixture's weights are re-estimated with
   those weights, so they are shares of the tube again (:mod:`hladr.gating.mixture`).
3. A Gaussian mixture (scikit-learn's start, our EM: :mod:`hladr.gating.mixture`) is fitted to the sample;
   components whose Bhattacharyya distance is small are one population (a skewed population
   takes several components: :func:`merge_components`).
4. Populations are named by their relations, never by positions: lymphocytes
   are the CD45-bright, low-SSC, CD14-negative population (without CD45: the
   lowest SSC among full-size cells); debris is several-fold smaller in FSC than the
   lymphocytes; granulocytes are major populations several-fold above the
   lymphocytes in SSC and CD14-dimmer than the candidate; monocytes are the
   CD14-brightest population that is at least lymphocyte-sized, above the
   lymphocytes in SSC and CD14, not above them in CD45, and -- when there are
   granulocytes -- below them in SSC and above them in CD45; the other
   populations of its CD14 band that keep every relation are joined to it, and
   so are the CD14-dim CD16+ monocytes (:func:`cd14_dim_monocytes`: same
   scatter, CD45 at least as bright; panels with CD45 only).
5. The monocyte components are re-estimated robustly (:func:`hladr.gating.robust.robust_components`,
   minimum covariance determinant): aggregates that pass the singlet gate (two
   cells side by side have a singlet's FSC-A/FSC-H) form a sparse cloud that no
   component holds, and EM stretches the monocytes' component over it.
6. A second, independent estimate (:func:`hladr.gating.check.kmeans_monocytes`: hard k-means
   clusters of the same sample, named by the same relations, each trimmed to
   its core's ellipsoid) is compared with the mixture's monocytes by
   :mod:`hladr.gating.check`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import mixture as gm
from ._em import predict

__all__ = [
    "Population",
    "Naming",
    "coarse_debris_mask",
    "merge_components",
    "name_populations",
    "cd14_dim_monocytes",
    "I_CD14",
    "I_SSC",
    "I_FSC",
    "I_CD45",
]

I_CD14, I_SSC, I_FSC, I_CD45 = 0, 1, 2, 3  # feature columns (CD45 only when the panel has it)


@dataclass(frozen=True, eq=False)
class Population:
    """Components of a mixture (or clusters) taken as one population: share, mean and SD per feature."""

    components: tuple[int, ...]
    weight: float
    mean: np.ndarray
    cov: np.ndarray

    @property
    def sd(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    def to_dict(self, name: str, features: tuple[str, ...]) -> dict:
        return {"name": name, "weight": round(float(self.weight), 5),
                "mean": {f: round(float(v), 4) for f, v in zip(features, self.mean, strict=True)},
                "sd": {f: round(float(v), 4) for f, v in zip(features, self.sd, strict=True)}}


@dataclass(frozen=True, eq=False)
class Naming:
    """Which populations are which; ``monocytes`` is None when no population has their relations."""

    monocytes: Population | None
    lymphocytes: Population
    granulocytes: Population | None
    cells: tuple[Population, ...]
    candidates: tuple[Population, ...]
    debris: tuple[Population, ...]

    def names(self) -> dict[int, str]:
        """``id(population) -> name`` for the populations that have one."""
        out = {id(p): "debris" for p in self.debris}
        out[id(self.lymphocytes)] = "lymphocytes"
        if self.granulocytes is not None:
            for p in self.cells:
                if set(p.components) <= set(self.granulocytes.components):
                    out[id(p)] = "granulocytes"
        if self.monocytes is not None:  # possibly several populations joined: name each part
            for p in self.cells:
                if set(p.components) <= set(self.monocytes.components):
                    out[id(p)] = "monocytes"
        return out


# --------------------------------------------------------------------------- debris
def _lymphocyte_index(means: np.ndarray, weights: np.ndarray, has_cd45: bool) -> int:
    """The lymphocytes among major components or populations.

    With CD45: the top-left of CD45 vs SSC, CD14-negative -- the highest
    ``z(CD45) - z(SSC) - z(CD14)`` (z: standardised over the major populations'
    means; CD16+ monocytes can be as CD45-bright as lymphocytes, but not as low in
    SSC and CD14), among those at least as CD45-bright as the heaviest population
    (debris is as low in SSC and CD14). Without CD45: the lowest SSC among those within a factor 3 in
    FSC of the heaviest population (not debris).
    """
    major = [j for j in range(len(weights)) if weights[j] >= 0.01 * weights.sum()]
    heavy = int(np.argmax(weights))
    if has_cd45:
        m = means[major]
        sd = m.std(axis=0)
        z = (m - m.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
        score = z[:, I_CD45] - z[:, I_SSC] - z[:, I_CD14]
        # lymphocytes are the CD45-brightest leukocytes: never dimmer than the heaviest population
        # (debris, several components of it in a septic tube, is as low in SSC and CD14 but CD45-dim)
        score[m[:, I_CD45] < means[heavy, I_CD45]] = -np.inf
        return major[int(np.argmax(score))]
    full = [j for j in major if means[j, I_FSC] >= means[heavy, I_FSC] - np.log(3.0)]
    return min(full, key=lambda j: means[j, I_SSC])


def coarse_debris_mask(X: np.ndarray, *, seed: int, debris_fsc_ratio: float, n_fit: int = 5000) -> np.ndarray:
    """Rows that a coarse 6-component mixture puts in debris (FSC ``debris_fsc_ratio`` x below the lymphocytes)."""
    rng = np.random.default_rng(seed)
    sub = X[rng.choice(X.shape[0], min(X.shape[0], n_fit), replace=False)]
    k = min(6, max(1, sub.shape[0] // 50))
    g = gm.gaussian_mixture(sub, k, seed, 1e-2)  # by the module: tests and benchmarks record the fits
    lym = _lymphocyte_index(g.means, g.weights, X.shape[1] > I_CD45)
    debris = [j for j in range(k) if g.means[j, I_FSC] < g.means[lym, I_FSC] - np.log(debris_fsc_ratio)]
    if not debris:
        return np.zeros(X.shape[0], dtype=bool)
    return np.isin(predict(X, g.weights, g.means, g.covariances), debris)


# --------------------------------------------------------------------------- components -> populations
def _pool(weights, means, covs, comps) -> Population:
    w = np.asarray([weights[j] for j in comps])
    W = float(w.sum())
    m = sum(weights[j] * means[j] for j in comps) / W
    c = sum(weights[j] * (covs[j] + np.outer(means[j] - m, means[j] - m)) for j in comps) / W
    return Population(tuple(int(j) for j in comps), W, m, c)


def merge_components(fit: gm.MixtureFit, *, max_distance: float) -> list[Population]:
    """Components closer than ``max_distance`` (Bhattacharyya) are one population (single linkage)."""
    k = fit.weights.size
    parent = list(range(k))

    def root(a: int) -> int:
        while parent[a] != a:
            a = parent[a]
        return a

    for a in range(k):
        for b in range(a + 1, k):
            if gm.bhattacharyya(fit.means[a], fit.covariances[a], fit.means[b], fit.covariances[b]) < max_distance:
                parent[root(a)] = root(b)
    groups: dict[int, list[int]] = {}
    for j in range(k):
        groups.setdefault(root(j), []).append(j)
    return [_pool(fit.weights, fit.means, fit.covariances, g) for g in groups.values()]


def pool(pops: list[Population]) -> Population:
    """Several populations as one."""
    w = [p.weight for p in pops]
    m = [p.mean for p in pops]
    c = [p.cov for p in pops]
    P = _pool(w, m, c, range(len(pops)))
    return Population(tuple(j for p in pops for j in p.components), P.weight, P.mean, P.cov)


# --------------------------------------------------------------------------- naming
def name_populations(pops: list[Population], *, has_cd45: bool, gating) -> Naming:
    """Name lymphocytes, debris, granulocytes and monocytes from the populations' relations.

    Parameters
    ----------
    pops : list of Population
    has_cd45 : bool
    gating : GatingRules
        ``debris_fsc_ratio`` (debris is at least this many times smaller than the lymphocytes in
        FSC), ``granulocyte_ssc_ratio`` (granulocytes are at least this many times above them in
        SSC) and ``min_monocyte_share`` (the smallest share of the cells a monocyte population
        may have).
    """
    debris_fsc_ratio, granulocyte_ssc_ratio = gating.debris_fsc_ratio, gating.granulocyte_ssc_ratio
    min_share = gating.min_monocyte_share
    means = np.array([p.mean for p in pops])
    weights = np.array([p.weight for p in pops])
    L = pops[_lymphocyte_index(means, weights, has_cd45)]
    debris = tuple(p for p in pops if p.mean[I_FSC] < L.mean[I_FSC] - np.log(debris_fsc_ratio))
    cells = tuple(p for p in pops if p not in debris)
    cw = sum(p.weight for p in cells)
    major = [p for p in cells if p.weight >= 0.01 * cw]
    Lm, Ls = L.mean, L.sd

    def basic(p: Population) -> bool:
        m = p.mean
        return (p is not L and p.weight >= min_share * cw and m[I_FSC] >= Lm[I_FSC] - Ls[I_FSC]
                and m[I_SSC] > Lm[I_SSC] and m[I_CD14] > Lm[I_CD14] + 2.0 * Ls[I_CD14]
                and (not has_cd45 or m[I_CD45] <= Lm[I_CD45] + 2.0 * Ls[I_CD45]))

    cand = tuple(sorted((p for p in cells if basic(p)), key=lambda p: -p.mean[I_CD14]))
    for A in cand:
        gr = [p for p in major if p is not A and p.mean[I_SSC] >= Lm[I_SSC] + np.log(granulocyte_ssc_ratio)
              and p.mean[I_CD14] < A.mean[I_CD14]]
        G = pool(gr) if gr and sum(p.weight for p in gr) >= 0.1 * cw else None
        # the CD45 bar: the mature granulocytes -- the largest population and those at least as CD45-bright
        # (the mass is often split in several); the immature ones' dim CD45 would widen a pooled SD
        Gm = None
        if G is not None and has_cd45:
            big = max(gr, key=lambda p: p.weight)
            Gm = pool([p for p in gr if p.mean[I_CD45] >= big.mean[I_CD45]])
        if below_granulocytes(A, G, has_cd45, Gm):
            # a skewed monocyte population takes several components: join those within 2 SD in CD14
            # that keep every relation (the CD14-dim CD16+ monocytes, a decade lower, stay out)
            parts = [A] + [p for p in cand if p is not A and below_granulocytes(p, G, has_cd45, Gm)
                           and abs(p.mean[I_CD14] - A.mean[I_CD14]) < 2.0 * max(A.sd[I_CD14], p.sd[I_CD14])]
            parts += [p for p in cand if p not in parts and below_granulocytes(p, G, has_cd45, Gm)
                      and cd14_dim_monocytes(p, A, has_cd45)]
            return Naming(pool(parts) if len(parts) > 1 else A, L, G, cells, cand, debris)
    return Naming(None, L, None, cells, cand, debris)


def cd14_dim_monocytes(p: Population, A: Population, has_cd45: bool) -> bool:
    """The CD14-dim CD16+ (non-classical) monocytes beside the monocytes ``A``.

    CD14 dimmer than ``A`` (a decade lower; above the lymphocytes, as every candidate), a
    minority of the monocytes, the monocytes' scatter (FSC and SSC within 2 SD of theirs) and
    CD45 at least as bright as theirs: immature granulocytes and dying cells, the other
    CD14-intermediate events, are CD45-dimmer. Without CD45 nothing tells them apart from
    those: a panel without CD45 gates the CD14-bright monocytes only (README, known weaknesses).
    """
    if not has_cd45:
        return False
    s = np.maximum(A.sd, p.sd)
    d = np.abs(p.mean - A.mean)
    return bool(p.mean[I_CD14] < A.mean[I_CD14] and p.weight <= A.weight
                and d[I_SSC] < 2.0 * s[I_SSC] and d[I_FSC] < 2.0 * s[I_FSC]
                and p.mean[I_CD45] >= A.mean[I_CD45])


def below_granulocytes(p: Population, G: Population | None, has_cd45: bool, main: Population | None = None) -> bool:
    """Monocyte relations to the granulocytes ``G``: lower SSC (aggregates lie above them) and, with CD45,
    brighter CD45 than the mature ones, ``main`` (default ``G``; mean + SD): immature granulocytes are no
    brighter than the mature ones. The SD of all the granulocytes is not the bar: it holds the immature
    ones' dim CD45, so it would rise with the left shift. True without granulocytes."""
    if G is None:
        return True
    if p.mean[I_SSC] >= G.mean[I_SSC]:
        return False
    ref = G if main is None else main
    return not (has_cd45 and p.mean[I_CD45] <= ref.mean[I_CD45] + ref.sd[I_CD45])
