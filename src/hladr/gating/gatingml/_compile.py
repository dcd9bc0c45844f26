"""How a Gating-ML template's gates become the primitive arrays the engine runs on one file's events.

``Compiler(template, events).program(gates, outputs, target)`` returns the
arguments of ``_kernels.gml_evaluate`` after the data matrix: per gate its
kind, parent, dimensions and shape; per dimension the (column, weight) terms of
its (compensated) value, ratio, transform parameters, limits and the raw-scale
shortcuts. Only the columns and compensation weights depend on the file; the
rest of a gate (its static arrays: transform parameters, limits mapped back to
raw values, band tables of polygons) depends on the gate alone: ``_static.py``
computes it, ``_static_cache.py`` keeps it (on disk in the template's cache folder,
``GateTemplate.cache_dir``, when it has one). The evaluation
itself (``evaluate``, ``apply_monocyte_template``) is in ``engine.py``, the only
user of this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...errors import ChannelError, CompensationError, GateError
from ...events import Events
from ...fcs.read import spillover_of
from . import _kernels as K
from ._static_cache import statics
from ._template import GateTemplate, TemplateGate

__all__ = ["Compiler"]

_KINDS = {"rectangle": K.KIND_RECT, "polygon": K.KIND_POLYGON, "ellipsoid": K.KIND_ELLIPSOID}
_BOOL_OPS = {"and": K.BOOL_AND, "or": K.BOOL_OR, "not": K.BOOL_NOT}


class Compiler:
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
        gate_statics = statics(self.template.cache_dir, self.template.sha256,
                               [g for g in gates if g.kind != "boolean"])
        for i, g in enumerate(gates):
            if g.kind == "boolean":
                g_kind[i] = K.KIND_BOOLEAN
                g_op[i] = _BOOL_OPS[g.operator]
                refs += [(index[r], c) for r, c in g.refs]
            else:
                g_kind[i] = _KINDS[g.kind]
                verts.append(np.array(g.vertices, dtype=np.float64).reshape(-1, 2))
                static, table = gate_statics[g]
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
