"""Gating-ML 2.0 engine: scale transforms and gate evaluation (Numba, ``cache=True``), with pure-NumPy twins.

``gml_evaluate`` runs a Gating-ML 2.0 template, compiled by ``_compile.py`` into
the primitive arrays below, over the events; ``gml_transform`` is its scale
transforms on their own. A transform's parameter row (the slots ``_P_*`` below) is
computed once per transform by :func:`._transform_params.transform_params`. Values
are read from the float32 matrix and cast to float64 one by one, so all gate
arithmetic runs in double precision, as in the Gating-ML reference implementations,
without a float64 copy of the matrix.
The private ``_*`` kernels are parts of ``gml_evaluate`` (one per gate shape,
each a tight loop over a block of events) and are tested through its twin.
Logicle and hyperlog are written here, operation by operation as in the C code
of FlowKit's flowutils (Moore & Parks 2012), and agree with it bit for bit.

A dimension's value is ``sum(data[k, term_col[t]] * term_w[t])`` over its terms
(one term of weight 1 when uncompensated; a column of the inverse spillover
matrix when compensated), optionally a ratio of two such values
``A * ((x - B) / (y - C))``, then optionally a scale transform.

Kernels take only primitive arrays and scalars. Each public ``name`` has a
``name_ref`` written with NumPy for clarity; the tests check that both agree,
including on empty, NaN, negative and saturated input. The callers are
``engine.py``, ``_compile.py`` and ``_static.py``; ``_static_cache.py`` hashes
this file into the digest of its cache of static arrays. The per-event kernels of
the automated gate live in :mod:`hladr.gating._kernels`, so that module and this
one can change (and their Numba caches be rebuilt) independently.

Why one file of ~670 lines (the project aims at ~400): ``gml_evaluate`` calls the
kernel of every gate shape, and those call the transforms; Numba's cache is
checked against the file of the function it holds only, so a kernel that called a
kernel of another file would keep its old compiled code (and the old values of
that file's constants, such as the slots of a transform's parameter row) after
that other file changed. The kernels therefore share this file, and each NumPy
twin stays beside its kernel.

Conventions
-----------
- Masks are ``bool`` arrays; a NaN value never passes a gate.
- Ranges are half-open where Gating-ML says so: ``lo <= x < hi``.
"""

from __future__ import annotations

import numpy as np

from ..._jit import njit

__all__ = [
    "XF_NONE", "XF_LINEAR", "XF_LOG", "XF_ASINH", "XF_LOGICLE", "XF_HYPERLOG", "XF_PARAMS",
    "BOOL_AND", "BOOL_OR", "BOOL_NOT",
    "gml_transform", "gml_transform_ref",
    "KIND_RECT", "KIND_POLYGON", "KIND_ELLIPSOID", "KIND_BOOLEAN",
    "BANDS", "MAX_ZONES", "CELL_OUT", "CELL_IN", "CELL_EDGE",
    "gml_evaluate", "gml_evaluate_ref",
]


XF_NONE, XF_LINEAR, XF_LOG, XF_ASINH, XF_LOGICLE, XF_HYPERLOG = 0, 1, 2, 3, 4, 5
KIND_RECT, KIND_POLYGON, KIND_ELLIPSOID, KIND_BOOLEAN = 0, 1, 2, 3
BANDS = 256  # bands of a polygon's lookup table
MAX_ZONES = 4  # edge zones per band (a band with more is all edge)
CELL_OUT, CELL_IN, CELL_EDGE = 0, 1, 2
BOOL_AND, BOOL_OR, BOOL_NOT = 0, 1, 2
XF_PARAMS = 32  # length of one transform parameter row
_LIM_LO, _LIM_HI = 1, 2  # bits of ``lim_flags``: the dimension has a min / a max
# slots of a parameter row: logicle / hyperlog constants (Moore & Parks 2012), the
# Taylor series around x1 at _P_TAYLOR; linear uses (T, A), log (T, M), asinh
# (pre-scale, transpose, divisor).
_P_A, _P_B, _P_C, _P_D, _P_F, _P_W, _P_X1, _P_XT, _P_INV = 0, 1, 2, 3, 4, 5, 6, 7, 8
_P_T, _P_M, _P_AA = 9, 10, 11
_P_TAYLOR, _N_TAYLOR = 16, 16
_DBL_EPS = 2.220446049250313e-16


@njit(cache=True, nogil=True, error_model="numpy")
def _logicle_scalar(P, r, value):  # pragma: no cover - compiled
    """Logicle scale of one value: Halley's method on the biexponential (Moore & Parks 2012)."""
    if value != value:
        return np.nan
    if value == 0.0:
        return P[r, _P_X1]
    if np.isinf(value):
        return value
    negative = value < 0.0
    if negative:
        value = -value
    a, b, c, d, f = P[r, _P_A], P[r, _P_B], P[r, _P_C], P[r, _P_D], P[r, _P_F]
    x1 = P[r, _P_X1]
    x_taylor = P[r, _P_XT]
    if value < f:
        x = x1 + value / P[r, _P_TAYLOR]
    else:
        x = np.log(value / a) / b
    tolerance = 3.0 * _DBL_EPS
    if x > 1.0:
        tolerance = 3.0 * x * _DBL_EPS
    for _ in range(40):
        ae2bx = a * np.exp(b * x)
        ce2mdx = c / np.exp(d * x)
        if x < x_taylor:
            xx = x - x1
            s = P[r, _P_TAYLOR + _N_TAYLOR - 1] * xx
            for i in range(_N_TAYLOR - 2, 1, -1):
                s = (s + P[r, _P_TAYLOR + i]) * xx
            y = (s * xx + P[r, _P_TAYLOR]) * xx - value
        else:
            y = (ae2bx + f) - (ce2mdx + value)
        abe2bx = b * ae2bx
        cde2mdx = d * ce2mdx
        dy = abe2bx + cde2mdx
        ddy = b * abe2bx - d * cde2mdx
        delta = y / (dy * (1.0 - y * ddy / (2.0 * dy * dy)))
        x -= delta
        if abs(delta) < tolerance:
            return 2.0 * x1 - x if negative else x
    return np.nan


@njit(cache=True, nogil=True, error_model="numpy")
def _hyperlog_scale_scalar(P, r, value):  # pragma: no cover - compiled
    """Hyperlog scale of one value: Halley's method on ``a e^(by) + c y - f`` (Bagwell 2005)."""
    if value != value:
        return np.nan
    if value == 0.0:
        return P[r, _P_X1]
    if np.isinf(value):
        return value
    negative = value < 0.0
    if negative:
        value = -value
    a, b, c, f = P[r, _P_A], P[r, _P_B], P[r, _P_C], P[r, _P_F]
    x1 = P[r, _P_X1]
    x_taylor = P[r, _P_XT]
    inverse = P[r, _P_INV]
    if value < inverse:
        x = x1 + value * P[r, _P_W] / inverse
    else:
        x = np.log(value / a) / b
    tolerance = 3.0 * _DBL_EPS
    for _ in range(10):
        ae2bx = a * np.exp(b * x)
        if x < x_taylor:
            xx = x - x1
            s = P[r, _P_TAYLOR + _N_TAYLOR - 1] * xx
            for i in range(_N_TAYLOR - 2, -1, -1):
                s = (s + P[r, _P_TAYLOR + i]) * xx
            y = s - value
        else:
            y = (ae2bx + c * x) - (f + value)
        abe2bx = b * ae2bx
        dy = abe2bx + c
        ddy = b * abe2bx
        delta = y / (dy * (1.0 - y * ddy / (2.0 * dy * dy)))
        x -= delta
        if abs(delta) < tolerance:
            return 2.0 * x1 - x if negative else x
    return np.nan


@njit(cache=True, nogil=True, error_model="numpy")
def _transform_scalar(kind, P, r, v):  # pragma: no cover - compiled
    """Scale transform ``kind`` with parameter row ``P[r]`` of one float64 value."""
    if kind == XF_LINEAR:
        return (v + P[r, _P_AA]) / (P[r, _P_T] + P[r, _P_AA])
    if kind == XF_LOG:
        return (1.0 / P[r, _P_M]) * np.log10(v / P[r, _P_T]) + 1.0
    if kind == XF_ASINH:
        return (np.arcsinh(v * P[r, 0]) + P[r, 1]) / P[r, 2]
    if kind == XF_LOGICLE:
        return _logicle_scalar(P, r, v)
    if kind == XF_HYPERLOG:
        return _hyperlog_scale_scalar(P, r, v)
    return v


@njit(cache=True, nogil=True, error_model="numpy")
def gml_transform(x, kind, params):  # pragma: no cover - compiled
    """Scale transform ``kind`` (``XF_*``) with ``params`` (a row of ``transform_params``) of each value.

    NaN stays NaN and +-inf stays +-inf (the reference C code returns -1 there);
    otherwise the result is that of FlowKit's flowutils, operation by operation.
    """
    P = params.reshape((1, params.shape[0]))
    out = np.empty(x.shape[0], dtype=np.float64)
    for k in range(x.shape[0]):
        out[k] = _transform_scalar(kind, P, 0, np.float64(x[k]))
    return out


def gml_transform_ref(x, kind, params):
    """NumPy twin of :func:`gml_transform`."""
    v = np.asarray(x, dtype=np.float64)
    p = params
    with np.errstate(all="ignore"):
        if kind == XF_LINEAR:
            return (v + p[_P_AA]) / (p[_P_T] + p[_P_AA])
        if kind == XF_LOG:
            return (1.0 / p[_P_M]) * np.log10(v / p[_P_T]) + 1.0
        if kind == XF_ASINH:
            return (np.arcsinh(v * p[0]) + p[1]) / p[2]
        if kind in (XF_LOGICLE, XF_HYPERLOG):
            return _halley_ref(v, p, kind)
        return v.copy()


def _halley_ref(value, p, kind):
    """Vectorised twin of the logicle / hyperlog root search (each element iterates until it converges)."""
    a, b, c, d, f = p[_P_A], p[_P_B], p[_P_C], p[_P_D], p[_P_F]
    x1, x_taylor = p[_P_X1], p[_P_XT]
    taylor = p[_P_TAYLOR:_P_TAYLOR + _N_TAYLOR]
    out = np.full(value.shape, np.nan)
    finite = np.isfinite(value)
    out[~finite] = value[~finite]  # NaN -> NaN, +-inf -> +-inf
    out[value == 0.0] = x1
    todo = np.flatnonzero(finite & (value != 0.0))
    negative = value[todo] < 0.0
    v = np.abs(value[todo])
    if kind == XF_LOGICLE:
        x = np.where(v < f, x1 + v / taylor[0], np.log(v / a) / b)
        tol = np.where(x > 1.0, 3.0 * x * _DBL_EPS, 3.0 * _DBL_EPS)
        n_iter = 40
    else:
        inverse = p[_P_INV]
        x = np.where(v < inverse, x1 + v * p[_P_W] / inverse, np.log(v / a) / b)
        tol = np.full(x.shape, 3.0 * _DBL_EPS)
        n_iter = 10
    for _ in range(n_iter):
        if todo.size == 0:
            break
        xx = x - x1
        ae2bx = a * np.exp(b * x)
        if kind == XF_LOGICLE:
            ce2mdx = c / np.exp(d * x)
            s = taylor[-1] * xx
            for i in range(_N_TAYLOR - 2, 1, -1):
                s = (s + taylor[i]) * xx
            y = np.where(x < x_taylor, (s * xx + taylor[0]) * xx - v, (ae2bx + f) - (ce2mdx + v))
            abe2bx = b * ae2bx
            cde2mdx = d * ce2mdx
            dy = abe2bx + cde2mdx
            ddy = b * abe2bx - d * cde2mdx
        else:
            s = taylor[-1] * xx
            for i in range(_N_TAYLOR - 2, -1, -1):
                s = (s + taylor[i]) * xx
            y = np.where(x < x_taylor, s - v, (ae2bx + c * x) - (f + v))
            abe2bx = b * ae2bx
            dy = abe2bx + c
            ddy = b * abe2bx
        delta = y / (dy * (1.0 - y * ddy / (2.0 * dy * dy)))
        x = x - delta
        done = np.abs(delta) < tol
        out[todo[done]] = np.where(negative[done], 2.0 * x1 - x[done], x[done])
        keep = ~done
        todo, negative, v, x, tol = todo[keep], negative[keep], v[keep], x[keep], tol[keep]
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def _term_sum(data, src, ns, t0, t1, term_col, term_w, out):  # pragma: no cover - compiled
    """``out[i] = sum_t data[src[i], term_col[t]] * term_w[t]``, adding the terms in order.

    Four terms per pass over the events: fewer loads and stores than one term per
    pass, and shorter chains of dependent additions than all terms per event.
    """
    for i in range(ns):
        out[i] = 0.0
    t = t0
    while t + 4 <= t1:
        c0, c1, c2, c3 = term_col[t], term_col[t + 1], term_col[t + 2], term_col[t + 3]
        w0, w1, w2, w3 = term_w[t], term_w[t + 1], term_w[t + 2], term_w[t + 3]
        for i in range(ns):
            k = src[i]
            v = out[i]
            v += np.float64(data[k, c0]) * w0
            v += np.float64(data[k, c1]) * w1
            v += np.float64(data[k, c2]) * w2
            v += np.float64(data[k, c3]) * w3
            out[i] = v
        t += 4
    while t < t1:
        c, w = term_col[t], term_w[t]
        for i in range(ns):
            out[i] += np.float64(data[src[i], c]) * w
        t += 1


@njit(cache=True, nogil=True, error_model="numpy")
def _raw_values(
    data, src, ns, d, term_ptr, term_col, term_w, is_ratio, ratio_abc, out, scratch,
):  # pragma: no cover - compiled
    """Value of dimension ``d`` (compensated, ratio; before its transform) of the events ``src[:ns]``."""
    _term_sum(data, src, ns, term_ptr[2 * d], term_ptr[2 * d + 1], term_col, term_w, out)
    if is_ratio[d]:
        _term_sum(data, src, ns, term_ptr[2 * d + 1], term_ptr[2 * d + 2], term_col, term_w, scratch)
        a, b, c = ratio_abc[d, 0], ratio_abc[d, 1], ratio_abc[d, 2]
        for i in range(ns):
            out[i] = a * ((out[i] - b) / (scratch[i] - c))


@njit(cache=True, nogil=True, error_model="numpy")
def _plain_prefilter(data, src, ns, d0, d1, scol, rej, out):  # pragma: no cover - compiled
    """Events of ``src[:ns]`` whose plain-column dimensions are inside their ``rej`` bounds."""
    n_out = 0
    for i in range(ns):
        k = src[i]
        keep = True
        for d in range(d0, d1):
            c = scol[d]
            if c >= 0:
                v = np.float64(data[k, c])
                keep &= not ((v < rej[d, 0]) | (v > rej[d, 1]))  # no branch on the data
        out[n_out] = k
        n_out += keep
    return n_out


@njit(cache=True, nogil=True, error_model="numpy")
def _rect_block(
    data, src, ns, raw, scol, d0, d1, xf_kind, xf_par, lim, lim_flags, rej, acc, out,
):  # pragma: no cover - compiled
    """Events of ``src[:ns]`` inside a rectangle (dimension values: column ``scol[d]``, else ``raw[d - d0]``)."""
    n_out = 0
    for i in range(ns):
        ok = True
        for d in range(d0, d1):
            v = np.float64(data[src[i], scol[d]]) if scol[d] >= 0 else raw[d - d0, i]
            if v < rej[d, 0] or v > rej[d, 1]:
                ok = False
                break
            if xf_kind[d] != XF_NONE:
                if v >= acc[d, 0] and v <= acc[d, 1]:
                    continue
                v = _transform_scalar(xf_kind[d], xf_par, d, v)
            if (lim_flags[d] & _LIM_LO and not v >= lim[d, 0]) or (lim_flags[d] & _LIM_HI and not v < lim[d, 1]):
                ok = False
                break
        if ok:
            out[n_out] = src[i]
            n_out += 1
    return n_out


@njit(cache=True, nogil=True, error_model="numpy")
def _polygon_exact(x, y, kx, ky, xf_par, d0, lim, verts, v0, v1):  # pragma: no cover - compiled
    """Exact polygon test of raw values: transform, bounding box, odd winding number (flowutils conventions)."""
    if kx != XF_NONE:
        x = _transform_scalar(kx, xf_par, d0, x)
    if ky != XF_NONE:
        y = _transform_scalar(ky, xf_par, d0 + 1, y)
    if x < lim[d0, 0] or x > lim[d0, 1] or y < lim[d0 + 1, 0] or y > lim[d0 + 1, 1]:
        return False  # the polygon's bounding box, as flowutils tests it first
    nv = v1 - v0
    wind = 0
    for e in range(nv):
        ax, ay = verts[v0 + e, 0], verts[v0 + e, 1]
        f = v0 + e + 1 if e < nv - 1 else v0
        bx, by = verts[f, 0], verts[f, 1]
        if ay <= y:
            if y < by and (bx - ax) * (y - ay) - (x - ax) * (by - ay) > 0:
                wind += 1
        elif by <= y and (bx - ax) * (y - ay) - (x - ax) * (by - ay) < 0:
            wind -= 1
    return wind % 2 != 0


@njit(cache=True, nogil=True, error_model="numpy")
def _polygon_block(
    data, src, ns, raw, scol, d0, xf_kind, xf_par, lim, rej, verts, v0, v1,
    tab, band_edges, band_info, band_zone, band_cls, out,
):  # pragma: no cover - compiled
    """Events of ``src[:ns]`` inside a polygon.

    With a band table (``tab >= 0``), the event's band along axis
    ``band_info[tab, 0]`` and its raw value on the other axis decide it, unless
    that falls in a zone where an edge of the polygon crosses the band: only then
    are its values transformed and its winding number computed.
    """
    n_out = 0
    kx, ky = xf_kind[d0], xf_kind[d0 + 1]
    t = max(tab, 0)
    axis = int(band_info[t, 0])
    u0, us = band_info[t, 1], band_info[t, 2]
    e_lo, e_hi = band_edges[t, 0], band_edges[t, BANDS]
    cx, cy = scol[d0], scol[d0 + 1]
    rx, ry = raw[0], raw[1]
    x_lo, x_hi, y_lo, y_hi = rej[d0, 0], rej[d0, 1], rej[d0 + 1, 0], rej[d0 + 1, 1]
    for i in range(ns):
        k = src[i]
        x = np.float64(data[k, cx]) if cx >= 0 else rx[i]
        if x < x_lo or x > x_hi:
            continue
        y = np.float64(data[k, cy]) if cy >= 0 else ry[i]
        if tab >= 0:
            vb, vo = (y, x) if axis == 1 else (x, y)  # along the band axis, and the other one
            if vb >= e_lo and vb <= e_hi:
                if us > 0.0:  # uniform band edges: (first edge, bands per unit)
                    b = min(int((vb - u0) * us), BANDS - 1)
                else:
                    b, hi = 0, BANDS
                    while hi - b > 1:
                        mid = (b + hi) >> 1
                        if band_edges[t, mid] <= vb:
                            b = mid
                        else:
                            hi = mid
                if band_zone[t, b, 4] == np.inf and vo > band_zone[t, b, 1] and vo < band_zone[t, b, 2]:
                    cls = band_cls[t, b, 2]  # between the two edge zones of a convex band: the common case
                else:
                    # gaps and zones alternate along the band; unused zones are (inf, inf); NaN lands in gap 0
                    pos = 0
                    for z in range(MAX_ZONES):
                        pos += np.int64(vo >= band_zone[t, b, 2 * z]) + np.int64(vo > band_zone[t, b, 2 * z + 1])
                    cls = band_cls[t, b, pos]
                if cls != CELL_EDGE:
                    out[n_out] = k
                    n_out += cls  # CELL_IN is 1, CELL_OUT 0
                    continue
        if y < y_lo or y > y_hi:
            continue
        if _polygon_exact(x, y, kx, ky, xf_par, d0, lim, verts, v0, v1):
            out[n_out] = k
            n_out += 1
    return n_out


@njit(cache=True, nogil=True, error_model="numpy")
def _ellipsoid_block(
    data, src, ns, raw, scol, d0, d1, xf_kind, xf_par, rej, ell_mean, ell_icov, d2max, vals, out,
):  # pragma: no cover - compiled
    """Events of ``src[:ns]`` inside an ellipsoid: ``(v - mean) icov (v - mean)' <= d2max``."""
    n_out = 0
    nd = d1 - d0
    for i in range(ns):
        ok = True
        for d in range(d0, d1):
            v = np.float64(data[src[i], scol[d]]) if scol[d] >= 0 else raw[d - d0, i]
            if v < rej[d, 0] or v > rej[d, 1]:
                ok = False
                break
            vals[d - d0] = _transform_scalar(xf_kind[d], xf_par, d, v) if xf_kind[d] != XF_NONE else v
        if not ok:
            continue
        q = 0.0
        for j in range(nd):
            r = 0.0
            for a in range(nd):
                r += (vals[a] - ell_mean[d0 + a]) * ell_icov[d0 + a, j]
            q += r * (vals[j] - ell_mean[d0 + j])
        if q <= d2max:
            out[n_out] = src[i]
            n_out += 1
    return n_out


@njit(cache=True, nogil=True)
def _boolean_block(src, ns, start, member, r0, r1, ref_gate, ref_comp, op, out):  # pragma: no cover - compiled
    """Events of ``src[:ns]`` passing a Boolean gate; ``member[g, k - start]`` holds gate g's results."""
    n_out = 0
    for i in range(ns):
        k = src[i] - start
        if op == BOOL_NOT:
            ok = member[ref_gate[r0], k] == ref_comp[r0]
        elif op == BOOL_AND:
            ok = True
            for r in range(r0, r1):
                if member[ref_gate[r], k] == ref_comp[r]:
                    ok = False
                    break
        else:
            ok = False
            for r in range(r0, r1):
                if member[ref_gate[r], k] != ref_comp[r]:
                    ok = True
                    break
        if ok:
            out[n_out] = src[i]
            n_out += 1
    return n_out


_BLOCK = 4096  # events per block: the rows of a block stay in cache while every gate runs on them


@njit(cache=True, nogil=True, error_model="numpy")
def gml_evaluate(
    data,
    g_kind, g_parent, g_dim_ptr, g_vert_ptr, g_table, g_ref_ptr, g_op, g_d2,
    term_ptr, term_col, term_w, is_ratio, ratio_abc, scol, xf_kind, xf_par, lim, lim_flags, rej, acc,
    verts, band_edges, band_info, band_zone, band_cls, ell_mean, ell_icov, ref_gate, ref_comp,
    out_row, n_out, target,
):  # pragma: no cover - compiled; tested against gml_evaluate_ref
    """Evaluate a compiled Gating-ML template on every event.

    Gates are in dependency order. Gate ``g`` is tested only on the events its
    parent ``g_parent[g]`` (-1: none) kept; Boolean gates combine the results of
    their operands ``ref_gate[g_ref_ptr[g]:g_ref_ptr[g+1]]`` (complemented where
    ``ref_comp``) with ``g_op`` (``BOOL_*``). Events are processed in blocks of
    ``_BLOCK`` rows, gate after gate, so each gate runs a tight loop over its
    parent's events while their rows are in cache.

    Dimension ``d`` (gate ``g`` has ``g_dim_ptr[g]:g_dim_ptr[g+1]``) is the sum of
    its terms ``term_ptr[2d]:term_ptr[2d+1]`` (the numerator of a ratio; its
    denominator follows; ``scol[d] >= 0`` when that is just column ``scol[d]``),
    then the transform ``xf_kind[d]``. Rectangles keep
    ``lim[d, 0] <= v < lim[d, 1]`` where ``lim_flags[d]`` has bit 1 / bit 2;
    polygons (``verts[g_vert_ptr[g]:g_vert_ptr[g+1]]``, bounding box in ``lim``)
    an odd winding number; ellipsoids ``(v - mean) icov (v - mean)' <= g_d2[g]``.

    Shortcuts that never change a result: a raw value outside ``rej[d]`` fails,
    one inside ``acc[d]`` passes a rectangle dimension without being transformed
    (the transforms are monotonic, and the caller sets these bounds a margin away
    from the mapped-back limits); a polygon with a band table ``g_table[g] >= 0``
    is decided from raw values unless the event lies near one of its edges: along
    one axis the table has ``BANDS`` bands (raw edges ``band_edges``; ``band_info``
    = (axis, first edge, bands per unit or 0)); in each band, up to ``MAX_ZONES``
    zones ``band_zone[t, b, 2z:2z+2]`` (raw lo, hi on the other axis; unused ones
    are (inf, inf)) where an edge crosses the band;
    ``band_cls[t, b, j]`` is the class of the j-th stretch of the band (even j:
    the gaps, ``CELL_IN`` or ``CELL_OUT``; odd j: the zones, ``CELL_EDGE``).

    Returns ``(masks, counts, selected)``: ``masks[out_row[g]]`` the membership of
    each gate with ``out_row[g] >= 0``, ``counts`` the events kept by every gate,
    ``selected`` the indices of the events in gate ``target`` (-1: none).
    """
    n = data.shape[0]
    n_gates = g_kind.shape[0]
    masks = np.zeros((n_out, n), dtype=np.bool_)
    counts = np.zeros(n_gates, dtype=np.int64)
    selected = np.empty(n if target >= 0 else 0, dtype=np.int64)
    n_sel = 0
    max_dims = 1
    is_ref = np.zeros(n_gates, dtype=np.bool_)
    for g in range(n_gates):
        max_dims = max(max_dims, g_dim_ptr[g + 1] - g_dim_ptr[g])
    for r in range(ref_gate.shape[0]):
        is_ref[ref_gate[r]] = True
    block = min(_BLOCK, max(n, 1))
    sel = np.empty((n_gates, block), dtype=np.int64)
    n_in = np.zeros(n_gates, dtype=np.int64)
    member = np.zeros((n_gates, block), dtype=np.bool_)
    raw = np.empty((max_dims, block), dtype=np.float64)
    scratch = np.empty(block, dtype=np.float64)
    pre = np.empty(block, dtype=np.int64)
    vals = np.empty(max_dims, dtype=np.float64)
    rows = np.empty(block, dtype=np.int64)
    for start in range(0, n, block):
        m = min(block, n - start)
        for i in range(m):
            rows[i] = start + i
        for g in range(n_gates):
            p = g_parent[g]
            src = rows if p < 0 else sel[p]
            ns = m if p < 0 else n_in[p]
            out = sel[g]
            kind = g_kind[g]
            d0, d1 = g_dim_ptr[g], g_dim_ptr[g + 1]
            if kind == KIND_BOOLEAN:
                cnt = _boolean_block(src, ns, start, member, g_ref_ptr[g], g_ref_ptr[g + 1], ref_gate, ref_comp,
                                     g_op[g], out)
            else:
                n_plain = 0
                for d in range(d0, d1):
                    n_plain += scol[d] >= 0
                if 0 < n_plain < d1 - d0:  # compensate (or divide) only where the plain dimensions allow
                    ns = _plain_prefilter(data, src, ns, d0, d1, scol, rej, pre)
                    src = pre
                for d in range(d0, d1):
                    if scol[d] < 0:
                        _raw_values(data, src, ns, d, term_ptr, term_col, term_w, is_ratio, ratio_abc, raw[d - d0],
                                    scratch)
                if kind == KIND_RECT:
                    cnt = _rect_block(data, src, ns, raw, scol, d0, d1, xf_kind, xf_par, lim, lim_flags, rej, acc, out)
                elif kind == KIND_POLYGON:
                    cnt = _polygon_block(data, src, ns, raw, scol, d0, xf_kind, xf_par, lim, rej, verts,
                                         g_vert_ptr[g], g_vert_ptr[g + 1], g_table[g], band_edges, band_info, band_zone,
                                         band_cls, out)
                else:
                    cnt = _ellipsoid_block(data, src, ns, raw, scol, d0, d1, xf_kind, xf_par, rej, ell_mean, ell_icov,
                                           g_d2[g], vals, out)
            n_in[g] = cnt
            counts[g] += cnt
            if is_ref[g]:
                member[g, :m] = False
                for i in range(cnt):
                    member[g, out[i] - start] = True
            if out_row[g] >= 0:
                for i in range(cnt):
                    masks[out_row[g], out[i]] = True
            if g == target:
                for i in range(cnt):
                    selected[n_sel + i] = out[i]
                n_sel += cnt
    return masks, counts, selected[:n_sel]


def gml_evaluate_ref(
    data,
    g_kind, g_parent, g_dim_ptr, g_vert_ptr, g_table, g_ref_ptr, g_op, g_d2,
    term_ptr, term_col, term_w, is_ratio, ratio_abc, scol, xf_kind, xf_par, lim, lim_flags, rej, acc,
    verts, band_edges, band_info, band_zone, band_cls, ell_mean, ell_icov, ref_gate, ref_comp,
    out_row, n_out, target,
):
    """NumPy twin of :func:`gml_evaluate`: gate by gate on the parent's rows, every event transformed.

    It ignores the shortcuts (``rej``, ``acc``, grids), so agreeing with it shows
    that they never change a result.
    """
    n = data.shape[0]
    n_gates = g_kind.shape[0]
    member = np.zeros((n_gates, n), dtype=bool)

    def raw(rows, d):
        def term_sum(lo, hi):
            s = np.zeros(rows.shape)
            for t in range(lo, hi):
                s = s + data[rows, term_col[t]].astype(np.float64) * term_w[t]
            return s

        v = term_sum(term_ptr[2 * d], term_ptr[2 * d + 1])
        if is_ratio[d]:
            u = term_sum(term_ptr[2 * d + 1], term_ptr[2 * d + 2])
            v = ratio_abc[d, 0] * ((v - ratio_abc[d, 1]) / (u - ratio_abc[d, 2]))
        return v

    with np.errstate(all="ignore"):
        for g in range(n_gates):
            rows = np.arange(n) if g_parent[g] < 0 else np.flatnonzero(member[g_parent[g]])
            d0, d1 = g_dim_ptr[g], g_dim_ptr[g + 1]
            if g_kind[g] == KIND_BOOLEAN:
                refs = range(g_ref_ptr[g], g_ref_ptr[g + 1])
                m = np.array([member[ref_gate[r], rows] != ref_comp[r] for r in refs]).reshape(len(refs), -1)
                keep = ~m[0] if g_op[g] == BOOL_NOT else (m.all(axis=0) if g_op[g] == BOOL_AND else m.any(axis=0))
            else:
                vals = [gml_transform_ref(raw(rows, d), xf_kind[d], xf_par[d]) for d in range(d0, d1)]
                if g_kind[g] == KIND_RECT:
                    keep = np.ones(rows.shape, dtype=bool)
                    for d, v in zip(range(d0, d1), vals, strict=True):
                        if lim_flags[d] & _LIM_LO:
                            keep &= v >= lim[d, 0]
                        if lim_flags[d] & _LIM_HI:
                            keep &= v < lim[d, 1]
                elif g_kind[g] == KIND_POLYGON:
                    keep = _polygon_ref(vals[0], vals[1], verts[g_vert_ptr[g]:g_vert_ptr[g + 1]])
                else:
                    q = np.zeros(rows.shape)
                    for j in range(d1 - d0):
                        r = np.zeros(rows.shape)
                        for i in range(d1 - d0):
                            r = r + (vals[i] - ell_mean[d0 + i]) * ell_icov[d0 + i, j]
                        q = q + r * (vals[j] - ell_mean[d0 + j])
                    keep = q <= g_d2[g]
            member[g, rows[keep]] = True
    masks = np.zeros((n_out, n), dtype=bool)
    for g in range(n_gates):
        if out_row[g] >= 0:
            masks[out_row[g]] = member[g]
    selected = np.flatnonzero(member[target]).astype(np.int64) if target >= 0 else np.empty(0, dtype=np.int64)
    return masks, member.sum(axis=1).astype(np.int64), selected


def _polygon_ref(x, y, verts):
    """Vectorised twin of the polygon test (bounding box, then odd winding number)."""
    inside_box = (x >= verts[:, 0].min()) & (x <= verts[:, 0].max()) & (y >= verts[:, 1].min()) & (
        y <= verts[:, 1].max()
    )
    wind = np.zeros(x.shape, dtype=np.int64)
    nv = verts.shape[0]
    for i in range(nv):
        (ax, ay), (bx, by) = verts[i], verts[(i + 1) % nv]
        is_left = (bx - ax) * (y - ay) - (x - ax) * (by - ay)
        wind += (ay <= y) & (y < by) & (is_left > 0)
        wind -= ~(ay <= y) & (by <= y) & (is_left < 0)
    return inside_box & (wind % 2 != 0)
