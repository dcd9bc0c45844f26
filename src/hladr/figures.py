"""Per-tube figure data for the report: the gating sequence and the monocytes' AB/C histogram.

Small plain records computed where the events are, so that the report never needs the tube
again (``hladr report OUT_DIR`` re-draws from them). Each gating step is a 2-D histogram of the
events its parent kept and of the events it kept, on axes named by marker and channel, on the
scale a cytometrist reads them (scatter linear, fluorescence and side scatter beside a marker on
an asinh scale with the gate's cofactor), with the step's limits as lines where the gate has
straight ones. A million-event tube is drawn from an evenly spaced subsample of <= 50,000
events; the counts in the titles come from the gate's own counts of every event.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .beads.calibrate import BeadCurve
from .channels import Panel
from .events import Events
from .gating.automated import cofactor
from .gating.monocyte_gate import MonocyteGate

__all__ = ["GRID", "SUBSAMPLE", "figure_data", "gating_steps", "template_steps", "abc_histogram", "histogram2d",
           "axis_label", "subsample_rows"]

GRID = 64  # bins per axis of each gating plot
SUBSAMPLE = 50_000  # at most this many events, evenly spaced, are binned


# --------------------------------------------------------------------------- axes
def axis_label(events: Events, channel: str, marker: str | None = None) -> str:
    """``CD14 PerCP-Cy5.5 (PerCP-Cy5.5-A)``: the marker ($PnS, else the panel role) and the channel."""
    k = events.index(channel)
    pns = (events.pns[k] or "").strip() if k < len(events.pns) else ""
    name = pns if pns and pns != channel else (marker or "")
    return f"{name} ({channel})" if name else channel


def _axis(events: Events, channel: str, scale: str, cof: float | None, marker: str | None, v: np.ndarray) -> dict:
    """An axis record: channel, label, scale (``linear`` or ``asinh`` with its cofactor) and the
    display range (0.5th to 99.9th percentile of the values shown, in display units)."""
    ok = v[np.isfinite(v)]
    lo, hi = (float(x) for x in np.percentile(ok, [0.5, 99.9])) if ok.size else (0.0, 1.0)
    if scale == "linear":
        lo = min(lo, 0.0)
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.03 * (hi - lo)
    return {"channel": channel, "label": axis_label(events, channel, marker), "scale": scale,
            "cofactor": cof, "range": [lo - pad, hi + pad]}


def _display(values: np.ndarray, scale: str, cof: float | None) -> np.ndarray:
    return np.arcsinh(values / cof) if scale == "asinh" else values.astype(np.float64)


def _to_display(v: float, scale: str, cof: float | None) -> float:
    return float(np.arcsinh(v / cof)) if scale == "asinh" else float(v)


def _scale_of(events: Events, panel: Panel, channel: str, other: str, cofactors: dict[str, float]) -> tuple:
    """Forward scatter linear; side scatter linear beside forward scatter, else asinh; markers asinh."""
    fsc = {panel.fsc_a, panel.fsc_h, panel.fsc_w} - {None}
    if channel in fsc or (channel == panel.ssc_a and other in fsc):
        return "linear", None
    return "asinh", cofactors.get(channel) or cofactor(events.upper_limit(channel))


def _marker_of(panel: Panel, channel: str) -> str | None:
    for role, marker in (("cd14", "CD14"), ("cd45", "CD45"), ("hladr", "HLA-DR")):
        if getattr(panel, role) == channel:
            return marker
    return None


# --------------------------------------------------------------------------- one step
def _step(events: Events, panel: Panel, rows: np.ndarray, name: str, title: str, parent_name: str,
          xch: str, ych: str, parent: np.ndarray, kept: np.ndarray | None, cofactors: dict[str, float],
          lines: Sequence[tuple[str, float, float, float, float]] = (), count_key: str | None = None) -> dict:
    """One gating plot (its grids as lists, so that results compare with ``==``): ``parent`` and ``kept``
    are masks over the subsample ``rows``; ``lines`` are
    segments in raw units ``(kind, x0, y0, x1, y1)`` (kind ``x``: vertical at x0, ``y``: horizontal
    at y0, ``seg``: a segment), turned into display units here."""
    xs, xcof = _scale_of(events, panel, xch, ych, cofactors)
    ys, ycof = _scale_of(events, panel, ych, xch, cofactors)
    x = _display(events.data[rows, events.index(xch)], xs, xcof)
    y = _display(events.data[rows, events.index(ych)], ys, ycof)
    xa = _axis(events, xch, xs, xcof, _marker_of(panel, xch), x[parent])
    ya = _axis(events, ych, ys, ycof, _marker_of(panel, ych), y[parent])
    density = histogram2d(x[parent], y[parent], GRID, xa["range"], ya["range"])
    out = {"name": name, "title": title, "parent": parent_name, "x": xa, "y": ya,
           "density": density.astype(np.int64).tolist(), "count_key": count_key or name}
    if kept is not None:
        out["kept"] = histogram2d(x[kept], y[kept], GRID, xa["range"], ya["range"]).astype(np.int64).tolist()
    segs = []
    for kind, x0, y0, x1, y1 in lines:
        if kind == "x" and np.isfinite(x0):
            segs.append(["x", _to_display(x0, xs, xcof)])
        elif kind == "y" and np.isfinite(y0):
            segs.append(["y", _to_display(y0, ys, ycof)])
        elif kind == "seg":
            segs.append(["seg", _to_display(x0, xs, xcof), _to_display(y0, ys, ycof),
                         _to_display(x1, xs, xcof), _to_display(y1, ys, ycof)])
    out["lines"] = segs
    return out


def subsample_rows(n: int) -> np.ndarray:
    """The rows a figure bins: evenly spaced, at most :data:`SUBSAMPLE` of ``n``."""
    return np.arange(0, n, max(1, -(-n // SUBSAMPLE)), dtype=np.intp)


def _in_rows(rows: np.ndarray, sub: np.ndarray) -> np.ndarray:
    """Mask over ``sub`` (sorted row numbers) of the rows listed in ``rows`` (sorted)."""
    if rows is None or rows.size == 0:
        return np.zeros(sub.size, dtype=bool)
    j = np.searchsorted(rows, sub)
    j[j >= rows.size] = rows.size - 1
    return rows[j] == sub


# --------------------------------------------------------------------------- the automated gate's steps
def gating_steps(events: Events, panel: Panel, gate: MonocyteGate | None, rows: np.ndarray | None) -> list[dict]:
    """The automated gate's four steps (cells, singlets, leukocytes, monocytes), or, without a
    gate (it failed), the same four views of all events: the reviewer sees what the tube was."""
    sub = subsample_rows(events.n_events)
    d = events.data
    cofs = dict(zip(gate.features, gate.cofactors, strict=True)) if gate else {}
    everything = np.ones(sub.size, dtype=bool)
    steps = []
    if not gate:
        views = [("cells", "FSC / SSC", panel.fsc_a, panel.ssc_a),
                 ("singlets", "singlets", panel.fsc_a, panel.fsc_h or panel.fsc_w),
                 ("leukocytes", "CD45 / SSC", panel.cd45, panel.ssc_a),
                 ("monocytes", "CD14 / SSC", panel.cd14, panel.ssc_a)]
        for name, title, xch, ych in views:
            if xch and ych:
                steps.append(_step(events, panel, sub, name, title, "all events", xch, ych, everything, None, cofs,
                                   count_key="events"))
        return steps
    with np.errstate(invalid="ignore", divide="ignore"):
        f = d[sub, events.index(panel.fsc_a)].astype(np.float64)
        s = d[sub, events.index(panel.ssc_a)].astype(np.float64)
        (flo, fhi), (slo, shi) = gate.fsc_range, gate.ssc_range
        cells = (f >= flo) & (f < fhi) & (s >= slo) & (s < shi)
        top_f = float(np.nanmax(f)) if f.size else 1.0
        top_s = float(np.nanmax(s)) if s.size else 1.0
        rect = [("seg", flo, max(slo, 0.0), flo, min(shi, top_s)), ("seg", fhi, max(slo, 0.0), fhi, min(shi, top_s)),
                ("seg", max(flo, 0.0), slo, min(fhi, top_f), slo), ("seg", max(flo, 0.0), shi, min(fhi, top_f), shi)]
        rect = [seg for seg in rect if all(np.isfinite(seg[1:]))]
        steps.append(_step(events, panel, sub, "cells", "cells", "all events", panel.fsc_a, panel.ssc_a,
                           everything, cells, cofs, rect))
        singlets = cells
        if gate.singlet_channel:
            m = d[sub, events.index(gate.singlet_channel)].astype(np.float64)
            lo, hi = gate.singlet_range
            if gate.singlet_is_ratio:
                ok = m > 0
                r = np.where(ok, f / np.where(ok, m, 1.0), np.nan)
                singlets = cells & (r >= lo) & (r < hi)
                # f / m in [lo, hi): the band between the lines m = f / lo and m = f / hi
                lines = [("seg", 0.0, 0.0, top_f, top_f / v) for v in (lo, hi) if np.isfinite(v) and v > 0]
            else:
                singlets = cells & (m >= lo) & (m < hi)
                lines = [("y", 0.0, v, 0.0, 0.0) for v in (lo, hi)]
            steps.append(_step(events, panel, sub, "singlets", "singlets", "cells", panel.fsc_a,
                               gate.singlet_channel, cells, singlets, cofs, lines))
        leuk = singlets
        if panel.cd45 and gate.cd45_min is not None:
            c = d[sub, events.index(panel.cd45)].astype(np.float64)
            leuk = singlets & (c >= gate.cd45_min)
            steps.append(_step(events, panel, sub, "leukocytes", "CD45+ leukocytes", "singlets", panel.cd45,
                               panel.ssc_a, singlets, leuk, cofs, [("x", gate.cd45_min, 0.0, 0.0, 0.0)]))
    mono = _in_rows(rows, sub) if rows is not None else np.zeros(sub.size, dtype=bool)
    steps.append(_step(events, panel, sub, "monocytes", "monocytes", steps[-1]["name"], panel.cd14, panel.ssc_a,
                       leuk, mono,
                       cofs))
    return steps


# --------------------------------------------------------------------------- a Gating-ML template's steps
def template_steps(events: Events, panel: Panel, path: Sequence[str], dims: Sequence[Sequence[str]],
                   masks: np.ndarray, sub: np.ndarray) -> list[dict]:
    """A template's path from its root gate to the monocytes, one plot per gate: the gate's own
    channels (a one-channel gate against SSC; a Boolean gate, or one on ratios, in CD14 / SSC or
    FSC / SSC). ``masks`` (gates x len(sub)) are the path's gates on the subsample ``sub``."""
    steps = []
    everything = np.ones(sub.size, dtype=bool)
    for k, gate_id in enumerate(path):
        chans = [c for c in dims[k] if c in events.pnn]
        last = k == len(path) - 1
        if len(chans) >= 2:
            xch, ych = chans[0], chans[1]
        elif len(chans) == 1:
            xch = chans[0]
            ych = panel.ssc_a if xch != panel.ssc_a else panel.fsc_a
        else:
            xch, ych = (panel.cd14, panel.ssc_a) if (last and panel.cd14) else (panel.fsc_a, panel.ssc_a)
        parent = masks[k - 1] if k else everything
        steps.append(_step(events, panel, sub, gate_id, gate_id, path[k - 1] if k else "all events", xch, ych,
                           parent, masks[k], {}))
    return steps


# --------------------------------------------------------------------------- the figure record
def figure_data(events: Events, panel: Panel, gate: MonocyteGate | None, rows: np.ndarray | None,
                *, template: dict | None = None) -> dict:
    """The report's figure record of one tube: ``steps`` (gating plots, see :func:`gating_steps`;
    ``template`` = ``{"path", "dims", "masks", "sub"}`` for a Gating-ML template's gates)."""
    if events.n_events < 10:
        return {}
    if template is not None:
        steps = template_steps(events, panel, template["path"], template["dims"], template["masks"],
                               template["sub"])
    else:
        steps = gating_steps(events, panel, gate, rows)
    return {"steps": steps, "manual": template is not None}


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
    counts, _ = np.histogram(np.log10(abc[abc > 0]), bins=60, range=(1.0, 6.0))
    return {"counts": counts.tolist(), "log10_edges": [1.0, 6.0]}
