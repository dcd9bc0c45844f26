"""How a Gating-ML template gate becomes the primitive arrays the engine runs, and the cache of those arrays.

``_Compiler(template, events).program(gates, outputs, target)`` returns the
arguments of ``_kernels.gml_evaluate`` after the data matrix: per gate its
kind, parent, dimensions and shape; per dimension the (column, weight) terms of
its (compensated) value, ratio, transform parameters, limits and the raw-scale
shortcuts. Only the columns and compensation weights depend on the file; the
rest of a gate (``_static_arrays``: transform parameters, limits mapped back to
raw values, band tables of polygons) depends on the gate alone, so it is
computed once per gate and kept in memory and, when the template was loaded with
a cache folder (``GateTemplate.cache_dir``), packed into a few arrays in that
folder (``<key>.static.npz``, see ``_cache``), under a digest of the code that
computes it (``_code_digest``) so a cache written by other code is ignored. The
evaluation itself (``evaluate``, ``apply_monocyte_template``) is in
``engine.py``, the only user of this module.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...errors import ChannelError, CompensationError, GateError
from ...events import Events
from ...fcs.read import spillover_of
from . import _cache as _gml_cache
from . import _kernels as K
from ._parse import Dimension, GateTemplate, TemplateGate, Transform

__all__ = ["_Compiler"]

_XF_CODES = {"linear": K.XF_LINEAR, "log": K.XF_LOG, "asinh": K.XF_ASINH, "logicle": K.XF_LOGICLE,
             "hyperlog": K.XF_HYPERLOG}
_KINDS = {"rectangle": K.KIND_RECT, "polygon": K.KIND_POLYGON, "ellipsoid": K.KIND_ELLIPSOID}
_BOOL_OPS = {"and": K.BOOL_AND, "or": K.BOOL_OR, "not": K.BOOL_NOT}
_MARGIN = 1e-7  # raw-scale safety margin around a mapped-back limit, relative to |limit| + T
_INF = math.inf


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


class _Compiler:
    """Turns template gates into the primitive arrays of ``gml_evaluate`` for one ``Events``."""

    def __init__(self, template: GateTemplate, events: Events) -> None:
        self.template = template
        self.events = events
        self.name = Path(events.path).name if events.path else "events"
        self._inv: dict[str, tuple[tuple[int, ...], np.ndarray] | None] = {}

    def column(self, name: str) -> int | None:
        """Column of channel ``name``: its $PnN, else its $PnS, else FlowJo's '/'->'_' spelling."""
        ev = self.events
        for labels in (ev.pnn, ev.pns, tuple(s.replace("/", "_") for s in ev.pnn)):
            if name and name in labels:
                return labels.index(name)
        return None

    def _matrix(self, ref: str) -> tuple[tuple[int, ...], np.ndarray] | None:
        """(columns of the matrix's detectors, inverse matrix) of a compensation; None for identity."""
        if ref not in self._inv:
            if ref == "FCS":
                spill = spillover_of(self.events)
                names, matrix = (spill.channels, spill.matrix) if spill is not None else ((), None)
                err: type[Exception] = CompensationError
            else:
                m = next(m for m in self.template.matrices if m.id == ref)
                names, matrix, err = m.detectors, np.array(m.spectrum, dtype=np.float64), GateError
            if matrix is None:
                self._inv[ref] = None
            else:
                missing = [c for c in names if c not in self.events.pnn]
                if missing:
                    raise err(f"{self.name}: compensation {ref!r} lists channels not in the file: {', '.join(missing)}")
                try:
                    inv = np.linalg.inv(matrix)
                except np.linalg.LinAlgError:
                    raise err(f"{self.name}: compensation matrix {ref!r} is singular") from None
                self._inv[ref] = (tuple(self.events.pnn.index(c) for c in names), inv)
        return self._inv[ref]

    def terms(self, name: str, ref: str, gate_id: str) -> list[tuple[int, float]]:
        """(column, weight) pairs whose sum is the (compensated) value of channel ``name``."""
        comp = None if ref == "uncompensated" else self._matrix(ref)
        col = self.column(name)
        if comp is not None:
            cols, inv = comp
            j = None
            if col is not None and col in cols:
                j = cols.index(col)
            elif col is None and ref != "FCS":  # a fluorochrome of the template's matrix
                m = next(m for m in self.template.matrices if m.id == ref)
                j = m.fluorochromes.index(name) if name in m.fluorochromes else None
            if j is not None:  # zero weights are left out (they only matter for NaN or infinite values)
                return [(cols[a], float(inv[a, j])) for a in range(len(cols)) if inv[a, j] != 0.0]
        if col is None:
            raise ChannelError(
                f"{self.name}: gate {gate_id!r} of template {Path(self.template.path).name} needs channel "
                f"{name!r}, which the file does not have"
            )
        return [(col, 1.0)]

    def program(self, gates: Sequence[TemplateGate], outputs: Sequence[str], target: str | None) -> tuple:
        """Arguments of ``gml_evaluate`` after ``data`` for ``gates`` (in dependency order)."""
        index = {g.id: i for i, g in enumerate(gates)}
        n_gates = len(gates)
        g_kind = np.zeros(n_gates, dtype=np.int64)
        g_parent = np.array([index[g.parent] if g.parent else -1 for g in gates], dtype=np.int64)
        g_table = np.full(n_gates, -1, dtype=np.int64)
        g_op = np.zeros(n_gates, dtype=np.int64)
        g_d2 = np.array([g.distance_square for g in gates], dtype=np.float64)
        g_dim_ptr, g_vert_ptr, g_ref_ptr, term_ptr = [0], [0], [0], [0]
        cols, weights, refs, verts, tables, dims = [], [], [], [], [], []
        statics = _statics(self.template.cache_dir, self.template.sha256,
                           [g for g in gates if g.kind != "boolean"])
        for i, g in enumerate(gates):
            if g.kind == "boolean":
                g_kind[i] = K.KIND_BOOLEAN
                g_op[i] = _BOOL_OPS[g.operator]
                refs += [(index[r], c) for r, c in g.refs]
            else:
                g_kind[i] = _KINDS[g.kind]
                verts.append(np.array(g.vertices, dtype=np.float64).reshape(-1, 2))
                static, table = statics[g]
                for dim, st in zip(g.dimensions, static, strict=True):
                    inputs = [dim.ratio.numerator, dim.ratio.denominator] if dim.ratio else [dim.channel, None]
                    terms = [self.terms(name, dim.compensation_ref, g.id) if name else [] for name in inputs]
                    for t in terms:
                        cols += [c for c, _ in t]
                        weights += [w for _, w in t]
                        term_ptr.append(len(cols))
                    plain = dim.ratio is None and len(terms[0]) == 1 and terms[0][0][1] == 1.0
                    dims.append((dim, *st, terms[0][0][0] if plain else -1))
                if table is not None:
                    g_table[i] = len(tables)
                    tables.append(table)
            g_dim_ptr.append(len(dims))
            g_vert_ptr.append(g_vert_ptr[-1] + (len(g.vertices) if g.kind != "boolean" else 0))
            g_ref_ptr.append(len(refs))
        width = max([len(d[8]) for d in dims] + [1])
        out_row = np.full(n_gates, -1, dtype=np.int64)
        for r, gate_id in enumerate(outputs):
            out_row[index[gate_id]] = r
        return (
            g_kind, g_parent, np.array(g_dim_ptr, dtype=np.int64), np.array(g_vert_ptr, dtype=np.int64), g_table,
            np.array(g_ref_ptr, dtype=np.int64), g_op, g_d2,
            np.array(term_ptr, dtype=np.int64), np.array(cols, dtype=np.int64), np.array(weights, dtype=np.float64),
            np.array([d[0].ratio is not None for d in dims], dtype=np.bool_),
            np.array([(d[0].ratio.a, d[0].ratio.b, d[0].ratio.c) if d[0].ratio else (0.0,) * 3 for d in dims],
                     dtype=np.float64).reshape(-1, 3),
            np.array([d[9] for d in dims], dtype=np.int64),
            np.array([d[1] for d in dims], dtype=np.int64),
            np.array([d[2] for d in dims], dtype=np.float64).reshape(-1, K.XF_PARAMS),
            np.array([d[3] for d in dims], dtype=np.float64).reshape(-1, 2),
            np.array([d[4] for d in dims], dtype=np.int64),
            np.array([d[5] for d in dims], dtype=np.float64).reshape(-1, 2),
            np.array([d[6] for d in dims], dtype=np.float64).reshape(-1, 2),
            np.concatenate(verts + [np.zeros((0, 2))]),
            np.array([gr[0] for gr in tables], dtype=np.float64).reshape(-1, K.BANDS + 1),
            np.array([gr[1] for gr in tables], dtype=np.float64).reshape(-1, 3),
            np.array([gr[2] for gr in tables], dtype=np.float64).reshape(-1, K.BANDS, 2 * K.MAX_ZONES),
            np.array([gr[3] for gr in tables], dtype=np.uint8).reshape(-1, K.BANDS, 2 * K.MAX_ZONES + 1),
            np.array([d[7] for d in dims], dtype=np.float64),
            np.array([list(d[8]) + [0.0] * (width - len(d[8])) for d in dims], dtype=np.float64).reshape(-1, width),
            np.array([r for r, _ in refs], dtype=np.int64), np.array([c for _, c in refs], dtype=np.bool_),
            out_row, len(outputs), index[target] if target is not None else -1,
        )


@functools.lru_cache(maxsize=1024)
def _static_arrays(g: TemplateGate) -> tuple[list[tuple], tuple | None]:
    """What does not depend on the events, per dimension of a gate (code, params, limits, shortcuts,
    ellipsoid row) and its band table; cached, as a polygon's table takes milliseconds to build."""
    gv = np.array(g.vertices, dtype=np.float64).reshape(-1, 2)
    box = _shape_box(g, gv)
    icov = np.linalg.inv(np.array(g.covariance)) if g.covariance else None
    out, params = [], []
    for d, dim in enumerate(g.dimensions):
        xf = dim.transform
        code = _XF_CODES[xf.kind] if xf else K.XF_NONE
        p = K.transform_params(code, *((xf.t, xf.w, xf.m, xf.a) if xf else (1.0, 0.0, 0.0, 0.0)))
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


# A fresh process would spend ~70 ms of pure Python in ``_static_arrays`` (mostly the band tables of polygons), so
# what it returns is also kept in the template's cache folder (``_cache``: ``<key>.static.npz``), for each gate by a
# digest of the gate: per dimension a float64 row (code, flags, mean, lim, rej, acc, params, ellipsoid row), then the
# band table (raw edges, info, zones; classes in a uint8 array), packed into a few arrays that round-trip bit for bit.
_ROW = 9 + K.XF_PARAMS  # a dimension's row before its ellipsoid row
_TABLE = (((K.BANDS + 1,), (3,), (K.BANDS, 2 * K.MAX_ZONES)), (K.BANDS, 2 * K.MAX_ZONES + 1))
_TABLE_F = sum(math.prod(s) for s in _TABLE[0])
_TABLE_C = math.prod(_TABLE[1])
_Static = tuple[list[tuple], tuple | None]


@functools.cache
def _code_digest() -> np.ndarray:
    """SHA-256 of the code that computes the static arrays: a cache written by other code is ignored.

    That code is this module and ``_kernels`` (``transform_params``, ``gml_transform``,
    ``BANDS``, ``MAX_ZONES``, the ``CELL_*`` classes, ``_polygon_ref``).
    """
    h = hashlib.sha256()
    try:
        for f in (__file__, K.__file__):
            h.update(Path(f).read_bytes())
    except (OSError, TypeError):
        h.update(b"unknown")
    return np.frombuffer(h.digest(), dtype=np.uint8)


def _gate_key(g: TemplateGate) -> str:
    """Digest of everything a gate holds (its repr is exact: floats print round-trip)."""
    return hashlib.sha256(repr(g).encode()).hexdigest()[:32]


def _pack(statics: dict[str, _Static]) -> dict[str, np.ndarray]:
    """``_static_arrays`` results by gate key as the arrays of a ``.static.npz`` (see ``_unpack``)."""
    meta, floats, classes = [], [], []
    for st, table in statics.values():
        rows = [[code, flags, mean, *lim, *rej, *acc, *p, *icov] for code, p, lim, flags, rej, acc, mean, icov in st]
        d = np.array(rows, dtype=np.float64).reshape(len(rows), -1) if rows else np.zeros((0, _ROW))
        meta.append((d.shape[0], d.shape[1], table is not None))
        floats += [d.ravel()] + ([np.ravel(a) for a in table[:3]] if table is not None else [])
        classes += [np.ravel(table[3])] if table is not None else []
    return {"code": _code_digest(), "keys": np.array(list(statics), dtype="<U32"),
            "meta": np.array(meta, dtype=np.int64).reshape(-1, 3),
            "f": np.concatenate(floats + [np.zeros(0)]).astype(np.float64),
            "c": np.concatenate(classes + [np.zeros(0, dtype=np.uint8)]).astype(np.uint8)}


def _unpack(arrays: dict[str, np.ndarray]) -> dict[str, _Static]:
    """``_static_arrays`` results by gate key from ``_pack``'s arrays; {} when they do not fit together."""
    keys, meta, f, c = (arrays.get(k) for k in ("keys", "meta", "f", "c"))
    if not (np.array_equal(arrays.get("code"), _code_digest()) and keys is not None and keys.ndim == 1
            and meta is not None and meta.shape == (len(keys), 3) and meta.dtype == np.int64
            and f is not None and f.dtype == np.float64 and c is not None and c.dtype == np.uint8):
        return {}
    n_f = int((meta[:, 0] * meta[:, 1]).sum() + _TABLE_F * meta[:, 2].sum())
    if (n_f != f.shape[0] or _TABLE_C * int(meta[:, 2].sum()) != c.shape[0] or np.any(meta[:, :2] < 0)
            or not np.all((meta[:, 2] == 0) | (meta[:, 2] == 1))):
        return {}
    out: dict[str, _Static] = {}
    i = j = 0
    for key, (n, width, has_table) in zip(keys.tolist(), meta.tolist(), strict=True):
        if width not in (_ROW, _ROW + n):
            return {}
        d = f[i:i + n * width].reshape(n, width)
        i += n * width
        params = d[:, 9:_ROW].copy()
        params.flags.writeable = False
        st = []
        for r, p in zip(d.tolist(), params, strict=True):
            code, flags, mean, lim0, lim1, rej0, rej1, acc0, acc1 = r[:9]
            st.append((int(code), p, (lim0, lim1), int(flags), (rej0, rej1), (acc0, acc1), mean, tuple(r[_ROW:])))
        table = None
        if has_table:
            parts = []
            for shape in _TABLE[0]:
                parts.append(f[i:i + math.prod(shape)].reshape(shape))
                i += math.prod(shape)
            table = (*parts, c[j:j + _TABLE_C].reshape(_TABLE[1]))
            j += _TABLE_C
        out[key] = (st, table)
    return out


@functools.lru_cache(maxsize=64)
def _stored_statics(folder: str | None, sha: str) -> dict[str, _Static]:
    """``_static_arrays`` results by gate key cached in ``folder`` for template ``sha`` ({} when none, or no
    folder); updated in place, so it also keeps this process's results when nothing is kept on disk."""
    arrays = _gml_cache._read_arrays(Path(folder), sha, "static") if folder is not None else None
    try:
        return _unpack(arrays) if arrays is not None else {}
    except (ValueError, TypeError, IndexError):  # arrays that do not fit together: recompute
        return {}


def _statics(folder: str | None, sha: str, gates: Sequence[TemplateGate]) -> dict[TemplateGate, _Static]:
    """``_static_arrays`` of each gate, read from the cache folder when there; computed (and cached) otherwise.

    ``folder`` is the template's cache folder (None: nothing read from or written to disk).
    """
    stored = _stored_statics(folder, sha) if sha else {}
    out, new = {}, False
    for g in gates:
        key = _gate_key(g)
        hit = stored.get(key)
        if hit is None or len(hit[0]) != len(g.dimensions):
            hit = stored[key] = _static_arrays(g)
            new = True
        out[g] = hit
    if new and sha and folder is not None:
        _gml_cache._write_arrays(Path(folder), sha, "static", _pack(dict(stored)))
    return out


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
