"""Per-tube figure data for the report: the CD14 vs SSC density with the gated monocytes, and the
monocytes' AB/C histogram -- small plain records computed where the events are, so that the
report never needs the tube again.
"""

from __future__ import annotations

import numpy as np

from .beads.calibrate import BeadCurve
from .channels import Panel
from .events import Events
from .gating.automated import cofactor
from .gating.monocyte_gate import MonocyteGate

__all__ = ["figure_data", "abc_histogram", "histogram2d"]


def figure_data(events: Events, panel: Panel, gate: MonocyteGate | None, rows: np.ndarray | None = None) -> dict:
    """Compact data for the report's gating plot: CD14 vs SSC density (asinh), 48 x 48, of all
    events and of the gated monocytes (``rows``) on the same grid."""
    cof14 = gate.cof_cd14 if gate else cofactor(events.upper_limit(panel.cd14))
    cofs = gate.cof_ssc if gate else cofactor(events.upper_limit(panel.ssc_a))
    step = max(1, events.n_events // 50_000)
    x = np.arcsinh(events.data[::step, events.index(panel.cd14)] / cof14)  # no full-length column copies
    y = np.arcsinh(events.data[::step, events.index(panel.ssc_a)] / cofs)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 10:
        return {}
    xr = [float(v) for v in np.percentile(x, [0.5, 99.9])]  # one selection per axis, the same values
    yr = [float(v) for v in np.percentile(y, [0.5, 99.9])]
    h = histogram2d(x, y, 48, xr, yr)
    out = {"density": h.astype(int).tolist(), "x_range": xr, "y_range": yr,
           "x_label": f"asinh({panel.cd14}/{cof14:g})", "y_label": f"asinh({panel.ssc_a}/{cofs:g})"}
    if rows is not None and rows.size:
        r = rows[:: max(1, rows.size // 20_000)]
        gx = np.arcsinh(events.data[r, events.index(panel.cd14)] / cof14)
        gy = np.arcsinh(events.data[r, events.index(panel.ssc_a)] / cofs)
        g = histogram2d(gx, gy, 48, xr, yr)
        out["gated"] = g.astype(int).tolist()
    return out


def _bin_index(v, lo: float, hi: float, bins: int):
    """Bin of each value of ``v`` on ``bins`` equal bins over [lo, hi] (-1 outside; the last bin holds ``hi``):
    np.histogram's equal-bin rule -- the arithmetic index, corrected against the same edges."""
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    with np.errstate(invalid="ignore"):
        keep = (v >= edges[0]) & (v <= edges[-1])
        i = np.nan_to_num((v - edges[0]) / (edges[-1] - edges[0]) * bins, nan=0.0, posinf=bins, neginf=0)
    i = np.clip(i, 0, bins - 1).astype(np.intp)
    i -= v < edges[i]
    i += (v >= edges[np.minimum(i + 1, bins)]) & (i != bins - 1)
    i[~keep] = -1
    return i


def histogram2d(x, y, bins: int, xr: list[float], yr: list[float]):
    """``np.histogram2d(x, y, bins, range=[xr, yr])[0]``, the same counts three times faster (histogramdd
    bins by ``searchsorted``; equal bins allow an index by arithmetic)."""
    ix, iy = _bin_index(x, xr[0], xr[1], bins), _bin_index(y, yr[0], yr[1], bins)
    ok = (ix >= 0) & (iy >= 0)
    return np.bincount(ix[ok] * bins + iy[ok], minlength=bins * bins).reshape(bins, bins).astype(np.float64)


def abc_histogram(pe, curve: BeadCurve) -> dict:
    """Histogram of monocyte log10 AB/C (positive events), 60 bins over 1..6."""
    abc = curve.pe_molecules(pe)
    counts, edges = np.histogram(np.log10(abc[abc > 0]), bins=60, range=(1.0, 6.0))
    return {"counts": counts.tolist(), "log10_edges": [1.0, 6.0]}
