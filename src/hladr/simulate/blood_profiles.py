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

:mod:`hladr.simulate.blood_events` turns a drawn picture into the events of one tube.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

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
    "format_profile_table",
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
