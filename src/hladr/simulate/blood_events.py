"""Simulated blood events: a drawn blood picture (:mod:`hladr.simulate.blood_profiles`) turned into one tube's cells.

:func:`blood_events` turns a drawn picture into the cells of one tube (scatter
as fractions of the instrument's scatter range, dyes in molecules) with one
label and one subset per event; :mod:`hladr.simulate.tube_events` acquires them and
:mod:`hladr.simulate.tube_files` writes them.

Populations (label, subsets): ``lymphocyte`` (``t``, ``nk``), ``b_cell``,
``monocyte`` (``classical``, ``intermediate``, ``non_classical``: all three are
monocytes in the truth), ``immature_granulocyte`` (a maturation continuum from
promyelocyte/myelocyte to band: SSC, CD45 and CD14 interpolate towards the
mature neutrophil), ``granulocyte`` (mature neutrophils), ``eosinophil``,
``basophil``, ``dead_cell`` (subset: the cell it was), ``debris``, ``doublet``
(random pairs of singlets), ``mono_gran_doublet`` (a monocyte stuck to a
neutrophil or immature granulocyte: CD14 bright, high SSC; not a monocyte) and
``offscale`` (clumps at the scatter maximum).

HLA-DR (PE antibodies bound per cell) of the monocyte singlets: lognormal with
log10 SD ``hladr_log10_sd``; in bimodal tubes two modes (each with 0.7 x that
SD) ``hladr_mode_separation_decades`` apart, the low one holding
``hladr_low_mode_fraction`` of the cells; CD16+ monocytes shifted up by
``hladr_cd16_shift_decades``. The draw is then scaled so that the median over
the monocyte singlets is exactly the tube's ``hladr_abc``. HLA-DR is otherwise
independent of scatter, CD14 and CD45 (and fully independent in ``healthy``,
where the shift is 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from .blood_profiles import LEUKOCYTE_LABELS, PROFILES, draw_morphology

__all__ = ["blood_events", "carry_over_cells", "lognormal", "concat_events", "doublets"]


# ------------------------------------------------------------------ cells


def lognormal(rng: np.random.Generator, median, log10_sd: float, n: int) -> np.ndarray:
    """``n`` lognormal values with this median and log10 SD."""
    return median * 10.0 ** (log10_sd * rng.standard_normal(n))


def _hladr_offsets(rng: np.random.Generator, n: int, m: Mapping[str, float], cd16: np.ndarray) -> np.ndarray:
    """Log10 offsets of monocyte HLA-DR around the (not yet centred) median."""
    sd = m["hladr_log10_sd"]
    z = rng.standard_normal(n)
    if m["hladr_bimodal"] >= 0.5:
        high = rng.random(n) >= m["hladr_low_mode_fraction"]
        x = 0.7 * sd * z + m["hladr_mode_separation_decades"] * high
    else:
        x = sd * z
    return x + m["hladr_cd16_shift_decades"] * cd16


def _monocytes(rng, n: int, m: Mapping[str, float], hladr_abc: float, centred: bool) -> dict:
    p_int = m["intermediate_fraction_of_monocytes"]
    p_nc = m["nonclassical_fraction_of_monocytes"]
    u = rng.random(n)
    sub = np.where(u < p_nc, 2, np.where(u < p_nc + p_int, 1, 0))  # 0 classical, 1 int, 2 nc
    cd14_dec = np.choose(sub, [0.0, m["intermediate_cd14_decades_below_classical"],
                               m["nonclassical_cd14_decades_below_classical"]])
    nc = sub == 2
    x = _hladr_offsets(rng, n, m, (sub > 0).astype(float))
    if centred and n:
        abc = hladr_abc * 10.0 ** (x - np.median(x))
        abc *= hladr_abc / np.median(abc)  # exact median, also for an even count
    else:
        abc = hladr_abc * 10.0 ** x
    c = {
        "fsc": lognormal(rng, m["monocyte_fsc"], m["monocyte_fsc_log10_sd"], n) * np.where(nc, 0.93, 1.0),
        "ssc": lognormal(rng, m["monocyte_ssc"], m["monocyte_ssc_log10_sd"], n) * np.where(nc, 0.85, 1.0),
        "cd45": lognormal(rng, m["monocyte_cd45"] * m["cd45_stain_factor"], 0.10, n)
        * np.choose(sub, [1.0, 1.15, 1.35]),
        "cd14": lognormal(rng, m["monocyte_cd14"], m["monocyte_cd14_log10_sd"], n) / 10.0 ** cd14_dec,
        "fitc": lognormal(rng, 400, 0.2, n), "af_pe": lognormal(rng, 8, 0.2, n), "abc": abc,
        "subset": np.array(["classical", "intermediate", "non_classical"])[sub],
    }
    return c


def _immature(rng, n: int, m: Mapping[str, float]) -> dict:
    """A maturation continuum: t = 0 the immature end, t = 1 a mature neutrophil."""
    t = rng.beta(1.0, 1.5, n)
    gran_cd14 = m["monocyte_cd14"] / 10 ** m["neutrophil_cd14_decades_below_monocytes"]
    ig_cd14 = m["monocyte_cd14"] / 10 ** m["ig_cd14_decades_below_monocytes"]
    gran_cd45 = m["neutrophil_cd45"] * m["cd45_stain_factor"]

    def towards(a: float, b: float) -> np.ndarray:
        return 10.0 ** (math.log10(a) + t * (math.log10(b) - math.log10(a)))

    return {
        "fsc": towards(m["monocyte_fsc"] * m["ig_fsc_relative_to_monocytes"], m["neutrophil_fsc"])
        * 10.0 ** (0.04 * rng.standard_normal(n)),
        "ssc": towards(m["neutrophil_ssc"] * m["ig_ssc_relative_to_neutrophils"], m["neutrophil_ssc"])
        * 10.0 ** (0.08 * rng.standard_normal(n)),
        "cd45": towards(gran_cd45 * m["ig_cd45_relative_to_neutrophils"], gran_cd45)
        * 10.0 ** (0.12 * rng.standard_normal(n)),
        "cd14": towards(ig_cd14, gran_cd14) * 10.0 ** (0.25 * rng.standard_normal(n)),
        "fitc": lognormal(rng, 700, 0.2, n), "af_pe": lognormal(rng, 12, 0.2, n), "abc": lognormal(rng, 50, 0.3, n),
        "subset": np.full(n, ""),
    }


def _cells(rng, label: str, n: int, m: Mapping[str, float], hladr_abc: float, *,
           centred: bool = False) -> dict:
    """Singlet cells of one population: scatter fractions, dye molecules, subset."""
    cd45f = m["cd45_stain_factor"]
    gran_cd14 = m["monocyte_cd14"] / 10 ** m["neutrophil_cd14_decades_below_monocytes"]
    gran_cd45 = m["neutrophil_cd45"] * cd45f
    if label == "lymphocyte":
        nk = rng.random(n) < m["nk_fraction_of_lymphocytes"]
        c = {
            "fsc": lognormal(rng, m["lymphocyte_fsc"], 0.035, n) * np.where(nk, 1.05, 1.0),
            "ssc": lognormal(rng, m["lymphocyte_ssc"], 0.08, n) * np.where(nk, 1.25, 1.0),
            "cd45": lognormal(rng, 40_000 * cd45f, 0.10, n) * np.where(nk, 0.85, 1.0),
            "cd14": lognormal(rng, 150, 0.25, n), "fitc": lognormal(rng, 150, 0.2, n),
            "af_pe": lognormal(rng, 5, 0.2, n), "abc": lognormal(rng, 80, 0.35, n) * np.where(nk, 1.3, 1.0),
            "subset": np.where(nk, "nk", "t"),
        }
    elif label == "b_cell":
        c = {
            "fsc": lognormal(rng, m["lymphocyte_fsc"], 0.035, n), "ssc": lognormal(rng, m["lymphocyte_ssc"], 0.08, n),
            "cd45": lognormal(rng, 32_000 * cd45f, 0.10, n), "cd14": lognormal(rng, 150, 0.25, n),
            "fitc": lognormal(rng, 150, 0.2, n), "af_pe": lognormal(rng, 5, 0.2, n),
            "abc": lognormal(rng, m["b_cell_hladr_abc"], 0.15, n), "subset": np.full(n, ""),
        }
    elif label == "monocyte":
        c = _monocytes(rng, n, m, hladr_abc, centred)
    elif label == "immature_granulocyte":
        c = _immature(rng, n, m)
    elif label == "granulocyte":
        c = {
            "fsc": lognormal(rng, m["neutrophil_fsc"], 0.035, n),
            "ssc": lognormal(rng, m["neutrophil_ssc"], m["neutrophil_ssc_log10_sd"], n),
            "cd45": lognormal(rng, gran_cd45, 0.10, n), "cd14": lognormal(rng, gran_cd14, 0.2, n),
            "fitc": lognormal(rng, 900, 0.2, n), "af_pe": lognormal(rng, 15, 0.2, n), "abc": lognormal(rng, 40, 0.3, n),
            "subset": np.full(n, ""),
        }
    elif label == "eosinophil":
        c = {
            "fsc": lognormal(rng, 0.95 * m["neutrophil_fsc"], 0.035, n),
            "ssc": lognormal(rng, m["neutrophil_ssc"] * m["eosinophil_ssc_relative_to_neutrophils"], 0.06, n),
            "cd45": lognormal(rng, gran_cd45 * m["eosinophil_cd45_relative_to_neutrophils"], 0.10, n),
            "cd14": lognormal(rng, 150, 0.3, n), "fitc": lognormal(rng, 4_000, 0.2, n),
            "af_pe": lognormal(rng, 50, 0.2, n), "abc": lognormal(rng, 30, 0.3, n), "subset": np.full(n, ""),
        }
    elif label == "basophil":
        c = {
            "fsc": lognormal(rng, 1.25 * m["lymphocyte_fsc"], 0.04, n),
            "ssc": lognormal(rng, 1.3 * m["lymphocyte_ssc"], 0.10, n),
            "cd45": lognormal(rng, 15_000 * cd45f, 0.12, n), "cd14": lognormal(rng, 300, 0.3, n),
            "fitc": lognormal(rng, 300, 0.2, n), "af_pe": lognormal(rng, 6, 0.2, n), "abc": lognormal(rng, 60, 0.3, n),
            "subset": np.full(n, ""),
        }
    elif label == "debris":
        c = {
            "fsc": 0.012 + rng.exponential(0.03, n), "ssc": lognormal(rng, 0.012, 0.3, n),
            "cd45": lognormal(rng, 100, 0.4, n), "cd14": lognormal(rng, 80, 0.4, n),
            "fitc": lognormal(rng, 60, 0.4, n), "af_pe": lognormal(rng, 3, 0.3, n),
            "abc": lognormal(rng, 20, 0.5, n), "subset": np.full(n, ""),
        }
    else:
        raise ValueError(f"unknown population {label!r}")
    c["fsc_h"] = c["fsc"] * rng.normal(0.85 if label != "debris" else 0.9, 0.02, n)
    c["ssc_h"] = c["ssc"] * rng.normal(0.90, 0.03, n)
    return c


_NUMERIC = ("fsc", "fsc_h", "ssc", "ssc_h", "cd45", "cd14", "fitc", "af_pe", "abc")


def concat_events(parts: list[dict]) -> dict:
    """Event dicts (one array per quantity) joined, with the keys of the first."""
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _pool(rng, n: int, m: Mapping[str, float], hladr_abc: float, weights: Mapping[str, float]) -> dict:
    """``n`` random singlet cells, populations drawn with ``weights``, in random order."""
    names = [k for k, w in weights.items() if w > 0]
    if not names:
        raise ValueError("no leukocytes left for doublets and dead cells: n_events too small")
    p = np.array([weights[k] for k in names], dtype=float)
    which = rng.choice(len(names), size=n, p=p / p.sum())
    parts = [_cells(rng, names[i], int((which == i).sum()), m, hladr_abc) for i in range(len(names))]
    for name, part in zip(names, parts, strict=True):
        part["subset"] = np.full(len(part["fsc"]), name)  # the population it came from
    pool = concat_events(parts)
    order = rng.permutation(n)
    return {k: v[order] for k, v in pool.items()}


def doublets(a: dict, b: dict, rng, overlap_max: float) -> dict:
    """Doublets: areas and dyes add; the height grows by only part of the smaller one."""
    out = {k: a[k] + b[k] for k in _NUMERIC}
    for h in ("fsc_h", "ssc_h"):
        f = rng.uniform(0.10, max(overlap_max, 0.10), len(a[h]))
        out[h] = np.maximum(a[h], b[h]) + f * np.minimum(a[h], b[h])
    out["subset"] = np.full(len(a["fsc"]), "")
    return out


def _dead(rng, n: int, m: Mapping[str, float], hladr_abc: float, weights: Mapping[str, float]) -> dict:
    """Dying leukocytes (mostly of the commonest population): shrunken, SSC kept, dim markers."""
    c = _pool(rng, n, m, hladr_abc, weights)
    shrink = rng.uniform(0.30, 0.65, n)
    c["fsc"] = c["fsc"] * shrink
    c["fsc_h"] = c["fsc"] * rng.normal(0.88, 0.03, n)
    keep = rng.uniform(0.6, 1.1, n)
    c["ssc"] = c["ssc"] * keep
    c["ssc_h"] = c["ssc"] * rng.normal(0.90, 0.03, n)
    c["cd45"] = c["cd45"] / 10.0 ** rng.uniform(0.2, 1.0, n)
    c["cd14"] = c["cd14"] * 10.0 ** (0.35 * rng.standard_normal(n))
    c["fitc"] = c["fitc"] * 2.0
    c["af_pe"] = c["af_pe"] * 3.0
    c["abc"] = c["abc"] * rng.uniform(0.2, 1.0, n) + lognormal(rng, 150, 0.4, n)  # non-specific binding
    return c


def blood_events(
    rng: np.random.Generator,
    n_events: int,
    hladr_abc: float,
    m: Mapping[str, float],
    *,
    scatter_scale: float,
    monocyte_fraction: float | None = None,
) -> tuple[dict, np.ndarray, dict]:
    """Cells of one tube before acquisition: (dye/scatter dict incl. ``subset``, labels, info).

    ``monocyte_fraction`` (of all events) overrides the drawn fraction of leukocytes.
    ``info`` holds the counts per label, leukocytes and monocyte subsets.
    """
    n = int(n_events)
    n_off = max(1, round(m["offscale_fraction_of_events"] * n))
    n_dbl = round(m["doublet_fraction_of_events"] * n)
    n_deb = round(m["debris_fraction_of_events"] * n)
    n_dead = round(m["dead_cell_fraction_of_events"] * n)
    n_leuk = n - n_off - n_dbl - n_deb - n_dead
    if monocyte_fraction is None:
        n_mono = round(m["monocyte_fraction_of_leukocytes"] * n_leuk)
    else:
        n_mono = round(float(monocyte_fraction) * n)
    n_mgd = round(m["mono_gran_doublet_fraction_of_monocytes"] * n_mono)
    n_lym_all = round(m["lymphocyte_fraction_of_leukocytes"] * n_leuk)
    n_b = round(m["b_cell_fraction_of_lymphocytes"] * n_lym_all)
    n_ig = round(m["immature_granulocyte_fraction_of_leukocytes"] * n_leuk)
    n_eos = round(m["eosinophil_fraction_of_leukocytes"] * n_leuk)
    n_baso = round(m["basophil_fraction_of_leukocytes"] * n_leuk)
    n_gran = n_leuk - n_mgd - n_mono - n_lym_all - n_ig - n_eos - n_baso
    if n_gran < 0 or n_leuk < 0:
        raise ValueError("monocyte_fraction too large for the other populations")
    counts = {"debris": n_deb, "lymphocyte": n_lym_all - n_b, "b_cell": n_b, "monocyte": n_mono,
              "immature_granulocyte": n_ig, "granulocyte": n_gran, "eosinophil": n_eos,
              "basophil": n_baso}
    parts = [_cells(rng, k, v, m, hladr_abc, centred=True) for k, v in counts.items()]
    weights = {k: float(counts[k]) for k in LEUKOCYTE_LABELS}
    dead = _dead(rng, n_dead, m, hladr_abc, weights)
    overlap = m["doublet_height_overlap_max"]
    dbl = doublets(_pool(rng, n_dbl, m, hladr_abc, weights), _pool(rng, n_dbl, m, hladr_abc, weights),
                 rng, overlap)
    partner = {"granulocyte": float(max(n_gran, 1)), "immature_granulocyte": float(n_ig)}
    mgd = doublets(_cells(rng, "monocyte", n_mgd, m, hladr_abc), _pool(rng, n_mgd, m, hladr_abc, partner),
                 rng, overlap)
    clump = _pool(rng, n_off, m, hladr_abc, weights)
    for _ in range(3):
        clump = doublets(clump, _pool(rng, n_off, m, hladr_abc, weights), rng, 0.45)
    clump["fsc"] = rng.uniform(0.95, 1.6, n_off) / scatter_scale
    clump["ssc"] = rng.uniform(0.4, 1.6, n_off) / scatter_scale
    clump["fsc_h"] = clump["fsc"] * 0.7
    clump["ssc_h"] = clump["ssc"] * 0.8
    ev = concat_events([*parts, dead, dbl, mgd, clump])
    labels = np.concatenate(
        [np.full(v, k) for k, v in counts.items()]
        + [np.full(n_dead, "dead_cell"), np.full(n_dbl, "doublet"), np.full(n_mgd, "mono_gran_doublet"),
           np.full(n_off, "offscale")]
    )
    mono_sub = ev["subset"][labels == "monocyte"]
    n_leuk_singlets = int(sum(counts[k] for k in LEUKOCYTE_LABELS))
    info = {
        "n_leukocytes": n_leuk_singlets,
        "monocyte_subsets": {s: int((mono_sub == s).sum()) for s in ("classical", "intermediate",
                                                                       "non_classical")},
        "monocyte_fraction_of_leukocytes": n_mono / n_leuk_singlets if n_leuk_singlets else 0.0,
    }
    return ev, labels, info


def carry_over_cells(rng: np.random.Generator, n: int) -> dict:
    """Stray cells of a stained healthy sample (for bead tubes)."""
    m = draw_morphology(rng, PROFILES["healthy"])
    abc = float(10 ** rng.uniform(math.log10(500), math.log10(60_000)))
    return _pool(rng, n, m, abc, {"lymphocyte": 25, "b_cell": 4, "monocyte": 7, "granulocyte": 60})
