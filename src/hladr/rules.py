"""The versioned rule table: phenotype thresholds, QC limits, the automated gate's limits, calibration acceptance.

Every number that decides a call lives in one TOML table under ``data/rules/``;
code reads it through :func:`load_rules` and never repeats a threshold as a literal.
:func:`rules_from_table` checks every key of a table (present, of its type, finite)
and refuses one that is not with a ``ConfigError`` naming the key.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from .errors import ConfigError

__all__ = ["RuleSet", "GatingRules", "ValidationLimits", "load_rules", "rules_from_table", "DEFAULT_RULESET"]

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
class ValidationLimits:
    """Acceptance limits of ``hladr validate`` on simulated runs with ground truth (``[validation]``).

    Tolerances are fractions (``abc_tolerance = 0.05``: within 5 %) except the calibration's, which
    are in the fit's own units (slope; intercept in log10 PE per bead). Shares are of tubes, 0-1.
    """

    abc_tolerance: float
    min_abc_within_share: float
    monocyte_count_tolerance: float
    min_count_within_share: float
    min_phenotype_agreement: float
    max_wrong_calls: int
    max_fail_share: float
    slope_tolerance: float
    intercept_tolerance: float


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
    validation: ValidationLimits

    @property
    def label(self) -> str:
        """``id@version``, as written into every result."""
        return f"{self.id}@{self.version}"


def load_rules(ruleset_id: str = DEFAULT_RULESET) -> RuleSet:
    """Load and validate a rule table shipped with hladr (``data/rules/<ruleset_id>.toml``).

    Raises
    ------
    ConfigError
        No such rule set, or its table is not valid (see :func:`rules_from_table`).
    """
    try:
        text = resources.files("hladr").joinpath(f"data/rules/{ruleset_id}.toml").read_text()
    except FileNotFoundError:
        raise ConfigError(f"unknown rule set {ruleset_id!r}") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"rule set {ruleset_id!r} is not valid TOML: {exc}") from None
    return rules_from_table(table, name=ruleset_id)


def rules_from_table(table: Mapping[str, Any], *, name: str) -> RuleSet:
    """A ``RuleSet`` from a parsed rule table (the TOML's sections and keys), every key checked.

    A threshold must be a finite number (an integer or a float, not a boolean or text:
    ``"4420"`` or ``nan`` would compare wrongly or silently never), a count a whole number
    (``1000.5`` monocytes is refused, not truncated), the id and version text. Keys
    the loader does not use (``source``, comments) are allowed.

    Raises
    ------
    ConfigError
        One line naming the rule set and the key (``section.key``) that is missing or
        has the wrong type, or a value outside what the key allows.
    """
    def get(section: str, key: str, kind: type) -> Any:
        return _value(table, section, key, kind, name)

    def num(section: str, key: str) -> float:
        return get(section, key, float)

    rules = RuleSet(
        id=get("ruleset", "id", str),
        version=get("ruleset", "version", str),
        mals_ferritin_ng_ml=num("phenotype", "mals_ferritin_ng_ml"),
        immunoparalysis_hladr_abc=num("phenotype", "immunoparalysis_hladr_abc"),
        ferritin_pmol_per_ng=num("phenotype", "ferritin_pmol_per_ng"),
        ferritin_max_ng_ml=num("phenotype", "ferritin_max_ng_ml"),
        reversal_hladr_abc=num("followup", "reversal_hladr_abc"),
        reversal_ferritin_ng_ml=num("followup", "reversal_ferritin_ng_ml"),
        mals_improving_drop=num("followup", "mals_improving_drop"),
        monocytes_fail_below=get("qc", "monocytes_fail_below", int),
        monocytes_warn_below=get("qc", "monocytes_warn_below", int),
        gating=GatingRules(
            max_monocyte_fraction=num("gating", "max_monocyte_fraction"),
            min_separation=num("gating", "min_separation"),
            max_scatter_spread=num("gating", "max_scatter_spread"),
            min_hladr_ratio=num("gating", "min_hladr_ratio"),
            max_median_disagreement=num("gating", "max_median_disagreement"),
            min_agreement_jaccard=num("gating", "min_agreement_jaccard"),
            min_monocyte_share=num("gating", "min_monocyte_share"),
            debris_fsc_ratio=num("gating", "debris_fsc_ratio"),
            granulocyte_ssc_ratio=num("gating", "granulocyte_ssc_ratio"),
            mixture_components=get("gating", "mixture_components", int),
            merge_distance=num("gating", "merge_distance"),
            kmeans_clusters=get("gating", "kmeans_clusters", int),
            min_posterior=num("gating", "min_posterior"),
            ellipsoid_quantile=num("gating", "ellipsoid_quantile"),
        ),
        cal_r2_min=num("calibration", "r2_min"),
        cal_slope_min=num("calibration", "slope_min"),
        cal_slope_max=num("calibration", "slope_max"),
        cal_saturation_sd=num("calibration", "saturation_sd"),
        cal_min_levels=get("calibration", "min_levels", int),
        cal_max_days=get("calibration", "max_days_beads_to_sample", int),
        cal_expired_lot=get("calibration", "expired_lot", str),
        validation=ValidationLimits(
            abc_tolerance=num("validation", "abc_tolerance"),
            min_abc_within_share=num("validation", "min_abc_within_share"),
            monocyte_count_tolerance=num("validation", "monocyte_count_tolerance"),
            min_count_within_share=num("validation", "min_count_within_share"),
            min_phenotype_agreement=num("validation", "min_phenotype_agreement"),
            max_wrong_calls=get("validation", "max_wrong_calls", int),
            max_fail_share=num("validation", "max_fail_share"),
            slope_tolerance=num("validation", "slope_tolerance"),
            intercept_tolerance=num("validation", "intercept_tolerance"),
        ),
    )
    if rules.cal_expired_lot not in ("warn", "fail"):
        raise ConfigError(f"rule set {name!r}: calibration.expired_lot must be 'warn' or 'fail'")
    _check_validation(rules.validation, name)
    return rules


def _check_validation(v: ValidationLimits, name: str) -> None:
    """Shares are fractions in [0, 1], tolerances positive, wrong calls a count (a limit that can never
    fail, or never pass, is a typing error, refused with its key)."""
    for key in ("min_abc_within_share", "min_count_within_share", "min_phenotype_agreement", "max_fail_share"):
        if not 0 <= getattr(v, key) <= 1:
            raise ConfigError(f"rule set {name!r}: validation.{key} must be a share from 0 to 1, not {getattr(v, key)}")
    for key in ("abc_tolerance", "monocyte_count_tolerance", "slope_tolerance", "intercept_tolerance"):
        if not getattr(v, key) > 0:
            raise ConfigError(f"rule set {name!r}: validation.{key} must be greater than 0, not {getattr(v, key)}")
    if v.max_wrong_calls < 0:
        raise ConfigError(f"rule set {name!r}: validation.max_wrong_calls must be 0 or more, not {v.max_wrong_calls}")


_KINDS = {float: "a finite number", int: "a whole number", str: "text"}


def _value(table: Mapping[str, Any], section: str, key: str, kind: type, name: str) -> Any:
    """``table[section][key]`` checked to be of ``kind`` (float: any finite int or float; never a bool)."""
    part = table.get(section)
    if not isinstance(part, Mapping):
        what = "is missing" if part is None else "must be a table"
        raise ConfigError(f"rule set {name!r}: section [{section}] {what}")
    if key not in part:
        raise ConfigError(f"rule set {name!r}: {section}.{key} is missing")
    value = part[key]
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    else:
        ok = isinstance(value, kind) and not isinstance(value, bool)
    if not ok:
        shown = repr(value) if isinstance(value, int | float | str) else type(value).__name__
        raise ConfigError(f"rule set {name!r}: {section}.{key} must be {_KINDS[kind]}, not {shown[:40]}")
    return kind(value)
