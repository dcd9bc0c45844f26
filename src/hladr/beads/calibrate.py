"""QuantiBRITE PE calibration: bead singlets -> four PE levels -> log-log fit -> acceptance.

Calling contract: ``fit_bead_curve(events, lot, rules)`` returns a frozen
``BeadCurve`` (the fit, per-level statistics, acceptance verdict and flags) or a
falsy ``FitFailure`` when the tube does not hold bead populations at all.
``curve.pe_molecules(pe)`` applies the fitted curve; it is :func:`apply_bead_curve`, the
one function that turns PE into PE molecules (antibodies bound per cell) anywhere in hladr:
the fit's residuals, the samples' AB/C and the report's line.

Notes
-----
The model, fitted by least squares in log space on the usable levels::

    log10(pe_per_bead) = intercept + slope * log10(MFI)

Levels are found without fixed channel positions: peaks of the log10(PE)
density of singlet beads are matched to the certificate levels by the order and
spacing that best fit a straight line (so a missing level is identified by
name). A level whose median lies within ``saturation_sd`` robust SDs of the
channel's upper limit is saturated: dropped from the fit and flagged.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from .. import _kernels
from .._stats import density_peaks, robust_sd
from ..channels import Panel
from ..events import Events
from ..rules import RuleSet
from .lots import LEVEL_NAMES, Lot

__all__ = [
    "BeadCurve", "BeadLevel", "FitFailure", "apply_bead_curve", "fit_bead_curve", "judge_fit", "find_bead_singlets",
    "find_pe_peaks",
]


def apply_bead_curve(pe: np.ndarray | float, intercept: float, slope: float) -> np.ndarray:
    """PE molecules of each value: ``10**(intercept + slope*log10(pe))`` for pe > 0, 0 otherwise.

    Parameters
    ----------
    pe : float or ndarray, any shape
        PE fluorescence (compensated, channel units).
    intercept, slope : float
        The fitted line ``log10(pe_molecules) = intercept + slope * log10(pe)``.

    Returns
    -------
    float64 ndarray, the shape of ``pe``
        PE molecules; for QuantiBRITE (one PE per antibody) the antibodies bound per cell.

    Notes
    -----
    **PE <= 0 gives 0** (so does NaN: it is not > 0). The power law has no value there,
    and an event without a positive PE signal carries no measurable HLA-DR: as 0 it is
    counted and ranks lowest in the monocyte median (SPEC.md §3; ``quantify`` counts such
    events in ``n_nonpositive``). NaN would either make that median NaN or, filtered out,
    drop events uncounted. The bead levels' medians and the report's line are of positive
    PE only, so they meet no such value.

    The arithmetic is the compiled kernel ``_kernels.abc_from_pe`` (per element, in this
    order; its NumPy twin ``abc_from_pe_ref`` is tested against it), which
    ``_kernels.abc_summary`` also applies to the monocytes: the fit's residuals, each
    sample's AB/C and the report's line are computed alike, to the last bit.
    """
    values = np.asarray(pe, dtype=np.float64)
    flat = np.ascontiguousarray(values.reshape(-1))
    return _kernels.abc_from_pe(flat, float(intercept), float(slope)).reshape(values.shape)


@dataclass(frozen=True)
class FitFailure:
    """The tube does not support a fit (falsy); ``reason`` is one line."""

    code: str
    reason: str

    def __bool__(self) -> bool:
        return False


@dataclass(frozen=True)
class BeadLevel:
    """One QuantiBRITE level as measured."""

    name: str
    pe_per_bead: float
    mfi: float | None
    events: int
    rcv: float | None
    saturated: bool
    used: bool
    fitted_pe: float | None = None
    residual_pct: float | None = None

    @property
    def rcv_pct(self) -> float | None:
        """Robust CV in percent (``None`` for an absent level)."""
        return None if self.rcv is None else 100.0 * self.rcv

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "pe_per_bead": self.pe_per_bead,
            "mfi": self.mfi,
            "events": self.events,
            "rcv_pct": self.rcv_pct,
            "saturated": self.saturated,
            "used": self.used,
            "fitted_pe": self.fitted_pe,
            "residual_pct": self.residual_pct,
        }


@dataclass(frozen=True)
class BeadCurve:
    """Fitted calibration of one bead tube, with its acceptance verdict."""

    slope: float
    intercept: float
    r2: float
    levels: tuple[BeadLevel, ...]
    accepted: bool
    flags: tuple[str, ...]
    reasons: tuple[str, ...]
    pe_channel: str
    singlets: int
    events: int
    # the report's bead figure: log10 PE histogram of the singlet beads and each level's population
    # bounds (not part of the calibration record: a reused record has none)
    figure: dict = field(default_factory=dict, compare=False, repr=False)

    def __bool__(self) -> bool:
        return True

    def pe_molecules(self, pe: np.ndarray | float) -> np.ndarray:
        """PE molecules (= antibodies bound, one PE per antibody) of PE values; 0 for PE <= 0.

        :func:`apply_bead_curve` with this curve's line (see there for PE <= 0).
        """
        return apply_bead_curve(pe, self.intercept, self.slope)

    @property
    def mfi_range(self) -> tuple[float, float]:
        """MFI of the lowest and highest level used in the fit (outside: extrapolation)."""
        used = [lv.mfi for lv in self.levels if lv.used and lv.mfi]
        return (min(used), max(used))


# --------------------------------------------------------------------------- bead finding
def find_bead_singlets(events: Events, panel: Panel) -> np.ndarray:
    """Indices of singlet beads: the tight FSC/SSC cluster, minus doublets by FSC-A/FSC-H."""
    fsc = events.column(panel.fsc_a).astype(np.float64)
    ssc = events.column(panel.ssc_a).astype(np.float64)
    ok = (fsc > 0) & (ssc > 0)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return idx
    keep = np.ones(idx.size, dtype=bool)
    for x in (np.log10(fsc[idx]), np.log10(ssc[idx])):
        med = np.median(x)
        sd = max(robust_sd(x, med), 1e-3)
        keep &= np.abs(x - med) <= 4.0 * sd
    if panel.fsc_h:
        h = events.column(panel.fsc_h).astype(np.float64)[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(h > 0, np.log(fsc[idx] / np.where(h > 0, h, 1.0)), np.nan)
        good = keep & np.isfinite(r)
        if good.sum() > 50:
            med = np.median(r[good])
            sd = max(robust_sd(r[good], med), 0.005)
            keep &= np.abs(r - med) <= 4.0 * sd
    return idx[keep]


def find_pe_peaks(pe: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """Populations on log10(PE): list of (peak position, member mask), low to high.

    Peaks of the smoothed density; each population spans the valleys either side.
    Minor peaks (fewer than 15 % of the events of a typical population) are dropped.
    """
    pos = pe > 0
    lp = np.full(pe.shape, np.nan)
    lp[pos] = np.log10(pe[pos])
    v = lp[pos]
    if v.size < 20:
        return []
    lo, hi = v.min(), v.max()
    if not hi > lo:
        return [(float(lo), pos.copy())]
    nbins = int(np.clip((hi - lo) / 0.01, 64, 1024))
    dens, edges, peaks = density_peaks(v, bins=nbins, value_range=(lo, hi),
                                       sigma=max(1.0, 0.02 / ((hi - lo) / nbins)), prominence=0.01)
    if peaks.size == 0:
        return []
    # population bounds: density minima between consecutive peaks
    bounds = [lo - 1.0]
    for a, b in itertools.pairwise(peaks):
        j = a + int(np.argmin(dens[a : b + 1]))
        bounds.append(edges[j + 1])
    bounds.append(hi + 1.0)
    pops = []
    for k, p in enumerate(peaks):
        member = (lp >= bounds[k]) & (lp < bounds[k + 1]) if k + 1 < len(peaks) else (lp >= bounds[k])
        pops.append((float(0.5 * (edges[p] + edges[p + 1])), member))
    sizes = np.array([m.sum() for _, m in pops])
    typical = np.median(np.sort(sizes)[-4:])
    return [(c, m) for (c, m), s in zip(pops, sizes, strict=True) if s >= 0.15 * typical]


def _best_match(centres: list[float], log_pe: np.ndarray, size: int) -> tuple[float, dict[int, int]] | None:
    """Best injective, order-keeping match of ``size`` populations to ``size`` levels."""
    best = None
    for pops in itertools.combinations(range(len(centres)), size):
        x = np.array([centres[p] for p in pops])
        for levels in itertools.combinations(range(len(log_pe)), size):
            y = log_pe[list(levels)]
            b, a = np.polyfit(x, y, 1)
            if not 0.5 <= b <= 2.0:
                continue
            # squared residuals, plus a weak prior for a slope near 1
            score = float(np.sum((y - (a + b * x)) ** 2)) + 0.05 * (b - 1.0) ** 2
            if best is None or score < best[0]:
                best = (score, dict(zip(pops, levels, strict=True)))
    return best


def _assign_levels(centres: list[float], lot: Lot, *, n_saturated: int = 0) -> dict[int, int]:
    """Map population index -> level index (0 = low ... 3 = high).

    ``centres`` are the unsaturated populations, low to high; the ``n_saturated``
    populations above them take the top levels. The unsaturated ones are matched
    to the remaining levels: all of them when they lie on a straight line (RMS
    residual <= 0.05 decade), otherwise the best match with one level fewer names
    the missing level.
    """
    n_free = len(lot.pe_per_bead) - n_saturated
    log_pe = np.log10(np.array(lot.pe_per_bead[:n_free]))
    full = _best_match(centres, log_pe, n_free) if 2 <= n_free <= len(centres) else None
    if full is not None and full[0] <= n_free * 0.05**2:
        return full[1]
    fewer = _best_match(centres, log_pe, n_free - 1) if 2 <= n_free - 1 <= len(centres) else None
    chosen = fewer or full
    return chosen[1] if chosen else {}


# --------------------------------------------------------------------------- the fit
def judge_fit(
    slope: float, r2: float, *, n_used: int, n_missing: int, rules: RuleSet
) -> tuple[bool, list[str], list[str]]:
    """Acceptance of a bead fit per the rule table (SPEC.md §3).

    Accepted when no level is missing from the tube, at least ``cal_min_levels``
    levels are usable, R² >= ``cal_r2_min`` and ``cal_slope_min <= slope <=
    cal_slope_max`` (limits inclusive). Returns (accepted, flags, reasons).
    """
    flags: list[str] = []
    reasons: list[str] = []
    if n_missing:
        flags.append("levels_missing")
        reasons.append(f"{n_missing} bead level(s) absent: bad bead tube")
    if n_used < rules.cal_min_levels:
        flags.append("too_few_levels")
        reasons.append(f"{n_used} usable levels, {rules.cal_min_levels} needed")
    if not r2 >= rules.cal_r2_min:
        flags.append("r2_low")
        reasons.append(f"R² {r2:.4f} < {rules.cal_r2_min}")
    if not rules.cal_slope_min <= slope <= rules.cal_slope_max:
        flags.append("slope_out_of_range")
        reasons.append(f"slope {slope:.3f} outside {rules.cal_slope_min}-{rules.cal_slope_max}")
    return (not flags), flags, reasons


def _is_saturated(raw: np.ndarray, upper: float, n_sd: float) -> bool:
    """SPEC rule: the level's median lies within ``n_sd`` robust SDs of the upper limit.

    Judged on uncompensated values (saturation happens in the detector), with a
    margin of 1 % of the range for the quantisation of the top channel (a 4-decade,
    1024-channel log scale tops out at 0.991 x its range).
    """
    med = float(np.median(raw))
    sd = float(robust_sd(raw, med))
    return upper - med <= n_sd * sd + 0.01 * upper


def fit_bead_curve(
    events: Events, panel: Panel, lot: Lot, rules: RuleSet, *, raw_events: Events | None = None
) -> BeadCurve | FitFailure:
    """Fit the QuantiBRITE curve of a bead tube and judge it against the rule table.

    Parameters
    ----------
    events : Events
        The (compensated) bead tube.
    panel : Panel
        Channel roles; ``panel.hladr`` is the PE channel.
    lot : Lot
        Certificate PE molecules per bead of the four levels.
    rules : RuleSet
        Acceptance limits (R², slope, saturation, minimum levels).
    raw_events : Events, optional
        The same tube before compensation, for the saturation check (default: ``events``).

    Returns
    -------
    BeadCurve or FitFailure
    """
    pe_ch = panel.hladr
    if pe_ch is None:
        return FitFailure("no_pe_channel", "no PE channel in the bead tube")
    singlets = find_bead_singlets(events, panel)
    if singlets.size < 200:
        return FitFailure("no_bead_singlets", f"only {singlets.size} singlet beads found")
    pe = events.column(pe_ch).astype(np.float64)[singlets]
    pe_raw = (raw_events or events).column(pe_ch).astype(np.float64)[singlets]
    upper = events.upper_limit(pe_ch)
    pops = find_pe_peaks(pe)
    if len(pops) < rules.cal_min_levels:
        return FitFailure("bead_levels_not_found", f"{len(pops)} of 4 bead populations found on {pe_ch}")
    # Saturated populations (median within saturation_sd robust SDs of the channel's
    # upper limit) cannot be placed by the line fit: they take the top levels.
    stats_by_pop = []
    for _, member in pops:
        x = pe[member]
        med = float(np.median(x))
        sd = float(robust_sd(x, med))
        stats_by_pop.append((med, int(x.size), sd / med if med > 0 else np.nan,
                             _is_saturated(pe_raw[member], upper, rules.cal_saturation_sd)))
    free = [k for k, st in enumerate(stats_by_pop) if not st[3]]
    saturated_pops = [k for k, st in enumerate(stats_by_pop) if st[3]]
    if saturated_pops and min(saturated_pops) < max(free, default=-1):
        return FitFailure("bead_levels_not_matched", "a saturated bead population lies below an unsaturated one")
    n_sat = min(len(saturated_pops), len(LEVEL_NAMES))
    sub = _assign_levels([pops[k][0] for k in free], lot, n_saturated=n_sat)
    mapping = {free[i]: lvl for i, lvl in sub.items()}
    for j, k in enumerate(saturated_pops[-n_sat:] if n_sat else []):
        mapping[k] = len(LEVEL_NAMES) - n_sat + j
    if len(mapping) < rules.cal_min_levels:
        return FitFailure("bead_levels_not_matched", "bead populations do not match the lot's levels")
    flags: list[str] = []
    reasons: list[str] = []
    stats: dict[int, tuple[float, int, float, bool]] = {lvl: stats_by_pop[p] for p, lvl in mapping.items()}
    levels = []
    for k, name in enumerate(LEVEL_NAMES):
        if k in stats:
            med, cnt, rcv, sat = stats[k]
            levels.append(BeadLevel(name, lot.pe_per_bead[k], med, cnt, rcv, sat, used=not sat))
            if sat:
                flags.append(f"saturated:{name}")
                reasons.append(
                    f"level {name} is saturated (median {med:.0f} near the channel limit {upper:.0f}); "
                    "dropped from the fit"
                )
        else:
            levels.append(BeadLevel(name, lot.pe_per_bead[k], None, 0, None, False, used=False))
            flags.append(f"level_missing:{name}")
            reasons.append(f"bead level {name} is absent from the tube (bad bead tube)")
    used = [lv for lv in levels if lv.used]
    if len(used) < 2:
        return FitFailure("too_few_levels", f"only {len(used)} usable bead levels")
    x = np.log10([lv.mfi for lv in used])
    y = np.log10([lv.pe_per_bead for lv in used])
    slope, intercept = np.polyfit(x, y, 1)
    fitted = intercept + slope * x
    ss_res = float(np.sum((y - fitted) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0
    out_levels = []
    for lv in levels:
        if lv.mfi:
            fpe = float(apply_bead_curve(lv.mfi, intercept, slope))
            lv = BeadLevel(**{**lv.__dict__, "fitted_pe": fpe,
                              "residual_pct": 100.0 * (fpe - lv.pe_per_bead) / lv.pe_per_bead})
        out_levels.append(lv)
    accepted, more_flags, more_reasons = judge_fit(slope, r2, n_used=len(used), n_missing=sum(
        f.startswith("level_missing") for f in flags), rules=rules)
    flags += more_flags
    reasons += more_reasons
    return BeadCurve(
        slope=float(slope),
        intercept=float(intercept),
        r2=float(r2),
        levels=tuple(out_levels),
        accepted=accepted,
        flags=tuple(flags),
        reasons=tuple(reasons),
        pe_channel=pe_ch,
        singlets=int(singlets.size),
        events=events.n_events,
        figure=_bead_figure(pe, pops, mapping),
    )


def _bead_figure(pe: np.ndarray, pops: list[tuple[float, np.ndarray]], mapping: dict[int, int]) -> dict:
    """log10 PE histogram of the singlet beads (160 bins) and the log10 bounds of each level's population."""
    lp = np.log10(pe[pe > 0])
    if lp.size == 0:
        return {}
    lo, hi = (float(v) for v in np.percentile(lp, [0.05, 99.95]))
    lo, hi = lo - 0.1, hi + 0.1
    counts, _ = np.histogram(lp, bins=160, range=(lo, hi))
    levels = {}
    for p, lvl in mapping.items():
        v = pe[pops[p][1]]
        v = v[v > 0]
        if v.size:
            levels[LEVEL_NAMES[lvl]] = [float(np.log10(v.min())), float(np.log10(v.max()))]
    return {"counts": counts.tolist(), "log10_range": [lo, hi], "levels": levels}
