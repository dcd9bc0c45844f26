"""Per-event kernels (Numba, ``cache=True``) and their pure-NumPy twins.

Kernels take only primitive arrays and scalars. Each ``name`` has a ``name_ref``
written with NumPy for clarity; the tests check that both agree, including on
empty, NaN, negative and saturated input. Public wrappers (with dtype and shape
checks and the docstrings users read) live in ``gate.py`` and ``quantify.py``.

Conventions
-----------
- Masks are ``bool`` arrays; a NaN value never passes a gate.
- Ranges are half-open where Gating-ML says so: ``lo <= x < hi``.
- AB/C of an event with PE <= 0 (or NaN) is 0: it ranks below every positive
  event, so medians keep their meaning and such events are counted, not dropped.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "monocyte_chain",
    "monocyte_chain_ref",
    "abc_from_pe",
    "abc_from_pe_ref",
    "abc_summary",
    "abc_summary_ref",
    "compensate_columns",
    "compensate_columns_ref",
]


# --------------------------------------------------------------------------- gate chain
@njit(cache=True, nogil=True)
def monocyte_chain(
    data, i_fsc, i_sing, i_ssc, i_cd45, i_cd14,
    fsc_lo, fsc_hi, ssc_lo, ssc_hi,
    sing_lo, sing_hi, sing_is_ratio,
    cd45_lo,
    cof_cd14, cof_ssc, cx, cy, ia, ib, ic, d2max,
):  # pragma: no cover - compiled; tested against monocyte_chain_ref
    """Fused cells -> singlets -> CD45+ -> monocyte-ellipse chain over all events.

    Children are only evaluated on their parent's events. Returns the final mask
    and the event count kept by each of the four steps.
    """
    n = data.shape[0]
    mask = np.zeros(n, dtype=np.bool_)
    counts = np.zeros(4, dtype=np.int64)
    for k in range(n):
        f = data[k, i_fsc]
        s = data[k, i_ssc]
        if not (f >= fsc_lo and f < fsc_hi and s >= ssc_lo and s < ssc_hi):
            continue
        counts[0] += 1
        if i_sing >= 0:
            m = data[k, i_sing]
            if sing_is_ratio:
                if not (m > 0.0):
                    continue
                m = f / m
            if not (m >= sing_lo and m < sing_hi):
                continue
        counts[1] += 1
        if i_cd45 >= 0:
            if not (data[k, i_cd45] >= cd45_lo):
                continue
        counts[2] += 1
        x = np.arcsinh(data[k, i_cd14] / cof_cd14) - cx
        y = np.arcsinh(s / cof_ssc) - cy
        d2 = ia * x * x + 2.0 * ib * x * y + ic * y * y
        if d2 <= d2max:
            mask[k] = True
            counts[3] += 1
    return mask, counts


def monocyte_chain_ref(
    data, i_fsc, i_sing, i_ssc, i_cd45, i_cd14,
    fsc_lo, fsc_hi, ssc_lo, ssc_hi,
    sing_lo, sing_hi, sing_is_ratio,
    cd45_lo,
    cof_cd14, cof_ssc, cx, cy, ia, ib, ic, d2max,
):
    """NumPy twin of :func:`monocyte_chain`."""
    d = data.astype(np.float64)
    f, s = d[:, i_fsc], d[:, i_ssc]
    with np.errstate(invalid="ignore", divide="ignore"):
        cells = (f >= fsc_lo) & (f < fsc_hi) & (s >= ssc_lo) & (s < ssc_hi)
        if i_sing >= 0:
            m = d[:, i_sing]
            if sing_is_ratio:
                ok = m > 0
                m = np.where(ok, f / np.where(ok, m, 1.0), np.nan)
            singlets = cells & (m >= sing_lo) & (m < sing_hi)
        else:
            singlets = cells
        leuk = singlets & (d[:, i_cd45] >= cd45_lo) if i_cd45 >= 0 else singlets
        x = np.arcsinh(d[:, i_cd14] / cof_cd14) - cx
        y = np.arcsinh(s / cof_ssc) - cy
        d2 = ia * x * x + 2.0 * ib * x * y + ic * y * y
        mono = leuk & (d2 <= d2max)
    counts = np.array([cells.sum(), singlets.sum(), leuk.sum(), mono.sum()], dtype=np.int64)
    return mono, counts


# --------------------------------------------------------------------------- PE -> AB/C
@njit(cache=True, nogil=True)
def abc_from_pe(pe, intercept, slope):  # pragma: no cover - compiled
    """AB/C = 10**(intercept + slope*log10(pe)) for pe > 0, else 0."""
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
def compensate_columns(data, cols, inv_spill):  # pragma: no cover - compiled
    """New float32 array: ``data[:, cols] @ inv_spill`` on the listed columns, others copied."""
    n, d = data.shape
    m = cols.shape[0]
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


def compensate_columns_ref(data, cols, inv_spill):
    """NumPy twin of :func:`compensate_columns`."""
    out = np.array(data, dtype=np.float32, copy=True)
    out[:, cols] = (data[:, cols].astype(np.float64) @ inv_spill).astype(np.float32)
    return out
