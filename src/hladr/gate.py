"""Automated monocyte gating: cells -> singlets -> CD45+ leukocytes -> CD14+ monocytes.

Calling contract: ``fit_monocyte_gate(events, panel, ...)`` estimates a frozen
``MonocyteGate`` (plain numbers: thresholds and an ellipse) from a subsample of
the tube, or returns a falsy ``GateFailure`` when the data do not support a
gate; ``gate.apply(events)`` evaluates it on every event with one fused Numba
pass and returns a ``GateResult`` (final mask and the events kept by each step).

Notes
-----
Each step is fitted to the tube itself, with no positions tuned to an
instrument:

1. cells: events piled up at a scatter channel's maximum are off-scale; debris
   is cut at the density valley below the lowest substantial FSC-A peak
   (lymphocytes), when there is such a valley.
2. singlets: the FSC-A/FSC-H ratio (or FSC-W) of singlets is nearly constant;
   keep median +/- 4 robust SD (doublets have a larger ratio).
3. leukocytes: CD45 >= the density valley below the lowest substantial CD45
   peak (granulocytes are CD45-dim, CD45-negative debris lies below).
4. monocytes: a Gaussian mixture on (asinh CD14, asinh SSC) with one component
   started at each peak of the 2-D density; the component with the highest CD14
   is the monocytes; the gate is its 99 % ellipse. Granulocytes are CD14-dim with
   high SSC, lymphocytes CD14-negative.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from . import _kernels
from .channels import Panel
from .events import Events

__all__ = ["MonocyteGate", "GateFailure", "GateResult", "fit_monocyte_gate", "valley_below_first_peak", "cofactor"]

_CHI2_99_2DOF = 9.210340371976184  # chi-square 0.99 quantile, 2 degrees of freedom
_MAX_FIT_EVENTS = 10_000
_SINGLET_SD = 4.0
_BLOCK = 1 << 18  # rows per block of the passes over every event (small temporaries)
_GMM_TOL = 1e-2  # EM stops when the mean log-likelihood gains < 0.01: same gates, 2.5x fewer iterations


@dataclass(frozen=True)
class GateFailure:
    """The data do not support a gate (falsy); ``reason`` is one line."""

    code: str
    reason: str
    counts: dict = field(default_factory=dict)

    def __bool__(self) -> bool:
        return False


@dataclass(frozen=True)
class GateResult:
    """Outcome of applying a gate to a tube."""

    mask: np.ndarray
    counts: dict
    flags: tuple[str, ...] = ()

    @property
    def n_monocytes(self) -> int:
        return int(self.counts["monocytes"])


@dataclass(frozen=True)
class MonocyteGate:
    """Fitted gate chain; every parameter is a number on the tube's raw scale,
    except the monocyte ellipse, which lives in (asinh(CD14/cof_cd14), asinh(SSC/cof_ssc))."""

    panel: Panel
    fsc_range: tuple[float, float]
    ssc_range: tuple[float, float]
    singlet_channel: str | None
    singlet_is_ratio: bool
    singlet_range: tuple[float, float]
    cd45_min: float | None
    cof_cd14: float
    cof_ssc: float
    centre: tuple[float, float]
    inv_cov: tuple[float, float, float]  # (a, b, c) of [[a, b], [b, c]]
    d2max: float
    flags: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return True

    def to_dict(self) -> dict:
        """Plain record of the fitted parameters (stored with each result)."""
        return {
            "fsc_range": list(self.fsc_range),
            "ssc_range": list(self.ssc_range),
            "singlet_channel": self.singlet_channel,
            "singlet_is_ratio": self.singlet_is_ratio,
            "singlet_range": list(self.singlet_range),
            "cd45_min": self.cd45_min,
            "cofactors": {"cd14": self.cof_cd14, "ssc": self.cof_ssc},
            "ellipse": {"centre": list(self.centre), "inv_cov": list(self.inv_cov), "d2max": self.d2max},
        }

    def _args(self, events: Events) -> tuple:
        p = self.panel
        i_sing = events.index(self.singlet_channel) if self.singlet_channel else -1
        i_cd45 = events.index(p.cd45) if (p.cd45 and self.cd45_min is not None) else -1
        return (
            events.index(p.fsc_a), i_sing, events.index(p.ssc_a), i_cd45, events.index(p.cd14),
            self.fsc_range[0], self.fsc_range[1], self.ssc_range[0], self.ssc_range[1],
            self.singlet_range[0], self.singlet_range[1], self.singlet_is_ratio,
            self.cd45_min if self.cd45_min is not None else -np.inf,
            self.cof_cd14, self.cof_ssc, self.centre[0], self.centre[1],
            self.inv_cov[0], self.inv_cov[1], self.inv_cov[2], self.d2max,
        )

    def apply(self, events: Events, *, reference: bool = False) -> GateResult:
        """Evaluate the chain on every event (``reference=True``: the NumPy twin)."""
        data = np.ascontiguousarray(events.data, dtype=np.float32)
        fn = _kernels.monocyte_chain_ref if reference else _kernels.monocyte_chain
        mask, c = fn(data, *self._args(events))
        counts = {
            "events": events.n_events,
            "cells": int(c[0]),
            "singlets": int(c[1]),
            "leukocytes": int(c[2]) if self.cd45_min is not None else None,
            "monocytes": int(c[3]),
        }
        return GateResult(mask=np.asarray(mask, dtype=bool), counts=counts, flags=self.flags)


# --------------------------------------------------------------------------- density helpers
def valley_below_first_peak(values: np.ndarray, *, bins: int = 256) -> float | None:
    """Density valley below the lowest substantial peak of ``values``, or None.

    A peak is substantial when its smoothed density is at least 20 % of the
    highest peak. The valley must lie between that peak and a lower maximum (a
    peak or a pile-up at the low edge) and be at most half as dense as both.
    """
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import find_peaks

    v = values[np.isfinite(values)]
    if v.size < 100:
        return None
    lo, hi = np.percentile(v, [0.1, 99.9])
    if not hi > lo:
        return None
    hist, edges = np.histogram(v, bins=bins, range=(lo, hi))
    dens = gaussian_filter1d(hist.astype(float), 2.0)
    padded = np.concatenate([[0.0], dens, [0.0]])
    peaks, _ = find_peaks(padded, prominence=0.02 * dens.max())
    peaks = peaks - 1
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


def density_peaks_2d(X: np.ndarray, *, bins: int = 64, min_height: float = 0.02, max_peaks: int = 6) -> np.ndarray:
    """Local maxima of the smoothed 2-D density of ``X`` (n, 2), highest first, as (k, 2) points.

    A peak counts when it is the maximum of its 5 x 5-bin neighbourhood and at least
    ``min_height`` times the highest peak; at most ``max_peaks`` are returned.
    """
    from scipy.ndimage import gaussian_filter, maximum_filter

    if X.shape[0] < 50:
        return np.empty((0, 2))
    lo = np.percentile(X, 0.5, axis=0)
    hi = np.percentile(X, 99.5, axis=0)
    if not np.all(hi > lo):
        return np.empty((0, 2))
    h, ex, ey = np.histogram2d(X[:, 0], X[:, 1], bins=bins, range=[[lo[0], hi[0]], [lo[1], hi[1]]])
    d = gaussian_filter(h, 1.5)
    is_peak = (d == maximum_filter(d, size=5)) & (d >= min_height * d.max()) & (d > 0)
    ix, iy = np.nonzero(is_peak)
    order = np.argsort(d[ix, iy])[::-1][:max_peaks]
    cx = 0.5 * (ex[:-1] + ex[1:])
    cy = 0.5 * (ey[:-1] + ey[1:])
    return np.column_stack([cx[ix[order]], cy[iy[order]]])


def _pileup_max(x: np.ndarray, *, block: int = _BLOCK) -> float:
    """Upper bound excluding a pile-up of saturated events at the maximum value.

    ``x`` may be a strided column view: it is read block by block, never copied.
    """
    top, n_top, n_finite = -np.inf, 0, 0
    for lo in range(0, x.shape[0], block):
        b = x[lo : lo + block]
        finite = np.isfinite(b)
        nf = int(np.count_nonzero(finite))
        if nf == 0:
            continue
        n_finite += nf
        t = b.max(where=finite, initial=-np.inf)
        # the finite values >= the maximum are those equal to it (NaN and inf never are)
        if t > top:
            top, n_top = t, int(np.count_nonzero(b == t))
        elif t == top:
            n_top += int(np.count_nonzero(b == t))
    if n_finite == 0:
        return np.inf
    if n_top >= max(2, 5e-4 * n_finite):
        return float(top)  # the half-open range [lo, top) drops the pile-up
    return np.inf


def _on_scale(fsc: np.ndarray, ssc: np.ndarray, fsc_hi: float, ssc_hi: float, *, block: int = _BLOCK) -> np.ndarray:
    """``(fsc > 0) & (ssc > 0) & (fsc < fsc_hi) & (ssc < ssc_hi)``, block by block (small temporaries)."""
    out = np.empty(fsc.shape[0], dtype=bool)
    for lo in range(0, fsc.shape[0], block):
        f, s = fsc[lo : lo + block], ssc[lo : lo + block]
        out[lo : lo + block] = (f > 0) & (s > 0) & (f < fsc_hi) & (s < ssc_hi)
    return out


def _true_positions(mask: np.ndarray, ranks: np.ndarray, *, block: int = _BLOCK) -> np.ndarray:
    """``np.flatnonzero(mask)[ranks]`` for sorted ``ranks``, without the full index array."""
    out = np.empty(ranks.size, dtype=np.int64)
    done = seen = 0
    for lo in range(0, mask.shape[0], block):
        if done == ranks.size:
            break
        pos = np.flatnonzero(mask[lo : lo + block])
        end = int(np.searchsorted(ranks, seen + pos.size))  # ranks[done:end] fall in this block
        out[done:end] = pos[ranks[done:end] - seen] + lo
        done, seen = end, seen + pos.size
    return out


def cofactor(upper: float) -> float:
    """asinh cofactor for a channel whose decoded upper limit is ``upper`` (1/1000 of the range, >= 1)."""
    return max(1.0, float(upper) / 1000.0)


# --------------------------------------------------------------------------- fitting
@functools.cache
def _blas_threads():
    """threadpoolctl's view of the BLAS/OpenMP libraries loaded, made once per process.

    ``threadpool_limits(...)`` would scan the loaded libraries at every call (3 ms, an
    eighth of a 100k-event fit); the libraries do not change once scikit-learn is in.
    """
    from sklearn.mixture import GaussianMixture  # noqa: F401 - its BLAS libraries are loaded first
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def fit_monocyte_gate(
    events: Events, panel: Panel, *, seed: int = 0, max_fit_events: int = _MAX_FIT_EVENTS,
    min_separation: float | None = None,
    max_fraction: float | None = None,
) -> MonocyteGate | GateFailure:
    """Fit the cells -> singlets -> CD45+ -> CD14+ monocyte chain to one tube.

    Parameters
    ----------
    events : Events
        The (compensated) tube.
    panel : Panel
        Channel roles; ``panel.cd14`` is required.
    seed : int
        Seed of the subsample and mixture fit (the gate is reproducible).
    max_fit_events : int
        Events used for each fit (the gate is applied to all events).
    min_separation : float, optional
        Least Ashman's D on CD14 between the monocytes and the nearest other
        population (default: the rule table's ``gating.min_cd14_separation``).
    max_fraction : float, optional
        Largest plausible share of the leukocytes for the monocyte component
        (default: the rule table's ``gating.max_monocyte_fraction``).

    Returns
    -------
    MonocyteGate or GateFailure
    """
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(seed)
    flags = list(panel.flags)
    n = events.n_events
    if n < 200:
        return GateFailure("too_few_events", f"only {n} events in the tube")
    data = events.data
    # full-length work on the matrix's own columns (views, compared in their own precision: the
    # thresholds 0, inf and a column's maximum are exact in it); float64 only for the drawn rows
    fsc, ssc = data[:, events.index(panel.fsc_a)], data[:, events.index(panel.ssc_a)]

    def rows_of(channel: str, rows: np.ndarray) -> np.ndarray:
        return data[rows, events.index(channel)]

    # 1. cells
    fsc_hi, ssc_hi = _pileup_max(fsc), _pileup_max(ssc)
    on_scale = _on_scale(fsc, ssc, fsc_hi, ssc_hi)
    n_on = int(np.count_nonzero(on_scale))
    if n_on > 4 * max_fit_events:
        # the same draw as ``np.sort(rng.choice(np.flatnonzero(on_scale), ...))``, without that index array
        idx = _true_positions(on_scale, np.sort(rng.choice(n_on, 4 * max_fit_events, replace=False)))
    else:
        idx = np.flatnonzero(on_scale)
    del on_scale
    fsc_idx = fsc[idx].astype(np.float64)
    debris = valley_below_first_peak(np.log10(fsc_idx))
    fsc_lo = 10.0**debris if debris is not None else np.nextafter(0.0, 1.0)
    if debris is None:
        flags.append("no_debris_valley")
    tiny = np.nextafter(0.0, 1.0)
    in_cells = fsc_idx >= fsc_lo
    cells, fsc_cells = idx[in_cells], fsc_idx[in_cells]
    if cells.size < 100:
        return GateFailure("no_cells", f"only {cells.size} events inside the scatter range")

    # 2. singlets
    sing_ch, is_ratio, sing_range = None, False, (-np.inf, np.inf)
    singlets = cells
    if panel.fsc_h or panel.fsc_w:
        sing_ch = panel.fsc_h or panel.fsc_w
        is_ratio = panel.fsc_h is not None
        metric = rows_of(sing_ch, cells).astype(np.float64)
        if is_ratio:
            ok = metric > 0
            metric = np.where(ok, fsc_cells / np.where(ok, metric, 1.0), np.nan)
        m = metric[np.isfinite(metric) & (metric > 0)]
        if m.size < 100:
            return GateFailure("no_singlets", f"the {sing_ch} channel holds no usable values")
        lm = np.log(m)
        med = np.median(lm)
        sd = max(1.4826 * np.median(np.abs(lm - med)), 0.01)
        sing_range = (float(np.exp(med - _SINGLET_SD * sd)), float(np.exp(med + _SINGLET_SD * sd)))
        singlets = cells[(metric >= sing_range[0]) & (metric < sing_range[1])]

    # 3. leukocytes (CD45+)
    cd45_min = None
    leuk = singlets
    if panel.cd45:
        cd45 = rows_of(panel.cd45, singlets).astype(np.float64)
        cof45 = cofactor(events.upper_limit(panel.cd45))
        valley = valley_below_first_peak(np.arcsinh(cd45 / cof45))
        if valley is None:
            flags.append("no_cd45_valley")
            cd45_min = -np.inf
        else:
            cd45_min = float(np.sinh(valley) * cof45)
        leuk = singlets[cd45 >= cd45_min]
    else:
        flags.append("gated_without_cd45")
    if leuk.size < 50:
        return GateFailure("no_leukocytes", f"only {leuk.size} leukocytes found")

    # 4. monocytes: mixture on (asinh CD14, asinh SSC)
    fit_idx = leuk if leuk.size <= max_fit_events else rng.choice(leuk, max_fit_events, replace=False)
    cof14 = cofactor(events.upper_limit(panel.cd14))
    cofs = cofactor(events.upper_limit(panel.ssc_a))
    X = np.column_stack(
        [np.arcsinh(rows_of(panel.cd14, fit_idx) / cof14),
         np.arcsinh(rows_of(panel.ssc_a, fit_idx).astype(np.float64) / cofs)]
    )
    X = X[np.all(np.isfinite(X), axis=1)]
    peaks = density_peaks_2d(X)
    if len(peaks) >= 2:
        # one component per density peak: a random start can merge monocytes with granulocytes
        k = len(peaks)
        gmm = GaussianMixture(n_components=k, covariance_type="full", random_state=seed, max_iter=200,
                              reg_covar=1e-4, means_init=peaks, tol=_GMM_TOL)
    else:
        k = 4 if X.shape[0] >= 400 else 2
        gmm = GaussianMixture(n_components=k, covariance_type="full", random_state=seed, n_init=1,
                              max_iter=200, reg_covar=1e-4, init_params="k-means++", tol=_GMM_TOL)
    # a 2-D fit on 10k points gains nothing from threads; with them it stalls
    # on a busy machine (thread oversubscription), so keep it single-threaded.
    with _blas_threads().limit(limits=1):
        gmm.fit(X)
    weights, means, covs = gmm.weights_, gmm.means_, gmm.covariances_
    candidates = [j for j in range(k) if weights[j] >= 0.005]
    mono = max(candidates, key=lambda j: means[j, 0])
    others = [j for j in range(k) if j != mono and weights[j] >= 0.05]
    if min_separation is None or max_fraction is None:
        from .rules import load_rules

        rules = load_rules()
        min_separation = rules.gate_min_separation if min_separation is None else min_separation
        max_fraction = rules.gate_max_monocyte_fraction if max_fraction is None else max_fraction
    if not weights[mono] <= max_fraction:
        return GateFailure(
            "monocytes_implausible",
            f"the brightest CD14 population holds {weights[mono]:.0%} of the leukocytes (monocytes are a "
            f"minority, <= {max_fraction:.0%}): no monocyte population (CD14 staining failed?)",
        )
    if others:
        near = min(others, key=lambda j: abs(means[mono, 0] - means[j, 0]))
        dist = abs(means[mono, 0] - means[near, 0])
        ashman = float(np.sqrt(2.0) * dist / np.sqrt(covs[mono][0, 0] + covs[near][0, 0]))
        if not ashman >= min_separation:
            return GateFailure(
                "monocytes_not_separated",
                f"no distinct CD14+ population on {panel.cd14} (separation D={ashman:.2f} < {min_separation:g})",
            )
    inv = np.linalg.inv(covs[mono])
    return MonocyteGate(
        panel=panel,
        fsc_range=(float(fsc_lo), float(fsc_hi)),
        ssc_range=(float(tiny), float(ssc_hi)),
        singlet_channel=sing_ch,
        singlet_is_ratio=is_ratio,
        singlet_range=(float(sing_range[0]), float(sing_range[1])),
        cd45_min=cd45_min,
        cof_cd14=cof14,
        cof_ssc=cofs,
        centre=(float(means[mono, 0]), float(means[mono, 1])),
        inv_cov=(float(inv[0, 0]), float(inv[0, 1]), float(inv[1, 1])),
        d2max=_CHI2_99_2DOF,
        flags=tuple(flags),
    )
