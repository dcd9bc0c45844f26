"""Blood pictures for the simulator: healthy and septic lysed whole blood, drawn from ranges.

A *profile* (``healthy``, ``sepsis``, ``severe-sepsis``) is a table of ranges,
one per *feature* (a population's share, position, spread or a marker level);
every tube draws its own value of every feature inside its range
(:func:`draw_morphology`), so a run of hundreds of tubes sees hundreds of
different pictures. Features are drawn independently, so they occur alone and
in every combination; the septic ranges reach the hard end (monocytopenia, a
large immature-granulocyte population in the monocytes' side scatter, dim CD14
monocytes, broad or bimodal HLA-DR) and the log-uniform draws make it common.

Callers force any feature with ``features``: a mapping ``{name: (lo, hi)}`` (or
a single value), the name of a scenario of :data:`SCENARIOS` (``monocytopenic``,
``left_shift``, ...) or a sequence of both, applied left to right over the
profile (:func:`resolve_features`). Every feature draws exactly one uniform
number (``hladr_bimodal`` two) in table order whatever its range, so forcing one
feature leaves every other drawn value of the same seed unchanged.

:func:`blood_events` turns a drawn picture into the cells of one tube (scatter
as fractions of the instrument's scatter range, dyes in molecules) with one
label and one subset per event; :mod:`hladr.simulate` acquires and writes them.

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
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError

__all__ = [
    "PROFILE_NAMES",
    "FEATURES",
    "PROFILES",
    "SCENARIOS",
    "RUN_DRAWS",
    "CELL_LABELS",
    "LEUKOCYTE_LABELS",
    "SUBSETS",
    "Feature",
    "resolve_features",
    "normalise_features",
    "draw_morphology",
    "blood_events",
    "format_profile_table",
    "lognormal",
    "concat_events",
    "doublets",
]

PROFILE_NAMES = ("healthy", "sepsis", "severe-sepsis")

# Labels of a sample tube's events (order = code order in truth_events files).
CELL_LABELS = (
    "lymphocyte", "b_cell", "monocyte", "immature_granulocyte", "granulocyte", "eosinophil",
    "basophil", "dead_cell", "debris", "doublet", "mono_gran_doublet", "offscale",
)
LEUKOCYTE_LABELS = CELL_LABELS[:7]
SUBSETS = ("", "t", "nk", "classical", "intermediate", "non_classical", *LEUKOCYTE_LABELS)


@dataclass(frozen=True)
class Feature:
    """One drawn quantity: ``scale`` is ``log`` (log-uniform when lo > 0), ``linear`` or ``chance``.

    ``chance``: the range is a probability; the tube has the feature (drawn
    value 1.0) or not (0.0); ``(1, 1)`` forces it.
    """

    name: str
    scale: str
    kind: str  # "fraction" (0-1), "positive" (> 0), "decades" (any), "chance"
    healthy: tuple[float, float]
    sepsis: tuple[float, float]
    severe: tuple[float, float]


def _f(name, scale, kind, healthy, sepsis, severe) -> Feature:
    return Feature(name, scale, kind, tuple(map(float, healthy)), tuple(map(float, sepsis)),
                   tuple(map(float, severe)))


# ------------------------------------------------------------------ the profile table
# Columns: name, scale, kind, healthy, sepsis, severe-sepsis. Scatter positions are
# fractions of the instrument's scatter range; dyes are molecules at the nominal gain
# (CD14 PerCP-Cy5.5, CD45); fractions of "leukocytes" are of the leukocyte singlets
# (lymphocytes, B, monocytes, immature and mature granulocytes, eosinophils,
# basophils); mature neutrophils are the rest.
_TABLE = (
    # -- composition -------------------------------------------------------------------
    # Monocytes 2-10 % of leukocytes in adult reference differentials (typically 4-8 %).
    # In sepsis monocytes fall (>95 % transient drop after LPS in human endotoxemia,
    # Tak et al., J Leukoc Biol 2017; lower counts in non-survivors, Burns Trauma 2021
    # tkaa040) and are diluted by neutrophilia: down to ~1 % of leukocytes.
    _f("monocyte_fraction_of_leukocytes", "log", "fraction", (0.04, 0.10), (0.01, 0.08),
       (0.008, 0.05)),
    # Lymphocytes 20-40 % in health; septic lymphopenia (ALC < 1e9/L at WBC 10-25e9/L,
    # neutrophil/lymphocyte ratio 10-40 in MIMIC sepsis cohorts; Hotchkiss: apoptosis).
    _f("lymphocyte_fraction_of_leukocytes", "log", "fraction", (0.25, 0.38), (0.04, 0.20),
       (0.025, 0.10)),
    # B cells 5-15 % of lymphocytes; relatively spared by septic T-cell apoptosis.
    _f("b_cell_fraction_of_lymphocytes", "linear", "fraction", (0.08, 0.15), (0.08, 0.25),
       (0.08, 0.30)),
    # NK cells 5-20 % of lymphocytes (labelled lymphocyte, subset nk).
    _f("nk_fraction_of_lymphocytes", "linear", "fraction", (0.05, 0.20), (0.05, 0.25),
       (0.05, 0.25)),
    # Immature granulocytes (promyelocytes, myelocytes, metamyelocytes, bands): IG < 0.5 %
    # in health (haematology-analyser reference), >= 2-3 % with infection/sepsis
    # (Nierhaus et al., BMC Immunol 2013; Arneth et al., J Clin Lab Anal 2014), left shift
    # up to 20-30 % of leukocytes in septic shock.
    _f("immature_granulocyte_fraction_of_leukocytes", "log", "fraction", (0.0, 0.005),
       (0.005, 0.10), (0.03, 0.30)),
    # Eosinophils 1-6 % in health; eosinopenia in sepsis (median 0/mm3, Anand et al.,
    # Indian J Crit Care Med 2016; meta-analysis BMC Infect Dis 2021 21:6150).
    _f("eosinophil_fraction_of_leukocytes", "linear", "fraction", (0.01, 0.06), (0.0, 0.01),
       (0.0, 0.003)),
    # Basophils 0.2-1 % in health, fewer in acute infection.
    _f("basophil_fraction_of_leukocytes", "linear", "fraction", (0.002, 0.01), (0.0, 0.005),
       (0.0, 0.003)),
    # -- other events ----------------------------------------------------------------
    # Lysis debris, red-cell ghosts, platelets (and platelet clumps) below the cells;
    # 5-15 % in fresh healthy blood (the former model); ICU samples (anaemia, transfusion,
    # thrombocytopathy, microparticles, transport delay) carry more. A modelling range.
    _f("debris_fraction_of_events", "linear", "fraction", (0.05, 0.15), (0.08, 0.25),
       (0.12, 0.35)),
    # Apoptotic/necrotic leukocytes (low FSC, SSC high for the FSC, dim variable markers,
    # non-specific antibody binding): < 2 % in fresh blood; septic lymphocyte apoptosis
    # (Hotchkiss) and sample age raise it. A modelling range.
    _f("dead_cell_fraction_of_events", "linear", "fraction", (0.005, 0.02), (0.02, 0.08),
       (0.03, 0.12)),
    # Coincident pairs (FSC-A summed, FSC-H = max + f*min): 3-5 % (the former model); more
    # with leukocytosis at a fixed lysis dilution.
    _f("doublet_fraction_of_events", "linear", "fraction", (0.03, 0.05), (0.03, 0.08),
       (0.04, 0.10)),
    # Monocyte-granulocyte aggregates, per monocyte singlet: a few % in health, raised with
    # activated myeloid cells and leukocytosis (monocyte-platelet/neutrophil aggregates
    # rise in sepsis and with mortality: Wu et al., Biomarkers 2016).
    _f("mono_gran_doublet_fraction_of_monocytes", "linear", "fraction", (0.01, 0.05),
       (0.05, 0.30), (0.10, 0.50)),
    # Upper end of f in FSC-H = max + f*min for doublets: side-by-side aggregates have
    # a singlet-like FSC-A/FSC-H (the former model used 0.45).
    _f("doublet_height_overlap_max", "linear", "fraction", (0.45, 0.45), (0.45, 0.65),
       (0.50, 0.80)),
    # Clumps at the scatter maximum (fibrin, aggregates): ~0.2 % (the former model).
    _f("offscale_fraction_of_events", "linear", "fraction", (0.001, 0.003), (0.002, 0.006),
       (0.002, 0.008)),
    # -- monocyte subsets (Ziegler-Heitbrock et al., Blood 2010 nomenclature) ------------
    # CD14+CD16+ 9 +- 5 % of monocytes in health, > 50 % in 3/18 septicemia patients
    # (Fingerle et al., Blood 1993); CD14dim/CD16+ counts raised in Gram-negative sepsis
    # (Gainaru et al., Crit Care 2018) but reduced in other cohorts (Poehlmann et al.,
    # Crit Care 2009): wide ranges.
    _f("intermediate_fraction_of_monocytes", "linear", "fraction", (0.02, 0.06), (0.05, 0.30),
       (0.05, 0.40)),
    _f("nonclassical_fraction_of_monocytes", "linear", "fraction", (0.05, 0.12), (0.02, 0.20),
       (0.01, 0.25)),
    # CD14++ (classical, intermediate) vs CD14+ / dim (non-classical).
    _f("intermediate_cd14_decades_below_classical", "linear", "decades", (0.0, 0.3), (0.0, 0.3),
       (0.0, 0.3)),
    _f("nonclassical_cd14_decades_below_classical", "linear", "decades", (0.6, 1.0), (0.5, 1.2),
       (0.5, 1.2)),
    # -- monocytes ------------------------------------------------------------------
    # Classical monocyte CD14 (12,000-30,000 in the former healthy model). CD14 density
    # substantially decreased on CD14++ monocytes in 9/11 septicemia patients (Fingerle
    # 1993), wide inter-individual variation in septic shock (Janols et al., Eur J Clin
    # Microbiol 2014): several-fold lower.
    _f("monocyte_cd14", "log", "positive", (12_000, 30_000), (3_000, 20_000), (1_500, 10_000)),
    _f("monocyte_cd14_log10_sd", "linear", "positive", (0.12, 0.18), (0.15, 0.28), (0.18, 0.32)),
    # Monocyte size and its spread: monocyte distribution width rises in sepsis (Crouser et
    # al., Chest 2017; Clin Lab Int 2020 review).
    _f("monocyte_fsc", "linear", "positive", (0.29, 0.34), (0.28, 0.37), (0.28, 0.38)),
    _f("monocyte_fsc_log10_sd", "linear", "positive", (0.035, 0.045), (0.04, 0.07), (0.05, 0.08)),
    # Raised monocyte SSC in sepsis (activation, vacuolation); towards the left-shifted
    # granulocytes.
    _f("monocyte_ssc", "linear", "positive", (0.10, 0.14), (0.11, 0.18), (0.12, 0.20)),
    _f("monocyte_ssc_log10_sd", "linear", "positive", (0.07, 0.09), (0.08, 0.13), (0.09, 0.14)),
    # Monocyte CD45 (CD45-bright myeloid cells, between neutrophils and lymphocytes; the
    # former model: 25,000). A modelling range for tube-to-tube position.
    _f("monocyte_cd45", "log", "positive", (20_000, 30_000), (18_000, 30_000), (16_000, 30_000)),
    # -- monocyte HLA-DR (the tube's median AB/C is an argument, not a feature) ----------
    # Within-tube spread: narrow in health; broad in sepsis, where the share of HLA-DR+
    # monocytes falls below 30 % (Monneret et al., Intensive Care Med 2006; Docke 1997).
    _f("hladr_log10_sd", "linear", "positive", (0.15, 0.25), (0.20, 0.40), (0.25, 0.40)),
    # Bimodal tubes: an HLA-DR-low and an HLA-DR-higher monocyte subpopulation.
    _f("hladr_bimodal", "chance", "chance", (0.0, 0.0), (0.3, 0.3), (0.5, 0.5)),
    _f("hladr_low_mode_fraction", "linear", "fraction", (0.3, 0.8), (0.3, 0.8), (0.3, 0.8)),
    _f("hladr_mode_separation_decades", "linear", "decades", (0.5, 1.0), (0.5, 1.0), (0.5, 1.0)),
    # CD14+CD16+ monocytes keep more class II than CD14++ in septicemia (Fingerle 1993).
    # 0 in healthy: there HLA-DR stays independent of CD14 (the reference picture).
    _f("hladr_cd16_shift_decades", "linear", "decades", (0.0, 0.0), (0.0, 0.3), (0.0, 0.3)),
    # B-cell HLA-DR (20,000-40,000 AB/C, the former model).
    _f("b_cell_hladr_abc", "log", "positive", (20_000, 40_000), (20_000, 40_000),
       (20_000, 40_000)),
    # -- mature neutrophils ----------------------------------------------------------
    # Neutrophil size up and granularity (SSC) down with activation/degranulation and
    # left shift (haematology-analyser cell population data in sepsis: NE-FSC up,
    # NE-SSC down; Juntendo Med J 2024 70:114).
    _f("neutrophil_fsc", "linear", "positive", (0.35, 0.40), (0.34, 0.44), (0.33, 0.45)),
    _f("neutrophil_ssc", "linear", "positive", (0.33, 0.45), (0.26, 0.42), (0.22, 0.40)),
    _f("neutrophil_ssc_log10_sd", "linear", "positive", (0.06, 0.08), (0.07, 0.11), (0.08, 0.12)),
    # Neutrophils are CD14-dim, 1-1.5 decades below monocytes in health (the former model);
    # neutrophil CD14 rises on activation while monocyte CD14 falls: the gap narrows.
    _f("neutrophil_cd14_decades_below_monocytes", "linear", "decades", (1.0, 1.5), (0.7, 1.4),
       (0.5, 1.2)),
    # CD45-dim relative to lymphocytes (40,000) and monocytes (25,000).
    _f("neutrophil_cd45", "log", "positive", (7_000, 11_000), (5_000, 12_000), (4_500, 12_000)),
    # -- immature granulocytes (at the immature end of their continuum) ----------------
    # FSC similar to or above monocytes (promyelocytes and myelocytes are large cells).
    _f("ig_fsc_relative_to_monocytes", "linear", "positive", (1.0, 1.25), (1.0, 1.25),
       (1.0, 1.25)),
    # SSC below the segmented neutrophils, reaching into the monocytes (the case of the
    # issue; hypogranular maturing granulocytes have low SSC, Cytometry B / PLoS One 2013
    # e81048).
    _f("ig_ssc_relative_to_neutrophils", "linear", "positive", (0.55, 0.85), (0.35, 0.75),
       (0.30, 0.65)),
    # CD45 dimmer than mature neutrophils (mature myeloid cells are CD45-brighter than
    # promyelocytes/myelocytes: the CD45/SSC maturation pattern).
    _f("ig_cd45_relative_to_neutrophils", "linear", "positive", (0.6, 0.9), (0.4, 0.85),
       (0.35, 0.8)),
    # CD14 dim to intermediate; in severe sepsis the gap to the (CD14-low) monocytes can be
    # under one decade.
    _f("ig_cd14_decades_below_monocytes", "linear", "decades", (0.9, 1.4), (0.5, 1.2), (0.3, 1.0)),
    # -- eosinophils: very high SSC, CD45 a bit brighter than neutrophils, CD14-negative,
    #    autofluorescent (Methods Cell Biol 2011 103:221) --------------------------------
    _f("eosinophil_ssc_relative_to_neutrophils", "linear", "positive", (1.15, 1.5), (1.15, 1.5),
       (1.15, 1.5)),
    _f("eosinophil_cd45_relative_to_neutrophils", "linear", "positive", (1.2, 1.8), (1.2, 1.8),
       (1.2, 1.8)),
    # -- lymphocytes and staining --------------------------------------------------------
    _f("lymphocyte_fsc", "linear", "positive", (0.17, 0.20), (0.17, 0.20), (0.17, 0.20)),
    _f("lymphocyte_ssc", "linear", "positive", (0.040, 0.050), (0.040, 0.050), (0.040, 0.050)),
    # Tube-to-tube CD45 staining/voltage: scales every population's CD45.
    _f("cd45_stain_factor", "log", "positive", (0.8, 1.25), (0.7, 1.4), (0.7, 1.4)),
)

FEATURES: dict[str, Feature] = {f.name: f for f in _TABLE}
PROFILES: dict[str, dict[str, tuple[float, float]]] = {
    "healthy": {f.name: f.healthy for f in _TABLE},
    "sepsis": {f.name: f.sepsis for f in _TABLE},
    "severe-sepsis": {f.name: f.severe for f in _TABLE},
}

# Per-profile draws of simulate_run: the range of the patients' median monocyte AB/C
# and the mix of expected phenotypes (immunoparalysis, intermediate, MALS) before the
# forced ones. Healthy keeps the former 500-60,000. Septic: mHLA-DR < 15,000 AB/C with
# sepsis, <= 8,000 severe immunoparalysis (PMC9942705 review; Monneret, Venet), floor
# 300 AB/C; every run still has both sides of 5,000 (the forced kinds).
RUN_DRAWS: dict[str, dict[str, tuple[float, ...]]] = {
    "healthy": {"hladr_abc": (500.0, 60_000.0), "phenotype_mix": (0.35, 0.40, 0.25)},
    "sepsis": {"hladr_abc": (300.0, 15_000.0), "phenotype_mix": (0.50, 0.25, 0.25)},
    "severe-sepsis": {"hladr_abc": (300.0, 8_000.0), "phenotype_mix": (0.60, 0.15, 0.25)},
}

# Named overrides: force one feature (or a few that belong together) to its hard range.
SCENARIOS: dict[str, dict[str, tuple[float, float]]] = {
    "neutrophilia": {"lymphocyte_fraction_of_leukocytes": (0.025, 0.06),
                     "monocyte_fraction_of_leukocytes": (0.02, 0.05)},
    "left_shift": {"immature_granulocyte_fraction_of_leukocytes": (0.10, 0.30),
                   "ig_ssc_relative_to_neutrophils": (0.30, 0.55),
                   "ig_cd45_relative_to_neutrophils": (0.35, 0.6),
                   "ig_cd14_decades_below_monocytes": (0.3, 0.8)},
    "monocytopenic": {"monocyte_fraction_of_leukocytes": (0.008, 0.012)},
    "cd14_low_monocytes": {"monocyte_cd14": (1_500.0, 4_000.0),
                           "neutrophil_cd14_decades_below_monocytes": (0.5, 0.8)},
    "cd16_monocytes": {"intermediate_fraction_of_monocytes": (0.25, 0.40),
                       "nonclassical_fraction_of_monocytes": (0.15, 0.25)},
    "monocyte_ssc_high": {"monocyte_ssc": (0.17, 0.20), "monocyte_ssc_log10_sd": (0.12, 0.14)},
    "hladr_broad": {"hladr_log10_sd": (0.35, 0.40)},
    "hladr_bimodal": {"hladr_bimodal": (1.0, 1.0)},
    "aggregates": {"mono_gran_doublet_fraction_of_monocytes": (0.30, 0.50),
                   "doublet_height_overlap_max": (0.70, 0.80)},
    "dirty": {"debris_fraction_of_events": (0.25, 0.35), "dead_cell_fraction_of_events": (0.08, 0.12)},
    "eosinophilic": {"eosinophil_fraction_of_leukocytes": (0.05, 0.08)},
}


# ------------------------------------------------------------------ resolving and drawing


def _range(name: str, value) -> tuple[float, float]:
    if name not in FEATURES:
        raise ConfigError(f"unknown blood feature {name!r} (known: {', '.join(FEATURES)})")
    if isinstance(value, int | float | np.floating | np.integer):
        lo = hi = float(value)
    else:
        try:
            lo, hi = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ConfigError(f"feature {name}: give a number or a (low, high) pair, not {value!r}") from None
    feat = FEATURES[name]
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise ConfigError(f"feature {name}: need finite low <= high, not ({lo}, {hi})")
    if feat.kind in ("fraction", "chance") and not (0.0 <= lo and hi <= 1.0):
        raise ConfigError(f"feature {name}: a fraction between 0 and 1, not ({lo}, {hi})")
    if feat.kind == "positive" and lo <= 0:
        raise ConfigError(f"feature {name}: must be > 0, not ({lo}, {hi})")
    return lo, hi


def normalise_features(features) -> tuple[tuple[str, ...], dict[str, tuple[float, float]]]:
    """(scenario names, merged overrides) of a ``features`` argument.

    ``features``: None, a scenario name, a mapping ``{feature: (lo, hi) or value}``
    or a sequence of those, applied left to right.
    """
    if features is None:
        return (), {}
    items = [features] if isinstance(features, str | Mapping) else list(features)
    names: list[str] = []
    out: dict[str, tuple[float, float]] = {}
    for item in items:
        if isinstance(item, str):
            if item not in SCENARIOS:
                raise ConfigError(f"unknown blood scenario {item!r} (known: {', '.join(SCENARIOS)})")
            names.append(item)
            item = SCENARIOS[item]
        if not isinstance(item, Mapping):
            raise ConfigError(f"features: expected a scenario name or a mapping, not {item!r}")
        for k, v in item.items():
            out[str(k)] = _range(str(k), v)
    return tuple(names), out


def resolve_features(profile: str = "healthy", features=None) -> dict[str, tuple[float, float]]:
    """The ranges a tube of ``profile`` draws from, with ``features`` forced (see module doc)."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown blood profile {profile!r} (known: {', '.join(PROFILE_NAMES)})")
    ranges = dict(PROFILES[profile])
    ranges.update(normalise_features(features)[1])
    return ranges


def draw_morphology(rng: np.random.Generator, ranges: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """One tube's value of every feature (table order; one uniform per feature, two for chance)."""
    out: dict[str, float] = {}
    for feat in _TABLE:
        lo, hi = ranges[feat.name]
        u = float(rng.random())
        if feat.scale == "chance":
            p = lo + u * (hi - lo)
            out[feat.name] = 1.0 if float(rng.random()) < p else 0.0
        elif feat.scale == "log" and lo > 0:
            out[feat.name] = float(10 ** (math.log10(lo) + u * (math.log10(hi) - math.log10(lo))))
        else:
            out[feat.name] = lo + u * (hi - lo)
    return out


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


# ------------------------------------------------------------------ documentation


def format_profile_table() -> str:
    """The profile table as Markdown (feature, scale, healthy, sepsis, severe-sepsis)."""

    def fmt(r: tuple[float, float]) -> str:
        def one(v: float) -> str:
            return f"{v:,.0f}" if abs(v) >= 100 else f"{v:g}"

        return one(r[0]) if r[0] == r[1] else f"{one(r[0])}-{one(r[1])}"

    rows = ["| feature | scale | healthy | sepsis | severe-sepsis |", "|---|---|---|---|---|"]
    for f in _TABLE:
        rows.append(f"| {f.name} | {f.scale} | {fmt(f.healthy)} | {fmt(f.sepsis)} | {fmt(f.severe)} |")
    abc = " | ".join(fmt(RUN_DRAWS[k]["hladr_abc"]) for k in PROFILE_NAMES)
    mix = " | ".join("/".join(f"{v:g}" for v in RUN_DRAWS[k]["phenotype_mix"]) for k in PROFILE_NAMES)
    rows.append(f"| run: patients' median AB/C | log | {abc} |")
    rows.append(f"| run: immunoparalysis/intermediate/MALS mix | - | {mix} |")
    return "\n".join(rows)
