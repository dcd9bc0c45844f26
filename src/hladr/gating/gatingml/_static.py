"""A template gate's static arrays: what the engine needs of a gate whatever the file.

``static_arrays(gate)`` returns, per dimension of the gate, its transform code and
parameter row, its limits (a rectangle's own; a polygon's or ellipsoid's bounding box),
the raw-scale reject and accept intervals that let the engine skip the transform for
most events (limits mapped back to raw values with a safety margin, checked with the
kernel's own transform), the ellipsoid's row of the inverse covariance; and, for a
polygon, its band table (which stretches of each band are surely inside, surely
outside, or near an edge). It is cached in memory per gate and, packed, in the
template cache (``_static_cache.py``); ``_compile.py`` adds what depends on the file.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from . import _kernels as K
from ._template import Dimension, TemplateGate, Transform
from ._transform_params import transform_params

__all__ = ["static_arrays", "Static"]

_XF_CODES = {"linear": K.XF_LINEAR, "log": K.XF_LOG, "asinh": K.XF_ASINH, "logicle": K.XF_LOGICLE,
             "hyperlog": K.XF_HYPERLOG}
_MARGIN = 1e-7  # raw-scale safety margin around a mapped-back limit, relative to |limit| + T
_INF = math.inf
Static = tuple[list[tuple], tuple | None]  # what static_arrays returns


def _inverse(xf: Transform, p: np.ndarray, y: float) -> float | None:
    """Raw value whose transform is ``y`` (None when it overflows)."""
    try:
        if xf.kind == "linear":
            return y * (xf.t + xf.a) - xf.a
        if xf.kind == "log":
            return xf.t * 10.0 ** ((y - 1.0) * xf.m)
        if xf.kind == "asinh":
            return math.sinh(y * p[2] - p[1]) / p[0]
        a, b, c, d, f, x1, x_taylor = (float(p[i]) for i in (0, 1, 2, 3, 4, 6, 7))
        taylor = p[16:32]
        negative = y < x1
        if negative:
            y = 2.0 * x1 - y
        if y < x_taylor:
            x = y - x1
            out = sum(float(taylor[i]) * x ** (i + 1) for i in range(16) if xf.kind == "hyperlog" or i != 1)
        elif xf.kind == "logicle":
            out = (a * math.exp(b * y) + f) - c / math.exp(d * y)
        else:
            out = (a * math.exp(b * y) + c * y) - f
        return -out if negative else out
    except (OverflowError, ValueError, ZeroDivisionError):
        return None


def _raw_bound(xf: Transform, p: np.ndarray, y: float, side: int) -> float:
    """A raw value beyond which (``side`` -1: below, +1: above) the transform is surely < or > ``y``.

    Verified with the kernel itself; when the check fails the bound is +-inf (no shortcut).
    """
    fallback = side * _INF
    x = _inverse(xf, p, y)
    if x is None or not math.isfinite(x):
        return fallback
    margin = _MARGIN * (abs(x) + xf.t)
    lo_hi = K.gml_transform(np.array([x - margin, x + margin]), _XF_CODES[xf.kind], p)
    return x + side * margin if lo_hi[0] < y < lo_hi[1] else fallback


@functools.lru_cache(maxsize=1024)
def static_arrays(g: TemplateGate) -> Static:
    """What does not depend on the events, per dimension of a gate (code, params, limits, shortcuts,
    ellipsoid row) and its band table; cached, as a polygon's table takes milliseconds to build."""
    gv = np.array(g.vertices, dtype=np.float64).reshape(-1, 2)
    box = _shape_box(g, gv)
    icov = np.linalg.inv(np.array(g.covariance)) if g.covariance else None
    out, params = [], []
    for d, dim in enumerate(g.dimensions):
        xf = dim.transform
        code = _XF_CODES[xf.kind] if xf else K.XF_NONE
        p = transform_params(code, *((xf.t, xf.w, xf.m, xf.a) if xf else (1.0, 0.0, 0.0, 0.0)))
        p.flags.writeable = False
        params.append(p)
        if g.kind == "rectangle":
            lim = (dim.min or 0.0, dim.max or 0.0)
            flags = (dim.min is not None) + 2 * (dim.max is not None)
        else:
            lim, flags = ((box[d, 0], box[d, 1]) if box is not None else (-_INF, _INF)), 0
        rej, acc = _prefilter(g.kind, dim, p, box[d] if box is not None else None)
        out.append((code, p, lim, flags, rej, acc, g.mean[d] if g.mean else 0.0,
                    tuple(icov[d]) if icov is not None else ()))
    table = _polygon_bands(gv, g.dimensions, params) if g.kind == "polygon" else None
    return out, table



def _shape_box(g: TemplateGate, verts: np.ndarray) -> np.ndarray | None:
    """(nd, 2) bounding box of a polygon or ellipsoid on the transformed scale, or None."""
    if g.kind == "polygon":
        return np.stack([verts.min(axis=0), verts.max(axis=0)], axis=1)
    if g.kind == "ellipsoid":
        mean = np.array(g.mean)
        icov = np.linalg.inv(np.array(g.covariance))
        q = (icov + icov.T) / 2.0  # the quadratic form only sees the symmetric part
        if np.all(np.linalg.eigvalsh(q) > 0) and g.distance_square >= 0:
            half = np.sqrt(g.distance_square * np.diag(np.linalg.inv(q)))
            half = half * (1 + 1e-6) + 1e-6 * np.abs(mean) + 1e-300
            return np.stack([mean - half, mean + half], axis=1)
    return None


def _prefilter(kind: str, dim: Dimension, p: np.ndarray, box) -> tuple[tuple, tuple]:
    """Raw-scale (reject, accept) intervals of one dimension (see ``gml_evaluate``)."""
    xf = dim.transform
    if kind == "rectangle":
        if xf is None:  # the exact test is as cheap as a shortcut
            return (-_INF, _INF), (_INF, -_INF)
        rej_lo = _raw_bound(xf, p, dim.min, -1) if dim.min is not None else -_INF
        rej_hi = _raw_bound(xf, p, dim.max, +1) if dim.max is not None else _INF
        acc_lo = _raw_bound(xf, p, dim.min, +1) if dim.min is not None else -_INF
        acc_hi = _raw_bound(xf, p, dim.max, -1) if dim.max is not None else _INF
        return (rej_lo, rej_hi), (acc_lo, acc_hi)
    if box is None:
        return (-_INF, _INF), (_INF, -_INF)
    if xf is None:
        return (float(box[0]), float(box[1])), (_INF, -_INF)
    return (_raw_bound(xf, p, float(box[0]), -1), _raw_bound(xf, p, float(box[1]), +1)), (_INF, -_INF)


def _merge(lo: np.ndarray, hi: np.ndarray) -> list[tuple[float, float]]:
    """Intervals ``[lo, hi]`` sorted and the overlapping ones merged (vectorised: a polygon may have 10,000 edges)."""
    if lo.size == 0:
        return []
    order = np.lexsort((hi, lo))
    lo, hi = lo[order], hi[order]
    reach = np.maximum.accumulate(hi)
    first = np.flatnonzero(np.r_[True, lo[1:] > reach[:-1]])
    return list(zip(lo[first].tolist(), np.maximum.reduceat(hi, first).tolist(), strict=True))


def _inside(px: Sequence[float], py: Sequence[float], verts: np.ndarray) -> list[bool]:
    """``_kernels._polygon_ref`` for a few points, vectorised over the edges instead of the points."""
    ax, ay = verts[:, 0], verts[:, 1]
    bx, by = np.roll(ax, -1), np.roll(ay, -1)
    box = (ax.min(), ax.max(), ay.min(), ay.max())
    out = []
    for x, y in zip(px, py, strict=True):
        is_left = (bx - ax) * (y - ay) - (x - ax) * (by - ay)
        wind = int(np.sum((ay <= y) & (y < by) & (is_left > 0))) - int(np.sum(~(ay <= y) & (by <= y) & (is_left < 0)))
        out.append(bool(box[0] <= x <= box[1] and box[2] <= y <= box[3] and wind % 2 != 0))
    return out


def _polygon_bands(verts: np.ndarray, dims: Sequence[Dimension], params: Sequence[np.ndarray]):
    """Band table of a polygon (see ``gml_evaluate``), or None when it cannot be built.

    The polygon's bounding box is cut into ``BANDS`` bands along one axis (an
    untransformed one if there is one, so that the band is found by arithmetic).
    In each band (slightly enlarged), the stretch of every polygon edge crossing
    it, slightly enlarged too, is an edge zone; between zones no edge crosses the
    band, so the winding number is the same throughout a gap and the gap's centre
    decides whether it is inside. Band edges and zone limits are mapped to raw
    values with the safety margins of ``_raw_bound`` (band edges are mapped back
    and forward again with the kernel's own transform), so a raw value that the
    table places in a gap transforms into that gap. A band with more than
    ``MAX_ZONES`` zones is all edge (its events get the exact test); the work per
    band is vectorised over the edges and stops at that point, so a polygon of
    10,000 vertices compiles in well under a second.
    """
    nb, mz = K.BANDS, K.MAX_ZONES
    axis = 1 if dims[1].transform is None or dims[0].transform is not None else 0
    other = 1 - axis
    lo, hi = float(verts[:, axis].min()), float(verts[:, axis].max())
    if not hi - lo > 1e-9 * max(abs(lo), abs(hi)):
        return None
    edges = np.linspace(lo, hi, nb + 1)
    xf_b = dims[axis].transform
    if xf_b is None:
        raw_edges, scaled, info = edges, edges, (axis, lo, nb / (hi - lo))
    else:
        back = [_inverse(xf_b, params[axis], float(y)) for y in edges]
        if any(x is None or not math.isfinite(x) for x in back):
            return None
        raw_edges = np.array(back)
        scaled = K.gml_transform(raw_edges, _XF_CODES[xf_b.kind], params[axis])
        if not (np.all(np.diff(raw_edges) > 0) and np.all(np.diff(scaled) > 0)):
            return None
        info = (axis, 0.0, 0.0)
    pad_u = 1e-6 * np.diff(scaled) + 1e-12 * np.abs(scaled).max()
    u_lo, u_hi = scaled[:-1] - pad_u, scaled[1:] + pad_u
    w, u = verts[:, other], verts[:, axis]
    pad_w = 1e-7 * (w.max() - w.min()) + 1e-12 * np.abs(w).max()
    wb, ub = np.roll(w, -1), np.roll(u, -1)
    u_min, u_max, flat = np.minimum(u, ub), np.maximum(u, ub), u == ub
    du = np.where(flat, 1.0, ub - u)
    xf_o = dims[other].transform
    zone = np.full((nb, 2 * mz), _INF)
    cls = np.full((nb, 2 * mz + 1), K.CELL_EDGE, dtype=np.uint8)
    for b in range(nb):
        e = np.flatnonzero(~((u_max < u_lo[b]) | (u_min > u_hi[b])))  # the edges crossing the band
        ta, tb = (u_lo[b] - u[e]) / du[e], (u_hi[b] - u[e]) / du[e]
        t0 = np.where(flat[e], 0.0, np.clip(np.minimum(ta, tb), 0.0, 1.0))
        t1 = np.where(flat[e], 1.0, np.clip(np.maximum(ta, tb), 0.0, 1.0))
        w0, w1 = w[e] + t0 * (wb[e] - w[e]), w[e] + t1 * (wb[e] - w[e])
        zones = _merge(np.minimum(w0, w1) - pad_w, np.maximum(w0, w1) + pad_w)
        raw_zones, gaps = [], []  # gaps: index in ``zones`` of the zone after each surviving gap
        for z, (zl, zr) in enumerate(zones):
            if xf_o is not None:
                zl, zr = _raw_bound(xf_o, params[other], zl, -1), _raw_bound(xf_o, params[other], zr, +1)
            if raw_zones and zl <= raw_zones[-1][1]:  # the gap between them vanished on the raw scale
                raw_zones[-1] = (raw_zones[-1][0], max(raw_zones[-1][1], zr))
                continue
            if len(raw_zones) == mz:
                break  # too many zones: the band stays all edge
            if raw_zones:
                gaps.append(z)
            raw_zones.append((zl, zr))
        else:
            mids = [(zones[z - 1][1] + zones[z][0]) / 2.0 for z in gaps]
            u_mid = [(scaled[b] + scaled[b + 1]) / 2.0] * len(mids)
            inside = _inside(*((mids, u_mid) if axis == 1 else (u_mid, mids)), verts) if mids else []
            zone[b, :2 * len(raw_zones)] = np.ravel(raw_zones)
            inner = [K.CELL_IN if f else K.CELL_OUT for f in inside] + [K.CELL_OUT] if raw_zones else []
            cls[b, 0:2 * len(raw_zones) + 1:2] = [K.CELL_OUT] + inner
            continue
        zone[b, :2] = (-_INF, _INF)  # one zone over everything: the band's events get the exact test
        cls[b, 0:3:2] = K.CELL_OUT
    return raw_edges, np.array(info, dtype=np.float64), zone, cls
