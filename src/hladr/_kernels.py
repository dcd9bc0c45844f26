"""Per-event kernels of the automated pipeline (Numba, ``cache=True``) and their pure-NumPy twins.

The monocyte gate chain, PE -> AB/C and its summary, and compensation. The
Gating-ML 2.0 transforms and gate-evaluation engine live in
``gating/gatingml/_kernels.py``: they serve only the Gating-ML templates
(``gating/gatingml/engine.py``, ``_compile.py``), and keeping them apart keeps
this module (and its Numba cache) to what every automated run compiles and loads.

Kernels take only primitive arrays and scalars. Each ``name`` has a ``name_ref``
written with NumPy for clarity; the tests check that both agree, including on
empty, NaN, negative and saturated input. Public wrappers (with dtype and shape
checks and the docstrings users read) live in ``gating/automated.py``,
``quantify.py`` and ``compensate.py``.

Conventions
-----------
- Masks are ``bool`` arrays; a NaN value never passes a gate.
- Ranges are half-open: ``lo <= x < hi``.
- AB/C of an event with PE <= 0 (or NaN) is 0: it ranks below every positive
  event, so medians keep their meaning and such events are counted, not dropped.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit

__all__ = [
    "scatter_scan",
    "on_scale",
    "on_scale_ref",
    "gather_ranked",
    "gather_ranked_ref",
    "monocyte_chain",
    "monocyte_chain_ref",
    "abc_from_pe",
    "abc_from_pe_ref",
    "abc_summary",
    "abc_summary_ref",
    "compensate_columns",
    "compensate_columns_ref",
    "weighted_sum_all",
    "weighted_sum_all_ref",
]


# --------------------------------------------------------------------------- scatter range
@njit(cache=True, nogil=True)
def scatter_scan(data, i_fsc, i_ssc):  # pragma: no cover - compiled; tested through on_scale against on_scale_ref
    """One pass over the rows: ``(fsc > 0) & (ssc > 0)``, both finite, per row, and how many rows pass; per
    channel (FSC, SSC) the largest finite value, how many rows hold it and their positions (``at_top[j,
    :n_top[j]]``), and how many values are finite. :func:`on_scale` merges slices of rows and removes a pile-up.
    """
    n = data.shape[0]
    out = np.empty(n, dtype=np.bool_)
    at_top = np.empty((2, n), dtype=np.int64)  # pages touched only as far as a maximum repeats
    top_f = top_s = -np.inf  # scalars, not arrays: they stay in registers
    fin_f = fin_s = n_f = n_s = count = 0
    for e in range(n):
        f = data[e, i_fsc]
        s = data[e, i_ssc]
        # most events lie below both maxima: one predictable comparison each (NaN compares False)
        if f >= top_f and np.isfinite(f):
            if f > top_f:
                top_f = f
                n_f = 0
            at_top[0, n_f] = e
            n_f += 1
        if s >= top_s and np.isfinite(s):
            if s > top_s:
                top_s = s
                n_s = 0
            at_top[1, n_s] = e
            n_s += 1
        fin_f += (f - f) == 0.0  # finite: x - x is NaN for NaN and +-inf
        fin_s += (s - s) == 0.0
        ok = (f > 0.0) & (s > 0.0) & (f < np.inf) & (s < np.inf)
        out[e] = ok
        count += ok
    return (out, count, np.array([top_f, top_s]), np.array([n_f, n_s]), np.array([fin_f, fin_s]), at_top)


def on_scale(data, i_fsc, i_ssc, min_pileup, pileup_share, threads=1):
    """Events on scale: ``(fsc > 0) & (ssc > 0) & (fsc < fsc_hi) & (ssc < ssc_hi)``, their count, and
    ``fsc_hi``, ``ssc_hi``.

    A channel's upper limit is its largest finite value when at least
    ``max(min_pileup, pileup_share x finite values)`` events hold it (a pile-up of saturated
    events, which the half-open range drops), else inf. :func:`scatter_scan` runs once over
    slices of rows (in ``threads`` threads, ``hladr._parallel``); the slices' maxima are merged
    and the events of a pile-up, whose positions the scan kept, are removed.
    """
    from ._parallel import map_slices

    parts = map_slices(lambda lo, hi: scatter_scan(data[lo:hi], i_fsc, i_ssc), data.shape[0], threads)
    out = parts[0][2][0] if len(parts) == 1 else np.concatenate([p[2][0] for p in parts])
    count = sum(int(p[2][1]) for p in parts)
    his = []
    for j in range(2):
        top = max(float(p[2][2][j]) for p in parts)
        n_finite = sum(int(p[2][4][j]) for p in parts)
        held = [(lo, p[5][j, : p[3][j]]) for lo, _, p in parts if p[2][j] == top and p[3][j] > 0]
        n_top = sum(pos.size for _, pos in held)
        if n_finite > 0 and n_top >= max(min_pileup, pileup_share * n_finite):
            rows = np.concatenate([lo + pos for lo, pos in held])
            count -= int(np.count_nonzero(out[rows]))
            out[rows] = False
            his.append(top)
        else:
            his.append(np.inf)
    return out, count, his[0], his[1]


def on_scale_ref(data, i_fsc, i_ssc, min_pileup, pileup_share):
    """NumPy twin of :func:`on_scale`."""
    his = []
    for c in (i_fsc, i_ssc):
        x = data[:, c].astype(np.float64)
        x = x[np.isfinite(x)]
        top = x.max() if x.size else -np.inf
        pile = x.size > 0 and np.count_nonzero(x == top) >= max(min_pileup, pileup_share * x.size)
        his.append(float(top) if pile else np.inf)
    f, s = data[:, i_fsc].astype(np.float64), data[:, i_ssc].astype(np.float64)
    with np.errstate(invalid="ignore"):
        out = (f > 0) & (s > 0) & (f < his[0]) & (s < his[1])
    return out, int(np.count_nonzero(out)), his[0], his[1]


@njit(cache=True, nogil=True)
def gather_ranked(data, mask, ranks):  # pragma: no cover - compiled; tested against gather_ranked_ref
    """``data[np.flatnonzero(mask)[ranks]]`` (``ranks`` sorted, distinct) in one pass, without the index array."""
    m = ranks.shape[0]
    out = np.empty((m, data.shape[1]), dtype=data.dtype)
    j = 0
    seen = 0
    for e in range(data.shape[0]):
        if j == m:
            break
        if mask[e]:
            if seen == ranks[j]:
                out[j, :] = data[e, :]
                j += 1
            seen += 1
    return out


def gather_ranked_ref(data, mask, ranks):
    """NumPy twin of :func:`gather_ranked`."""
    return data[np.flatnonzero(mask)[ranks]]


# --------------------------------------------------------------------------- gate chain
@njit(cache=True, nogil=True)
def monocyte_chain(
    data, i_fsc, i_sing, i_ssc, i_cd45, cols,
    fsc_lo, fsc_hi, ssc_lo, ssc_hi,
    sing_lo, sing_hi, sing_is_ratio,
    cd45_lo,
    cof, box_lo, box_hi, means, precs, log_norm, is_mono, d2max, odds,
):  # pragma: no cover - compiled; tested against monocyte_chain_ref
    """Fused cells -> singlets -> CD45+ -> monocyte-mixture chain over all events.

    An event of the leukocytes is a monocyte when, in the features
    ``asinh(data[:, cols] / cof)``, the monocyte components of the mixture hold
    more than ``odds`` times the posterior of the others and its squared Mahalanobis distance to the
    likeliest monocyte component is at most ``d2max``. Events outside the raw-scale
    box ``[box_lo, box_hi)`` (which holds every such point) are never monocytes, so
    the mixture is only evaluated inside it. Returns the final mask and the event
    count kept by each of the four steps.
    """
    n = data.shape[0]
    d = cols.shape[0]
    k = means.shape[0]
    mask = np.zeros(n, dtype=np.bool_)
    n_cells = n_singlets = n_leuk = n_mono = 0  # scalars, not an array: they stay in registers
    # the posterior test without exponentials when its outcome is certain (see below)
    k_mono = 0
    for c in range(k):
        k_mono += 1 if is_mono[c] else 0
    k_other = k - k_mono
    sure_in = np.inf if k_other == 0 else -np.log(odds * k_other) - 1e-6
    sure_out = np.log(odds / k_mono) - 1e-6 if k_mono > 0 else np.inf
    x = np.empty(d, dtype=np.float64)
    lps = np.empty(k, dtype=np.float64)
    for e in range(n):
        f = data[e, i_fsc]
        s = data[e, i_ssc]
        if not (f >= fsc_lo and f < fsc_hi and s >= ssc_lo and s < ssc_hi):
            continue
        n_cells += 1
        if i_sing >= 0:
            m = data[e, i_sing]
            if sing_is_ratio:
                if not (m > 0.0):
                    continue
                m = f / m
            if not (m >= sing_lo and m < sing_hi):
                continue
        n_singlets += 1
        if i_cd45 >= 0:
            if not (data[e, i_cd45] >= cd45_lo):
                continue
        n_leuk += 1
        inside = True
        for j in range(d):  # the whole box first: asinh (~20 ns) only for the few events inside it
            v = data[e, cols[j]]
            if not (v >= box_lo[j] and v < box_hi[j]):
                inside = False
                break
        if not inside:
            continue
        for j in range(d):
            x[j] = np.arcsinh(data[e, cols[j]] / cof[j])
        best_lp = -np.inf
        best_d2 = np.inf
        top = -np.inf
        top_other = -np.inf
        for c in range(k):
            d2 = 0.0
            for a in range(d):
                da = x[a] - means[c, a]
                row = 0.0
                for b in range(d):
                    row += precs[c, a, b] * (x[b] - means[c, b])
                d2 += da * row
            lp = log_norm[c] - 0.5 * d2
            lps[c] = lp
            if lp > top:
                top = lp
            if is_mono[c] and lp > best_lp:
                best_lp = lp
                best_d2 = d2
            if not is_mono[c] and lp > top_other:
                top_other = lp
        if not (best_d2 <= d2max):
            continue
        # sum(exp(lp - top)) over the monocyte components is >= 1 when one of them is the top, and at
        # most (their count) x exp(their best - top) otherwise; likewise for the others. A margin of
        # 1e-6 in the log (rounding of the sums: ~1e-15) makes the shortcut decide as the sums would.
        if best_lp == top and top_other - top < sure_in:
            mask[e] = True
            n_mono += 1
            continue
        if best_lp < top and best_lp - top < sure_out:
            continue
        s_mono = 0.0
        s_other = 0.0
        for c in range(k):
            t = np.exp(lps[c] - top)
            if is_mono[c]:
                s_mono += t
            else:
                s_other += t
        if s_mono > odds * s_other:
            mask[e] = True
            n_mono += 1
    counts = np.array([n_cells, n_singlets, n_leuk, n_mono], dtype=np.int64)
    return mask, counts


def monocyte_chain_ref(
    data, i_fsc, i_sing, i_ssc, i_cd45, cols,
    fsc_lo, fsc_hi, ssc_lo, ssc_hi,
    sing_lo, sing_hi, sing_is_ratio,
    cd45_lo,
    cof, box_lo, box_hi, means, precs, log_norm, is_mono, d2max, odds,
):
    """NumPy twin of :func:`monocyte_chain`."""
    dd = data.astype(np.float64)
    f, s = dd[:, i_fsc], dd[:, i_ssc]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        cells = (f >= fsc_lo) & (f < fsc_hi) & (s >= ssc_lo) & (s < ssc_hi)
        if i_sing >= 0:
            m = dd[:, i_sing]
            if sing_is_ratio:
                ok = m > 0
                m = np.where(ok, f / np.where(ok, m, 1.0), np.nan)
            singlets = cells & (m >= sing_lo) & (m < sing_hi)
        else:
            singlets = cells
        leuk = singlets & (dd[:, i_cd45] >= cd45_lo) if i_cd45 >= 0 else singlets
        raw = dd[:, cols]
        box = np.all((raw >= box_lo) & (raw < box_hi), axis=1)
        X = np.arcsinh(raw / cof)
        k = means.shape[0]
        d2 = np.empty((X.shape[0], k))
        for c in range(k):
            diff = X - means[c]
            d2[:, c] = np.einsum("ni,ij,nj->n", diff, precs[c], diff)
        lp = log_norm - 0.5 * d2
        top = lp.max(axis=1, keepdims=True)
        t = np.exp(lp - top)
        mono = np.asarray(is_mono, dtype=bool)
        s_mono = t[:, mono].sum(axis=1)
        s_other = t[:, ~mono].sum(axis=1)
        best = np.argmax(np.where(mono, lp, -np.inf), axis=1)
        best_d2 = d2[np.arange(X.shape[0]), best]
        final = leuk & box & (best_d2 <= d2max) & (s_mono > odds * s_other)
    counts = np.array([cells.sum(), singlets.sum(), leuk.sum(), final.sum()], dtype=np.int64)
    return final, counts


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
