"""The versioned rule table: phenotype thresholds, QC limits, calibration acceptance.

Every number that decides a call lives in one TOML table under ``data/rules/``;
code reads it through :func:`load_rules` and never repeats a threshold as a literal.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources

from .errors import ConfigError

__all__ = ["RuleSet", "GatingRules", "load_rules", "DEFAULT_RULESET"]

DEFAULT_RULESET = "immunosep-2025"


@dataclass(frozen=True)
class GatingRules:
    """Limits of the automated gate's naming and self-check (``[gating]``; SPEC.md section 4)."""

    max_monocyte_fraction: float
    min_separation: float
    max_scatter_spread: float
    min_hladr_ratio: float
    max_median_disagreement: float
    min_agreement_jaccard: float
    min_monocyte_share: float
    debris_fsc_ratio: float
    granulocyte_ssc_ratio: float
    mixture_components: int
    merge_distance: float
    kmeans_clusters: int
    min_posterior: float
    ellipsoid_quantile: float


@dataclass(frozen=True)
class RuleSet:
    """Thresholds of one rule-set version (see ``data/rules/<id>.toml``)."""

    id: str
    version: str
    mals_ferritin_ng_ml: float
    immunoparalysis_hladr_abc: float
    ferritin_pmol_per_ng: float
    ferritin_max_ng_ml: float
    reversal_hladr_abc: float
    reversal_ferritin_ng_ml: float
    mals_improving_drop: float
    monocytes_fail_below: int
    monocytes_warn_below: int
    gating: GatingRules
    cal_r2_min: float
    cal_slope_min: float
    cal_slope_max: float
    cal_saturation_sd: float
    cal_min_levels: int
    cal_max_days: int
    cal_expired_lot: str

    @property
    def label(self) -> str:
        """``id@version``, as written into every result."""
        return f"{self.id}@{self.version}"


def load_rules(ruleset_id: str = DEFAULT_RULESET) -> RuleSet:
    """Load and validate a rule table shipped with hladr."""
    try:
        text = resources.files("hladr").joinpath(f"data/rules/{ruleset_id}.toml").read_text()
    except FileNotFoundError:
        raise ConfigError(f"unknown rule set {ruleset_id!r}") from None
    t = tomllib.loads(text)
    try:
        p, f, q, c, gt = t["phenotype"], t["followup"], t["qc"], t["calibration"], t["gating"]
        rules = RuleSet(
            id=str(t["ruleset"]["id"]),
            version=str(t["ruleset"]["version"]),
            mals_ferritin_ng_ml=float(p["mals_ferritin_ng_ml"]),
            immunoparalysis_hladr_abc=float(p["immunoparalysis_hladr_abc"]),
            ferritin_pmol_per_ng=float(p["ferritin_pmol_per_ng"]),
            ferritin_max_ng_ml=float(p["ferritin_max_ng_ml"]),
            reversal_hladr_abc=float(f["reversal_hladr_abc"]),
            reversal_ferritin_ng_ml=float(f["reversal_ferritin_ng_ml"]),
            mals_improving_drop=float(f["mals_improving_drop"]),
            monocytes_fail_below=int(q["monocytes_fail_below"]),
            monocytes_warn_below=int(q["monocytes_warn_below"]),
            gating=GatingRules(
                max_monocyte_fraction=float(gt["max_monocyte_fraction"]),
                min_separation=float(gt["min_separation"]),
                max_scatter_spread=float(gt["max_scatter_spread"]),
                min_hladr_ratio=float(gt["min_hladr_ratio"]),
                max_median_disagreement=float(gt["max_median_disagreement"]),
                min_agreement_jaccard=float(gt["min_agreement_jaccard"]),
                min_monocyte_share=float(gt["min_monocyte_share"]),
                debris_fsc_ratio=float(gt["debris_fsc_ratio"]),
                granulocyte_ssc_ratio=float(gt["granulocyte_ssc_ratio"]),
                mixture_components=int(gt["mixture_components"]),
                merge_distance=float(gt["merge_distance"]),
                kmeans_clusters=int(gt["kmeans_clusters"]),
                min_posterior=float(gt["min_posterior"]),
                ellipsoid_quantile=float(gt["ellipsoid_quantile"]),
            ),
            cal_r2_min=float(c["r2_min"]),
            cal_slope_min=float(c["slope_min"]),
            cal_slope_max=float(c["slope_max"]),
            cal_saturation_sd=float(c["saturation_sd"]),
            cal_min_levels=int(c["min_levels"]),
            cal_max_days=int(c["max_days_beads_to_sample"]),
            cal_expired_lot=str(c["expired_lot"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"rule set {ruleset_id!r} is invalid: {exc}") from None
    if rules.cal_expired_lot not in ("warn", "fail"):
        raise ConfigError(f"rule set {ruleset_id!r}: calibration.expired_lot must be 'warn' or 'fail'")
    return rules
