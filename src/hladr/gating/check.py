"""The automated gate checks itself: a second, independent estimate and the plausibility of the population.

Calling contract: ``check_gate(gate, naming, (Xs, inv_p), (X, pe), seed=, rules=)``
takes the fitted gate, the named populations, the density-dependent sample it was
fitted on (features ``Xs``, weights ``inv_p`` = 1/p) and the uniform pool of the
tube's cells that sample came from (features ``X``, compensated HLA-DR PE ``pe`` of
the same rows, or None), and returns a ``Verdict``: every figure, and the
first failed rule as ``(code, one-line reason)`` or None. Each limit is in the
rule table (``[gating]``); the figures go to ``results.json`` and the report.

Rules (SPEC.md section 4, safety rule), in the order they are judged:

- ``monocytes_implausible``: the monocytes hold more than ``max_monocyte_fraction``
  of the cells (an absent monocyte population; granulocytes taken instead).
- ``monocytes_implausible`` too: the gated cells' robust SD of FSC or SSC is more than
  ``max_scatter_spread`` times the lymphocytes' (aggregates of two cells, or several cell
  types taken together; one cell type spreads about as much as another).
- ``monocytes_not_separated``: the Bhattacharyya distance from the monocytes to the
  nearest other major population is below ``min_separation`` (they overlap:
  whichever side a cell falls on is a guess).
- ``monocytes_hladr_negative``: the gated cells' median HLA-DR is less than
  ``min_hladr_ratio`` times that of the tube's HLA-DR-negative cells
  (granulocytes, else lymphocytes): not the HLA-DR-bearing monocytes. The
  HLA-DR channel is never used to draw the gate, only to check it.
- ``gates_disagree``: the second estimate (k-means clusters named by the same
  relations, :func:`kmeans_monocytes`) finds no monocytes,
  or the two share less than ``min_agreement_jaccard`` of their cells (Jaccard),
  or their median HLA-DR differs by more than ``max_median_disagreement``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .._stats import robust_sd
from . import mixture as gm
from . import populations as gp
from ._kmeans import kmeans, nearest_centre
from ._mixture_scores import best_of
from .robust import cd14_dim_component, mahalanobis, trimmed_gaussian

__all__ = ["Verdict", "check_gate", "sample_members", "kmeans_monocytes"]

_REFERENCE_ROWS = 20_000


@dataclass(frozen=True)
class Verdict:
    """The self-check's figures and its first failed rule (None: the gate passes)."""

    figures: dict = field(default_factory=dict)
    failure: tuple[str, str] | None = None


def sample_members(gate, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of ``X`` (features) inside the monocyte gate, their posterior on the monocyte components,
    and the likeliest component of each row.

    The same rule as the kernel ``monocyte_chain`` (whose box only skips work).
    """
    lp, d2 = (a.T for a in gm.component_scores(X, gate.means, gate.precisions, gate.log_norm))  # (k, n)
    with np.errstate(under="ignore"):
        t = np.exp(lp - lp.max(axis=0))
    mono = gate.is_monocyte
    s_mono = t[mono].sum(axis=0)
    post = s_mono / t.sum(axis=0)
    best = best_of(lp, mono)
    near = d2[best, np.arange(X.shape[0])] <= gate.d2max
    inside = near & (s_mono > gate.odds * t[~mono].sum(axis=0))
    return inside, post, best_of(lp, np.ones(mono.size, dtype=bool))


def check_gate(gate, naming, sample: tuple[np.ndarray, np.ndarray], pool: tuple[np.ndarray, np.ndarray | None],
               *, seed: int, rules, second: Callable[[], np.ndarray | None] | None = None) -> Verdict:
    """Judge a fitted gate against the rule table (see the module docstring).

    ``sample`` is the density-dependent sample the mixture was fitted on (features, weights
    1/p); ``pool`` the uniform draw of the tube's cells it came from (features, HLA-DR PE or
    None). The two gates are compared on the pool: every row there stands for the same number
    of the tube's events, so the medians are the tube's (weighted medians of the density
    sample let a few heavy rows move them by 10 % and more in a small population).
    """
    g = rules.gating
    Xs, inv_p = sample
    X, pe = pool
    A, L, G = naming.monocytes, naming.lymphocytes, naming.granulocytes
    cw = sum(p.weight for p in naming.cells)
    fig: dict = {"rules": rules.label}
    share = float(A.weight / cw)
    fig["monocyte_share_of_cells"] = round(share, 5)
    # the rows outside the gate's box are outside the gate (as in the kernel); the others are judged
    lo, hi = (np.arcsinh(np.asarray(b) / np.asarray(gate.cofactors)) for b in gate.box)
    in_box = np.ones(X.shape[0], dtype=bool)
    for j in range(X.shape[1]):  # column by column: np.all(..., axis=1) over (n, 4) is ten times slower
        in_box &= (X[:, j] >= lo[j]) & (X[:, j] <= hi[j])
    inA = np.zeros(X.shape[0], dtype=bool)
    inA_box, post, _ = sample_members(gate, X[in_box])
    inA[in_box] = inA_box
    fig["pool_events"] = int(X.shape[0])
    fig["pool_monocytes"] = int(inA.sum())
    fig["model_contamination"] = round(float(np.mean(1.0 - post[inA_box])), 4) if inA.any() else None
    others = [p for p in naming.cells if p is not A and p not in naming.candidates and p.weight >= 0.01 * cw]
    sep = min((gm.bhattacharyya(A.mean, A.cov, p.mean, p.cov) for p in others), default=math.inf)
    fig["separation"] = round(sep, 3) if math.isfinite(sep) else None
    # each row's likeliest component (sample_members' likeliest, without the rest), on a part of the
    # pool: the reference populations' medians and spreads need no more
    step = max(1, X.shape[0] // _REFERENCE_ROWS)
    lp = gm.component_scores(X[::step], gate.means, gate.precisions, gate.log_norm)[0].T
    assigned = best_of(lp, np.ones(lp.shape[0], dtype=bool))
    spread = _scatter_spread(X[inA], X[::step][np.isin(assigned, L.components)])
    fig["scatter_spread_fsc"], fig["scatter_spread_ssc"] = spread
    ratio = None
    if pe is not None and inA.any():
        ref = G if G is not None else L
        in_ref = np.isin(assigned, ref.components)
        if in_ref.any():
            neg = float(np.median(pe[::step][in_ref]))
            ratio = float(np.median(pe[inA])) / neg if neg > 0 else math.inf
            fig["hladr_ratio_to_negative"] = round(ratio, 3) if math.isfinite(ratio) else None
            fig["hladr_negative_reference"] = "granulocytes" if G is not None else "lymphocytes"
    if second is None:
        inB = kmeans_monocytes(Xs, inv_p, seed=seed, has_cd45=X.shape[1] > gp.I_CD45, gating=g, rows=X)
    else:  # the same estimate, already under way (it needs only the sample and the pool)
        inB = second()
    agree = None
    if inB is not None:
        union = int(np.count_nonzero(inA | inB))
        fig["agreement_jaccard"] = round(float(np.count_nonzero(inA & inB) / union), 4) if union else None
        if pe is not None and inA.any() and inB.any():
            m_a, m_b = float(np.median(pe[inA])), float(np.median(pe[inB]))
            agree = m_b / m_a if m_a > 0 else math.inf
            fig["agreement_median_ratio"] = round(agree, 4) if math.isfinite(agree) else None
    fig["second_estimate"] = "kmeans" if inB is not None else "none"

    def fail(code: str, reason: str) -> Verdict:
        return Verdict(fig, (code, reason))

    if share > g.max_monocyte_fraction:
        return fail("monocytes_implausible",
                    f"the 'monocyte' population holds {share:.0%} of the cells (monocytes are a minority, "
                    f"<= {g.max_monocyte_fraction:.0%}): no monocyte population (CD14 staining failed?)")
    wide = max((v for v in spread if v is not None), default=None)
    if wide is not None and wide > g.max_scatter_spread:
        which = "FSC" if spread[0] == wide else "SSC"
        return fail("monocytes_implausible",
                    f"the gated cells' {which} spread is {wide:.1f} x the lymphocytes' (<= {g.max_scatter_spread:g}): "
                    f"not one cell type (aggregates of two cells, or several populations)")
    if sep < g.min_separation:
        return fail("monocytes_not_separated",
                    f"the monocytes overlap another population (separation {sep:.2f} < {g.min_separation:g})")
    if ratio is not None and ratio < g.min_hladr_ratio:
        return fail("monocytes_hladr_negative",
                    f"the gated cells' HLA-DR is only {ratio:.2f} x that of the HLA-DR-negative "
                    f"{fig['hladr_negative_reference']} (< {g.min_hladr_ratio:g}): not monocytes")
    if inB is None:
        return fail("gates_disagree", "the second, independent estimate finds no monocyte population")
    jac = fig.get("agreement_jaccard")
    if jac is None or jac < g.min_agreement_jaccard:
        return fail("gates_disagree",
                    f"two independent gates share {0 if jac is None else jac:.0%} of their cells "
                    f"(< {g.min_agreement_jaccard:.0%})")
    if agree is not None and not (math.isfinite(agree) and agree > 0):  # a median <= 0: no ratio to judge
        return fail("gates_disagree", "the two independent gates' median HLA-DR cannot be compared "
                                      "(one is zero or negative)")
    if agree is not None and abs(math.log(agree)) > math.log1p(g.max_median_disagreement):
        return fail("gates_disagree",
                    f"two independent gates give median HLA-DR {abs(agree - 1):.0%} apart "
                    f"(> {g.max_median_disagreement:.0%})")
    return Verdict(fig, None)


def _scatter_spread(gated: np.ndarray, lymphocytes: np.ndarray) -> tuple[float | None, float | None]:
    """Robust SD (1.4826 MAD) of FSC and of SSC of the gated rows over the lymphocytes' (None: too few rows).

    One cell type spreads about as much as another in scatter (monocytes 0.6-2.3 times the
    lymphocytes); side-by-side aggregates that pass the singlet gate -- two cells of any types --
    and a population mixed from several spread several times more.
    """
    if gated.shape[0] < 20 or lymphocytes.shape[0] < 20:
        return None, None
    out = []
    for j in (gp.I_FSC, gp.I_SSC):
        a, b = (robust_sd(v) for v in (gated[:, j], lymphocytes[:, j]))
        out.append(round(float(a / b), 3) if b > 0 else None)
    return out[0], out[1]


# --------------------------------------------------------------------------- second estimate
def kmeans_monocytes(X: np.ndarray, inv_p: np.ndarray, *, seed: int, has_cd45: bool, gating,
                     rows: np.ndarray | None = None) -> np.ndarray | None:
    """Second estimate: which rows of ``rows`` (default ``X``) fall in the monocyte clusters of a
    k-means partition of the sample ``X`` (weights ``inv_p``), or None when no cluster has the
    monocytes' relations.

    Hard Voronoi clusters of the standardised features (no Gaussian shapes, no
    likelihood), described by their weighted moments and named by the same
    relations (k-means cuts one population into several clusters: those of the
    monocytes' CD14 band that keep every relation are joined, as for the mixture).
    """
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    k = min(gating.kmeans_clusters, max(1, X.shape[0] // 30))
    labels, centres = kmeans(X / scale, k, seed)  # scikit-learn's KMeans(k, n_init=1), in this thread
    pops = []
    for c in range(k):
        m = labels == c
        if m.sum() < 3:
            continue
        w = inv_p[m]
        W = w.sum()
        mean = (X[m] * w[:, None]).sum(axis=0) / W
        dev = X[m] - mean
        cov = (dev * w[:, None]).T @ dev / W + 1e-6 * np.eye(X.shape[1])
        pops.append(gp.Population((c,), float(W / inv_p.sum()), mean, cov))
    naming = gp.name_populations(pops, has_cd45=has_cd45, gating=gating)
    if naming.monocytes is None:
        return None

    # a Voronoi cell reaches as far as the next centroid: each monocyte cluster is trimmed to the
    # ellipsoid of its core (MCD), as the mixture's components are (robust_components)
    d2max = gm.chi2_ppf(gating.ellipsoid_quantile, X.shape[1])
    R = X if rows is None else rows
    if rows is not None:
        pred = nearest_centre(np.ascontiguousarray((rows / scale).T), centres)
    else:
        pred = labels
    out = np.zeros(R.shape[0], dtype=bool)
    core_x = np.zeros(X.shape[0], dtype=bool)  # the sample's rows in the clusters' cores
    for c in naming.monocytes.components:
        members = labels == c
        here = pred == c
        if members.sum() < 10 * X.shape[1]:
            out |= here
            core_x |= members
            continue
        loc, cov = trimmed_gaussian(X[members])
        out[here] = mahalanobis(R[here], loc, cov) <= d2max
        core_x[members] = mahalanobis(X[members], loc, cov) <= d2max
    # the CD14-dim CD16+ monocytes, by the same definition as the mixture's (their window beside the
    # monocytes, gate_robust.cd14_dim_component): k-means puts them in the monocyte clusters' tails,
    # which the trimming cuts, or in a granulocyte cluster; without them the two gates would be two
    # populations, the second's median 10-15 % lower (they have the highest HLA-DR). Rows are
    # judged by the clusters' Gaussians, not their Voronoi cells (a cell reaches far along the axes
    # where its cluster is narrow, as the granulocytes' CD45), and a monocyte cluster's rows outside
    # its core are free for the window
    ids = np.array([p.components[0] for p in pops])
    pos = np.full(k, -1)
    pos[ids] = np.arange(ids.size)
    kfit = gm.MixtureFit(weights=np.array([p.weight for p in pops]), means=np.array([p.mean for p in pops]),
                         covariances=np.array([p.cov for p in pops]))
    is_mono = np.isin(ids, naming.monocytes.components)
    best = gm.likeliest(X, kfit)
    best[np.isin(best, np.flatnonzero(is_mono)) != core_x] = -1
    named = _as_positions(naming, pos)
    wider, with_dim = cd14_dim_component(kfit, is_mono, X, inv_p, named, best, has_cd45=has_cd45)
    if with_dim.size > is_mono.size:  # its rows: those it holds rather than any cluster, in its ellipsoid
        near = np.flatnonzero(mahalanobis(R, wider.means[-1], wider.covariances[-1]) <= d2max)
        out[near[gm.likeliest(R[near], wider) == with_dim.size - 1]] = True
    return out


def _as_positions(naming: gp.Naming, pos: np.ndarray) -> gp.Naming:
    """``naming`` with its populations' k-means cluster labels replaced by their positions in the
    list of clusters kept (clusters of fewer than 3 rows were dropped)."""
    def re(p: gp.Population | None) -> gp.Population | None:
        if p is None:
            return None
        return gp.Population(tuple(int(pos[c]) for c in p.components), p.weight, p.mean, p.cov)

    return gp.Naming(re(naming.monocytes), re(naming.lymphocytes), re(naming.granulocytes),
                     tuple(re(p) for p in naming.cells), tuple(re(p) for p in naming.candidates),
                     tuple(re(p) for p in naming.debris))
