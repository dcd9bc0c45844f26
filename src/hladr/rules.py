"""The versioned rule table: phenotype thresholds, QC limits, calibration acceptance.

Every number that decides a call lives in one TOML table under ``data/rules/``;
code reads it through :func:`load_rules` and never repeats a threshold as a literal.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources

from .errors import ConfigError

__all__ = ["RuleSet", "load_rules", "DEFAULT_RULESET"]

DEFAULT_RULESET = "immunosep-2025"


@dataclass(frozen=True)
class RuleSet:
    """Thresholds of one rule-set version (see ``data/rules/<id>.toml``)."""

    id: str
    version: str
    mals_ferritin_ng_ml: float
    immunoparalysis_hladr_abc: float
    ferritin_pmol_per_ng: float
    reversal_hladr_abc: float
    reversal_ferritin_ng_ml: float
    mals_improving_drop: float
    monocytes_fail_below: int
    monocytes_warn_below: int
    gate_min_separation: float
    gate_max_monocyte_fraction: float
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
        p, f, q, c = t["phenotype"], t["followup"], t["qc"], t["calibration"]
        rules = RuleSet(
            id=str(t["ruleset"]["id"]),
            version=str(t["ruleset"]["version"]),
            mals_ferritin_ng_ml=float(p["mals_ferritin_ng_ml"]),
            immunoparalysis_hladr_abc=float(p["immunoparalysis_hladr_abc"]),
            ferritin_pmol_per_ng=float(p["ferritin_pmol_per_ng"]),
            reversal_hladr_abc=float(f["reversal_hladr_abc"]),
            reversal_ferritin_ng_ml=float(f["reversal_ferritin_ng_ml"]),
            mals_improving_drop=float(f["mals_improving_drop"]),
            monocytes_fail_below=int(q["monocytes_fail_below"]),
            monocytes_warn_below=int(q["monocytes_warn_below"]),
            gate_min_separation=float(t["gating"]["min_cd14_separation"]),
            gate_max_monocyte_fraction=float(t["gating"]["max_monocyte_fraction"]),
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
