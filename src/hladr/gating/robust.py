"""The monocyte components made robust: aggregates out, a joined part with the wrong scatter out,
the CD14-dim CD16+ monocytes in.

Calling contract: every function takes a fitted mixture (:class:`hladr.gating.mixture.MixtureFit`),
which components are monocytes and the density-dependent sample it was fitted on (features
``asinh(value / cofactor)``, one row per event), and returns the mixture and monocyte
components to gate with; nothing here reads files, prints or keeps state.

Notes
-----
Aggregates of two cells side by side pass the singlet gate (their FSC-A/FSC-H is a singlet's)
and form a sparse cloud that no mixture component holds; EM then stretches the monocytes'
component over it and its ellipsoid takes the aggregates in (up to 17 % of the median in
simulated severe sepsis). Each monocyte component is re-estimated by the minimum covariance
determinant (:func:`trimmed_gaussian`); a joined component whose scatter is not the monocytes'
is dropped (:func:`scatter_consistent`); the non-classical monocytes that the mixture left in
another component get one of their own (:func:`cd14_dim_component`).
"""

from __future__ import annotations

import numpy as np

from . import mixture as gm
from . import populations as gp

__all__ = ["mahalanobis", "trimmed_gaussian", "robust_components", "scatter_consistent", "cd14_dim_component"]


def mahalanobis(rows: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of each row to (``mean``, ``cov``)."""
    return gm.component_scores(rows, np.asarray(mean)[None], np.linalg.inv(cov)[None], np.zeros(1))[1][:, 0]


def trimmed_gaussian(rows: np.ndarray, mean: np.ndarray | None = None, cov: np.ndarray | None = None, *,
                     steps: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Robust mean and covariance of ``rows``: the minimum covariance determinant estimate by
    C-steps from one start (default: the rows' mean and covariance), then reweighted.

    The C-steps (Rousseeuw and Van Driessen's FastMCD) keep the ``(n + d + 1) / 2`` rows
    nearest the current estimate (the highest breakdown, scikit-learn's default) until they
    stop changing; the estimate is made consistent at
    the normal and reweighted with the rows within its 97.5 % ellipsoid. Written here because
    scikit-learn's ``MinCovDet`` draws 30 random starts with input validation at every step:
    0.5-2 s per population, ten times the whole gate's budget, when the mixture component
    (or cluster) already is a start inside the population.
    """
    n, d = rows.shape
    m = rows.mean(axis=0) if mean is None else np.asarray(mean, dtype=float)
    C = np.cov(rows.T, bias=True) if cov is None else np.asarray(cov, dtype=float)
    C = C + 1e-9 * np.eye(d)
    k = min(n, (n + d + 1) // 2)
    keep = None
    for _ in range(steps):
        new = np.argpartition(mahalanobis(rows, m, C), k - 1)[:k]
        new.sort()
        if keep is not None and np.array_equal(new, keep):
            break
        keep = new
        m, C = rows[keep].mean(axis=0), np.cov(rows[keep].T, bias=True) + 1e-9 * np.eye(d)
    C = C * (k / n) / gm.chi2_cdf(gm.chi2_ppf(k / n, d), d + 2)  # consistency at the normal
    q = gm.chi2_ppf(0.975, d)
    good = mahalanobis(rows, m, C) <= q
    if good.sum() > d:
        m = rows[good].mean(axis=0)
        C = np.cov(rows[good].T, bias=True) * 0.975 / gm.chi2_cdf(q, d + 2)
    return m, C


def robust_components(fit: gm.MixtureFit, which: np.ndarray, X: np.ndarray) -> gm.MixtureFit:
    """``fit`` with the mean and covariance of each component in ``which`` re-estimated robustly
    (minimum covariance determinant, :func:`trimmed_gaussian`) from the rows of ``X`` it holds.

    A sparse cloud next to a population -- aggregates that pass the singlet gate, with FSC and
    SSC of two cells -- gets no component of its own; EM then stretches the nearest component
    over it and its ellipsoid takes it in. The MCD estimate is that of the population's core.
    """
    best = gm.likeliest(X, fit)
    means, covs = fit.means.copy(), fit.covariances.copy()
    d = X.shape[1]
    for j in np.flatnonzero(which):
        rows = X[best == j]
        if rows.shape[0] < 10 * d:
            continue
        m, C = trimmed_gaussian(rows, fit.means[j], fit.covariances[j])
        means[j], covs[j] = m, C + 1e-3 * np.eye(d)
    return gm.MixtureFit(weights=fit.weights, means=means, covariances=covs)


def scatter_consistent(fit: gm.MixtureFit, is_mono: np.ndarray, X: np.ndarray, best: np.ndarray) -> np.ndarray:
    """``is_mono`` without the monocyte components whose scatter is not the monocytes'.

    A component joined by its CD14 can be mostly aggregates (two cells' FSC and SSC, no
    component of their own) with some monocytes: its robust estimate keeps the aggregates'
    spread. The monocytes' scatter is the robust (MCD) estimate of the rows of ``X`` that all
    monocyte components hold together (aggregates are a minority there); a component stays
    when its FSC and SSC means lie within 2 SD of it and its FSC and SSC spreads are at most
    twice its own. ``best`` is each row's likeliest component under ``fit``.
    """
    idx = np.flatnonzero(is_mono)
    if idx.size < 2:
        return is_mono
    rows = X[np.isin(best, idx)]
    if rows.shape[0] < 10 * X.shape[1]:
        return is_mono
    m, C = trimmed_gaussian(rows)
    sd0 = np.sqrt(np.diag(C))
    sd = np.sqrt(np.diagonal(fit.covariances, axis1=1, axis2=2))
    out = is_mono.copy()
    for j in idx:
        for f in (gp.I_SSC, gp.I_FSC):
            if abs(fit.means[j, f] - m[f]) > 2.0 * sd0[f] or sd[j, f] > 2.0 * sd0[f]:
                out[j] = False
    if not out.any():  # no component has the monocytes' scatter: leave the naming to the checks
        return is_mono
    return out


def cd14_dim_component(fit: gm.MixtureFit, is_mono: np.ndarray, X: np.ndarray, inv_p: np.ndarray,
                       naming: gp.Naming, best: np.ndarray, *, has_cd45: bool) -> tuple[gm.MixtureFit, np.ndarray]:
    """``fit`` and ``is_mono`` with one more monocyte component for the CD14-dim CD16+ monocytes
    that the mixture left inside another component, when the sample shows them.

    Non-classical monocytes are 5-25 % of the monocytes with CD14 up to a decade and more below
    the classical ones -- down to the lymphocytes' level -- so a few hundred of them often get no
    component and go with the lymphocytes' (their HLA-DR is the highest: left out, the median
    falls by up to 10 %). They keep the monocytes' scatter and a CD45 at least as bright; in
    that window (FSC/SSC inside the monocytes' 99 % ellipse, CD45 not below the monocytes'
    median, CD14 above the lymphocytes' mean and below the monocytes' median) little else lies:
    lymphocytes have lower SSC, granulocytes, immature ones and dying cells dimmer CD45,
    aggregates larger scatter; rows that the granulocytes' components hold are left out (their
    CD45 tail is many times the non-classical monocytes). The window's rows get a robust (MCD)
    Gaussian, kept only when it has their relations
    (:func:`hladr.gating.populations.cd14_dim_monocytes`). Panels
    without CD45 cannot tell them from immature granulocytes: nothing is added. ``best`` is
    each row's likeliest component under ``fit``.
    """
    d = X.shape[1]
    if not has_cd45:
        return fit, is_mono
    in_a = np.isin(best, np.flatnonzero(is_mono))
    if in_a.sum() < 10 * d or naming.monocytes is None:
        return fit, is_mono
    held = [j for p in naming.debris for j in p.components]
    if naming.granulocytes is not None:  # but not a 'granulocyte' population with the CD14-dim
        # monocytes' relations (their SSC can reach the granulocytes' bar): the window judges its rows
        G = set(naming.granulocytes.components)
        held += [j for p in naming.cells if set(p.components) <= G
                 and not gp.cd14_dim_monocytes(p, naming.monocytes, has_cd45) for j in p.components]
    scatter = [gp.I_SSC, gp.I_FSC]
    core = trimmed_gaussian(X[in_a][:, scatter])
    win = (~in_a & ~np.isin(best, held) & (mahalanobis(X[:, scatter], *core) <= gm.chi2_ppf(0.99, 2))
           & (X[:, gp.I_CD45] >= np.median(X[in_a, gp.I_CD45]))
           & (X[:, gp.I_CD14] > naming.lymphocytes.mean[gp.I_CD14]) & (X[:, gp.I_CD14] < np.median(X[in_a, gp.I_CD14])))
    if win.sum() < 10 * d:
        return fit, is_mono
    loc, cov = trimmed_gaussian(X[win])
    w = float(inv_p[win].sum() / inv_p.sum())
    cov = cov + 1e-3 * np.eye(d)
    if not gp.cd14_dim_monocytes(gp.Population((), w, loc, cov), naming.monocytes, has_cd45):
        return fit, is_mono
    return (gm.MixtureFit(weights=np.append(fit.weights * (1.0 - w), w),
                       means=np.vstack([fit.means, loc]),
                       covariances=np.concatenate([fit.covariances, cov[None]])),
            np.append(is_mono, True))
