"""Automated monocyte gate: cells -> singlets -> CD45+ leukocytes -> monocytes, checked against itself.

Calling contract: ``fit_monocyte_gate(events, panel, rules=...)`` estimates a
frozen ``MonocyteGate`` (plain numbers: scatter ranges, a singlet band, a CD45
threshold and a Gaussian mixture whose monocyte components define the gate) from
a sample of the tube, or returns a falsy ``GateFailure`` -- with the figures of
its self-checks -- when the data do not support a gate or the gate fails its
checks; ``gate.apply(events)`` evaluates it on every event with one fused Numba
pass and returns a ``GateResult`` (final mask and the events kept by each step).
The records and ``apply`` are in :mod:`hladr.gating.monocyte_gate`.

Notes
-----
1. cells: events piled up at a scatter channel's maximum are off-scale; debris is
   what lies several-fold below the lymphocytes in FSC (named in step 4).
2. singlets: the FSC-A/FSC-H ratio (or FSC-W) of singlets is nearly constant;
   keep median +/- 4 robust SD (doublets have a larger ratio).
3-4. leukocytes and monocytes: all gating dimensions at once (CD14, SSC, FSC and
   CD45 when the panel has it) -- a mixture of the singlets, its populations
   named by their relations (:mod:`hladr.gating.populations`). Monocytes are the
   events whose posterior lies with the monocyte components (at least
   ``min_posterior``), within the ``ellipsoid_quantile`` ellipsoid (rule table)
   of their robust (MCD) estimate. The CD45 gate keeps everything from the CD45-negative valley up,
   and never cuts into the monocytes.
5. the self-check (:mod:`hladr.gating.check`): a second, independent estimate and
   the plausibility of the population, judged on a uniform draw of up to
   100,000 of the tube's events; a gate that fails it is a GateFailure.
6. a second look: when the first gate fails its naming or its checks, steps 3-5
   run once more on the cells without the rows the first mixture put in debris
   (a debris cloud can take the components a 1-3 % monocyte population needs).
   The new gate must pass every check itself (it is flagged
   ``gated_after_debris_refit``); otherwise the first failure stands.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np

from .._parallel import blas_threads, thread_count
from .._stats import density_peaks, robust_sd
from ..channels import Panel
from ..events import Events
from ..rules import load_rules
from . import _kernels
from . import mixture as gm
from . import populations as gp
from . import robust as gr
from .check import check_gate, kmeans_monocytes
from .monocyte_gate import GateFailure, MonocyteGate, monocyte_box

__all__ = ["fit_monocyte_gate", "valley_below_first_peak", "cofactor"]

_SINGLET_SD = 4.0
_POOL = 40_000  # on-scale events drawn for the fits
# on-scale events on which the self-check compares the two gates (the whole tube up to this size):
# a median of a few hundred monocytes with a broad or bimodal HLA-DR moves by 5-10 % between draws
_CHECK_POOL = 100_000
# failures of the first fit that a second fit without the debris may resolve (see fit_monocyte_gate)
_SECOND_LOOK = ("monocytes_not_identified", "monocytes_implausible", "monocytes_not_separated",
                "monocytes_hladr_negative", "gates_disagree")


# --------------------------------------------------------------------------- density helpers
def valley_below_first_peak(values: np.ndarray, *, bins: int = 256) -> float | None:
    """Density valley below the lowest substantial peak of ``values``, or None.

    A peak is substantial when its smoothed density is at least 20 % of the
    highest peak. The valley must lie between that peak and a lower maximum (a
    peak or a pile-up at the low edge) and be at most half as dense as both.
    """
    v = values[np.isfinite(values)]
    if v.size < 100:
        return None
    lo, hi = np.percentile(v, [0.1, 99.9])
    if not hi > lo:
        return None
    dens, edges, peaks = density_peaks(v, bins=bins, value_range=(lo, hi), sigma=2.0, prominence=0.02)
    substantial = [p for p in peaks if dens[p] >= 0.2 * dens.max()]
    if not substantial:
        return None
    first = substantial[0]
    lower = [p for p in peaks if p < first]
    if not lower:
        return None
    left = lower[-1]
    j = left + int(np.argmin(dens[left : first + 1]))
    if dens[j] > 0.5 * min(dens[left], dens[first]):
        return None
    return float(0.5 * (edges[j] + edges[j + 1]))


def cofactor(upper: float) -> float:
    """asinh cofactor for a channel whose decoded upper limit is ``upper`` (1/1000 of the range, >= 1)."""
    return max(1.0, float(upper) / 1000.0)


# --------------------------------------------------------------------------- fitting
def fit_monocyte_gate(
    events: Events, panel: Panel, *, seed: int = 0, max_fit_events: int = 10_000, rules=None,
    threads: int | None = 1,
) -> MonocyteGate | GateFailure:
    """Fit the cells -> singlets -> CD45+ -> monocyte chain to one tube and check it.

    Parameters
    ----------
    events : Events
        The (compensated) tube.
    panel : Panel
        Channel roles; ``panel.cd14`` is required.
    seed : int
        Seed of the samples and fits (the gate is reproducible).
    max_fit_events : int
        Events in the mixture's density-dependent sample (the gate is applied to all events).
    rules : RuleSet, optional
        Limits of the self-check and the naming (default: the default rule table).
    threads : int, optional
        Threads for the one pass over every event (the scatter range), as ``MonocyteGate.apply``
        (None: by the cores this process may use; the gate is the same for any number).

    Returns
    -------
    MonocyteGate or GateFailure
        A failure carries the self-check figures that were computed.
    """
    if rules is None:
        rules = load_rules()
    rng = np.random.default_rng(seed)
    flags = list(panel.flags)
    if panel.cd45 is None:
        flags.append("gated_without_cd45")

    def failure(code: str, reason: str, **kw) -> GateFailure:
        return GateFailure(code, reason, flags=tuple(flags), **kw)

    n = events.n_events
    if n < 200:
        return failure("too_few_events", f"only {n} events in the tube")
    data = events.data
    # full-length work on the matrix's own columns (views, compared in their own precision: the
    # thresholds 0, inf and a column's maximum are exact in it); float64 only for the drawn rows
    i_fsc, i_ssc = events.index(panel.fsc_a), events.index(panel.ssc_a)

    # 1. on scale
    # (events piled up at a scatter channel's maximum, at least max(2, 5e-4 x finite), are off-scale)
    n_threads = thread_count(n, threads)
    on_scale, n_on, fsc_hi, ssc_hi = _kernels.on_scale(data, i_fsc, i_ssc, 2, 5e-4, threads=n_threads)
    # the check pool: a uniform draw of the on-scale events (all of them up to _CHECK_POOL), every
    # channel, gathered in one pass (``data[np.sort(rng.choice(np.flatnonzero(on_scale), ...))]``, the
    # same draw). From here on rows are positions in this pool; ``rng.choice(n)`` then indexing draws
    # the same rows as drawing from the pool's own indices (the same random numbers)
    ranks = np.sort(rng.choice(n_on, _CHECK_POOL, replace=False)) if n_on > _CHECK_POOL else np.arange(n_on)
    pool = _kernels.gather_ranked(data, on_scale, ranks)
    del on_scale

    def rows_of(channel: str, rows: np.ndarray) -> np.ndarray:
        return pool[rows, events.index(channel)].astype(np.float64)

    n_pool = pool.shape[0]
    idx = np.arange(n_pool) if n_pool <= _POOL else np.sort(rng.choice(n_pool, _POOL, replace=False))
    if idx.size < 100:
        return failure("no_cells", f"only {idx.size} events inside the scatter range")
    fsc_idx = rows_of(panel.fsc_a, idx)

    # 2. singlets (ratio statistics from the events above a tenth of the median FSC: cells, not debris)
    sing_ch, is_ratio, sing_range = None, False, (-np.inf, np.inf)
    singlets = idx
    if panel.fsc_h or panel.fsc_w:
        sing_ch = panel.fsc_h or panel.fsc_w
        is_ratio = panel.fsc_h is not None
        metric = _singlet_metric(fsc_idx, rows_of(sing_ch, idx), is_ratio)
        good = np.isfinite(metric) & (metric > 0) & (fsc_idx >= 0.1 * np.median(fsc_idx))
        m = metric[good]
        if m.size < 100:
            return failure("no_singlets", f"the {sing_ch} channel holds no usable values")
        lm = np.log(m)
        med = np.median(lm)
        sd = max(robust_sd(lm, med), 0.01)
        sing_range = (float(np.exp(med - _SINGLET_SD * sd)), float(np.exp(med + _SINGLET_SD * sd)))
        singlets = idx[(metric >= sing_range[0]) & (metric < sing_range[1])]

    # 3-4. populations in all gating dimensions
    features = [panel.cd14, panel.ssc_a, panel.fsc_a] + ([panel.cd45] if panel.cd45 else [])
    names = ["cd14", "ssc", "fsc"] + (["cd45"] if panel.cd45 else [])
    has_cd45 = panel.cd45 is not None
    cof = tuple(cofactor(events.upper_limit(c)) for c in features)

    # the features of every row of the pool, once (the fit's rows are a part of them)
    F_pool = np.column_stack([np.arcsinh(pool[:, events.index(c)].astype(np.float64) / k)
                              for c, k in zip(features, cof, strict=True)])
    fin_pool = np.all(np.isfinite(F_pool), axis=1)

    def features_of(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows with finite features, and their features."""
        rows = rows[fin_pool[rows]]
        return rows, F_pool[rows]

    singlets, X = features_of(singlets)
    if X.shape[0] < 200:
        return failure("no_singlets", f"only {X.shape[0]} singlets with usable values")
    g = rules.gating
    debris = gp.coarse_debris_mask(X, seed=seed, debris_fsc_ratio=g.debris_fsc_ratio)
    Xc = X[~debris]
    if Xc.shape[0] < 200:
        return failure("no_cells", f"only {Xc.shape[0]} events that are not debris")
    check_rows = np.arange(n_pool)
    if sing_ch is not None:
        m = _singlet_metric(rows_of(panel.fsc_a, check_rows), rows_of(sing_ch, check_rows), is_ratio)
        check_rows = check_rows[(m >= sing_range[0]) & (m < sing_range[1])]
    check_rows, Xk = features_of(check_rows)
    pe = rows_of(panel.hladr, check_rows) if panel.hladr else None

    def attempt(Xc: np.ndarray):
        """Mixture, naming, robust monocyte components and the self-check on the cells ``Xc``:
        (the mixture as fitted, its naming, the gate or its failure)."""
        keep, p = gm.density_sample(Xc, rng, max_fit_events)
        Xs, inv_p = Xc[keep], 1.0 / p
        # one BLAS limit for both threads, set here only: threadpoolctl's limits are process-wide, and
        # two threads setting and restoring them would leave them wrong
        with blas_threads().limit(limits=1), \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="hladr-kmeans") as pool:
            return _attempt(Xs, inv_p, pool if n_threads > 1 else None)

    def _attempt(Xs: np.ndarray, inv_p: np.ndarray, pool):
        # the second, independent estimate needs only the sample and the check pool: with a second
        # thread it runs while the mixture is fitted and named (the same numbers either way)
        second = None
        if pool is not None:
            second = pool.submit(kmeans_monocytes, Xs, inv_p, seed=seed, has_cd45=has_cd45, gating=g, rows=Xk).result
        fit = gm.fit_mixture(Xs, inv_p, k=g.mixture_components, seed=seed)
        pops = gp.merge_components(fit, max_distance=g.merge_distance)
        naming = gp.name_populations(pops, has_cd45=has_cd45, gating=g)
        pop_records = _population_records(naming, pops, tuple(names))
        if naming.monocytes is None:
            return fit, naming, failure("monocytes_not_identified",
                           "no population has the monocytes' relations (CD14 brightest; CD45 and SSC between "
                           "granulocytes and lymphocytes)", populations=pop_records)
        mono = naming.monocytes
        is_mono = np.zeros(fit.weights.size, dtype=bool)
        is_mono[list(mono.components)] = True
        fit0 = fit
        fit = gr.robust_components(fit, is_mono, Xs)
        best = gm.likeliest(Xs, fit)  # of the robust fit: both steps below judge the rows by it
        is_mono = gr.scatter_consistent(fit, is_mono, Xs, best)
        fit, is_mono = gr.cd14_dim_component(fit, is_mono, Xs, inv_p, naming, best, has_cd45=has_cd45)
        d2max = float(gm.chi2_ppf(g.ellipsoid_quantile, X.shape[1]))
        box_lo, box_hi = _box(fit, is_mono, d2max, cof)
        # CD45 gate: the CD45-negative valley, never above the monocytes' lower tail
        cd45_min = None
        if has_cd45:
            valley = valley_below_first_peak(X[:, gp.I_CD45])
            floor = float(mono.mean[gp.I_CD45] - 4.0 * mono.sd[gp.I_CD45])
            t = floor if valley is None else min(valley, floor)
            cd45_min = float(np.sinh(t) * cof[gp.I_CD45])
        L = naming.lymphocytes
        fsc_lo = float(np.sinh(min(L.mean[gp.I_FSC] - np.log(g.debris_fsc_ratio),
                                   mono.mean[gp.I_FSC] - 4.0 * mono.sd[gp.I_FSC])) * cof[gp.I_FSC])
        gate = MonocyteGate(
            panel=panel,
            fsc_range=(max(fsc_lo, float(np.nextafter(0.0, 1.0))), float(fsc_hi)),
            ssc_range=(float(np.nextafter(0.0, 1.0)), float(ssc_hi)),
            singlet_channel=sing_ch,
            singlet_is_ratio=is_ratio,
            singlet_range=(float(sing_range[0]), float(sing_range[1])),
            cd45_min=cd45_min,
            features=tuple(features),
            cofactors=cof,
            means=fit.means,
            precisions=fit.precisions,
            log_norm=fit.log_norm,
            is_monocyte=is_mono,
            d2max=d2max,
            odds=g.min_posterior / (1.0 - g.min_posterior),
            box=(box_lo, box_hi),
            populations=pop_records,
            flags=tuple(flags),
        )
        verdict = check_gate(gate, naming, (Xs, inv_p), (Xk, pe), seed=seed, rules=rules, second=second)
        if verdict.failure is not None:
            code, reason = verdict.failure
            return fit0, naming, failure(code, reason, checks=verdict.figures, populations=pop_records)
        return fit0, naming, replace(gate, checks=verdict.figures)

    fit, naming, gate = attempt(Xc)
    if gate or gate.code not in _SECOND_LOOK or not naming.debris:
        return gate
    # a second look without the debris: a broad, sparse debris cloud keeps many rows in the
    # density-dependent sample and takes mixture components (4-5 of 10 in a septic tube with much
    # debris), so that a 1-3 % monocyte population gets none of its own and is merged into the
    # granulocytes. The cells are fitted again without the rows the first mixture put in debris;
    # the new gate must pass every check on its own, or the first failure stands
    debris_comps = [j for p in naming.debris for j in p.components]
    cells = ~np.isin(gm.likeliest(Xc, fit), debris_comps)
    if cells.sum() < 200 or cells.all():
        return gate
    _, _, second = attempt(Xc[cells])
    if not second:  # the first failure stands; what the second look found is kept with it
        return replace(gate, checks={**gate.checks, "second_look": f"failed: {second.code}"})
    return replace(second, flags=second.flags + ("gated_after_debris_refit",),
                   checks={**second.checks, "second_look": "debris_removed"})


def _singlet_metric(fsc_a: np.ndarray, other: np.ndarray, is_ratio: bool) -> np.ndarray:
    """FSC-A / FSC-H (NaN where FSC-H is not positive), or FSC-W itself."""
    if not is_ratio:
        return other
    ok = other > 0
    return np.where(ok, fsc_a / np.where(ok, other, 1.0), np.nan)


def _box(fit, is_mono: np.ndarray, d2max: float, cof: tuple[float, ...]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Raw-scale box holding every point within ``d2max`` of a monocyte component."""
    return monocyte_box(fit.means, fit.covariances, is_mono, d2max, cof)


def _population_records(naming, pops, names: tuple[str, ...]) -> tuple:
    """Named populations (share of the non-debris events, mean and SD per feature) for provenance and the report."""
    label = naming.names()
    cw = sum(p.weight for p in naming.cells) or 1.0
    out = []
    for p in sorted(pops, key=lambda p: -p.weight):
        r = p.to_dict(label.get(id(p), ""), names)
        r["share_of_cells"] = round(float(p.weight / cw), 5) if p in naming.cells else None
        out.append(r)
    return tuple(out)
