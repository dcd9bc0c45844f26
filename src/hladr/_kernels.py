"""Per-event kernels of quantification and compensation (Numba, ``cache=True``) and their pure-NumPy twins.

PE -> AB/C and its summary (:mod:`hladr.quantify`), and spillover compensation
(:mod:`hladr.compensate`). The automated gate's per-event kernels live with the gate
(:mod:`hladr.gating._kernels`), the Gating-ML engine's with the engine
(:mod:`hladr.gating.gatingml._kernels`): each module (and its Numba cache) holds
what its callers compile and load, and none calls a kernel of another file.

Kernels take only primitive arrays and scalars. Each ``name`` has a ``name_ref``
written with NumPy for clarity; the tests check that both agree, including on
empty, NaN, negative and saturated input. Public wrappers (with dtype and shape
checks and the docstrings users read) live in ``quantify.py`` and ``compensate.py``.

Conventions
-----------
- AB/C of an event with PE <= 0 (or NaN) is 0: it ranks below every positive
  event, so medians keep their meaning and such events are counted, not dropped.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit

__all__ = [
    "abc_from_pe",
    "abc_from_pe_ref",
    "abc_summary",
    "abc_summary_ref",
    "compensate_columns",
    "compensate_columns_ref",
    "weighted_sum_all",
    "weighted_sum_all_ref",
]


# --------------------------------------------------------------------------- PE -> AB/C
@njit(cache=True, nogil=True)
def abc_from_pe(pe, intercept, slope):  # pragma: no cover - compiled
    """AB/C = 10**(intercept + slope*log10(pe)) for pe > 0, else 0.

    The body of :func:`hladr.beads.calibrate.apply_bead_curve`, the one function that applies
    the bead curve (its docstring says why PE <= 0 gives 0); call that, not this.
    """
    out = np.empty(pe.shape[0], dtype=np.float64)
    for k in range(pe.shape[0]):
        v = pe[k]
        out[k] = 10.0 ** (intercept + slope * np.log10(v)) if v > 0.0 else 0.0
    return out


def abc_from_pe_ref(pe, intercept, slope):
    """NumPy twin of :func:`abc_from_pe`."""
    pe = np.asarray(pe, dtype=np.float64)
    out = np.zeros(pe.shape, dtype=np.float64)
    pos = pe > 0
    out[pos] = 10.0 ** (intercept + slope * np.log10(pe[pos]))
    return out


@njit(cache=True, nogil=True)
def abc_summary(pe, intercept, slope):  # pragma: no cover - compiled
    """(median AB/C, geometric mean of positive AB/C, n positive) of selected events.

    The median is taken by selection (``np.median`` partitions, it does not sort
    the whole array); events with PE <= 0 count as AB/C 0.
    """
    n = pe.shape[0]
    if n == 0:
        return np.nan, np.nan, 0
    abc = abc_from_pe(pe, intercept, slope)
    med = np.median(abc)
    s = 0.0
    npos = 0
    for k in range(n):
        if abc[k] > 0.0:
            s += np.log10(abc[k])
            npos += 1
    geo = 10.0 ** (s / npos) if npos > 0 else np.nan
    return med, geo, npos


def abc_summary_ref(pe, intercept, slope):
    """NumPy twin of :func:`abc_summary`."""
    pe = np.asarray(pe, dtype=np.float64)
    if pe.size == 0:
        return np.nan, np.nan, 0
    abc = abc_from_pe_ref(pe, intercept, slope)
    pos = abc > 0
    geo = 10.0 ** np.mean(np.log10(abc[pos])) if pos.any() else np.nan
    return float(np.median(abc)), float(geo), int(pos.sum())


# --------------------------------------------------------------------------- compensation
@njit(cache=True, nogil=True)
def compensate_columns(data, cols, inv_spill, out=None):  # pragma: no cover - compiled
    """float32 ``data[:, cols] @ inv_spill`` written to the listed columns of ``out``.

    ``out=None``: a new array, the other columns copied from ``data``. Otherwise
    ``out`` (same shape, float32; may be ``data`` itself: each row is read before
    it is written) receives the listed columns and its other columns are left as
    they are. Returns ``out``.
    """
    n = data.shape[0]
    m = cols.shape[0]
    if out is None:
        out = data.copy()
    row = np.empty(m, dtype=np.float64)
    for k in range(n):
        for a in range(m):
            row[a] = data[k, cols[a]]
        for b in range(m):
            acc = 0.0
            for a in range(m):
                acc += row[a] * inv_spill[a, b]
            out[k, cols[b]] = acc
    return out


def compensate_columns_ref(data, cols, inv_spill, out=None):
    """NumPy twin of :func:`compensate_columns`."""
    comp = (data[:, cols].astype(np.float64) @ inv_spill).astype(np.float32)  # read before ``out`` is written
    if out is None:
        out = np.array(data, dtype=np.float32, copy=True)
    out[:, cols] = comp
    return out


@njit(cache=True, nogil=True, inline="always")
def _weighted_row(data, k, cols, weights):  # pragma: no cover - compiled
    """``sum_t data[k, cols[t]] * weights[t]`` in float64, terms added in order (one row of the two below)."""
    v = 0.0
    for t in range(cols.shape[0]):
        v += np.float64(data[k, cols[t]]) * weights[t]
    return v


@njit(cache=True, nogil=True)
def weighted_sum_rows(data, rows, cols, weights):  # pragma: no cover - compiled
    """float64 ``sum_t data[rows[i], cols[t]] * weights[t]`` for each listed row.

    One compensated channel of selected events (``cols``/``weights``: the
    non-zero entries of that channel's column of the inverse spillover), in
    double precision and without compensating or copying the whole matrix.
    """
    n = rows.shape[0]
    out = np.empty(n, dtype=np.float64)
    for i in range(n):  # row by row: one cache line per event, not one per term
        out[i] = _weighted_row(data, rows[i], cols, weights)
    return out


def weighted_sum_rows_ref(data, rows, cols, weights):
    """NumPy twin of :func:`weighted_sum_rows` (terms added in the same order)."""
    out = np.zeros(len(rows), dtype=np.float64)
    for c, w in zip(cols, weights, strict=True):
        out = out + data[rows, c].astype(np.float64) * w
    return out


@njit(cache=True, nogil=True)
def weighted_sum_all(data, cols, weights, out):  # pragma: no cover - compiled
    """:func:`weighted_sum_rows` of every row of ``data``, written to ``out`` (float64, one per row).

    No index array: callers pass a slice of rows and the matching slice of ``out``.
    Each value is computed by the same ``_weighted_row`` as in ``weighted_sum_rows``.
    """
    for k in range(data.shape[0]):
        out[k] = _weighted_row(data, k, cols, weights)
    return out


def weighted_sum_all_ref(data, cols, weights, out):
    """NumPy twin of :func:`weighted_sum_all` (terms added in the same order)."""
    acc = np.zeros(data.shape[0], dtype=np.float64)
    for c, w in zip(cols, weights, strict=True):
        acc = acc + data[:, c].astype(np.float64) * w
    out[:] = acc
    return out
