"""Per-event kernels of the automated monocyte gate (Numba, ``cache=True``) and their pure-NumPy twins.

The passes over every event of a tube that the automated gate makes: the
scatter range (:func:`on_scale`, events piled up at a channel's maximum are
off-scale), the pool of drawn rows gathered in one pass (:func:`gather_ranked`) and
the fused cells -> singlets -> CD45+ -> monocyte chain that applies a fitted gate
(:func:`monocyte_chain`). The mixture fits run on a few thousand rows and have
kernels of their own (:mod:`hladr.gating._em`, :mod:`hladr.gating._mixture_scores`,
:mod:`hladr.gating._kmeans`).

Kernels take only primitive arrays and scalars. Each ``name`` has a ``name_ref``
written with NumPy for clarity; the tests check that both agree, including on
empty, NaN, negative and saturated input. The public wrapper (with the checks and
the docstring users read) is :meth:`hladr.gating.monocyte_gate.MonocyteGate.apply`.
No kernel here calls a kernel of another file: Numba's cache is checked against the
file of the function it holds only.

Conventions
-----------
- Masks are ``bool`` arrays; a NaN value never passes a gate.
- Ranges are half-open: ``lo <= x < hi``.
"""

from __future__ import annotations

import numpy as np

from .._jit import njit
from .._parallel import map_slices

__all__ = [
    "scatter_scan",
    "on_scale",
    "on_scale_ref",
    "gather_ranked",
    "gather_ranked_ref",
    "monocyte_chain",
    "monocyte_chain_ref",
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
