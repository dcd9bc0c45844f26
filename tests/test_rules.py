"""rules: the shipped rule table loads with the thresholds of SPEC.md; a table with a missing or
wrong-typed key is refused with a ``ConfigError`` naming the key."""

from __future__ import annotations

import copy
import dataclasses
import math
import tomllib
from importlib import resources

import pytest

from hladr.errors import ConfigError
from hladr.rules import DEFAULT_RULESET, GatingRules, RuleSet, ValidationLimits, load_rules, rules_from_table

pytestmark = pytest.mark.filterwarnings("error")


def _shipped() -> dict:
    text = resources.files("hladr").joinpath(f"data/rules/{DEFAULT_RULESET}.toml").read_text()
    return tomllib.loads(text)


def _keys(table: dict) -> list[tuple[str, str]]:
    """Every (section, key) of the shipped table that the loader reads (all but ``ruleset.source``)."""
    return [(s, k) for s, part in table.items() for k in part if (s, k) != ("ruleset", "source")]


# --------------------------------------------------------------------------- the shipped table
def test_the_shipped_table_holds_the_thresholds_of_the_spec():
    r = load_rules()
    assert r.label == "immunosep-2025@5"
    # SPEC.md section 2: MALS above 4420 ng/mL, immunoparalysis below 5000 AB/C; pmol/L / 2.247 = ng/mL
    assert (r.mals_ferritin_ng_ml, r.immunoparalysis_hladr_abc, r.ferritin_pmol_per_ng) == (4420.0, 5000.0, 2.247)
    # follow-up: reversed above 8000 AB/C with ferritin below 4420; MALS improving after a 15 % fall
    assert (r.reversal_hladr_abc, r.reversal_ferritin_ng_ml, r.mals_improving_drop) == (8000.0, 4420.0, 0.15)
    # section 4: fewer than 1000 monocytes fail, fewer than 3000 warn
    assert (r.monocytes_fail_below, r.monocytes_warn_below) == (1000, 3000)
    # section 3: R2 >= 0.98, slope 1 +- 0.15, saturation within 2.5 SD, at least 3 levels; same day
    assert (r.cal_r2_min, r.cal_slope_min, r.cal_slope_max, r.cal_saturation_sd, r.cal_min_levels) == (
        0.98, 0.85, 1.15, 2.5, 3)
    assert (r.cal_max_days, r.cal_expired_lot) == (0, "warn")
    # hladr validate's acceptance (issue 17): within 5 % of true AB/C, counts within 15 %, no wrong call
    v = r.validation
    assert (v.abc_tolerance, v.monocyte_count_tolerance, v.max_wrong_calls) == (0.05, 0.15, 0)


def test_types_are_those_of_the_record():
    r = load_rules()
    assert isinstance(r, RuleSet) and isinstance(r.gating, GatingRules)
    assert isinstance(r.validation, ValidationLimits)
    checked = 0
    for rec in (r, r.gating, r.validation):
        for f in dataclasses.fields(rec):
            if f.type in ("float", "int", "str"):
                assert type(getattr(rec, f.name)).__name__ == f.type, f.name  # 4420 -> 4420.0; 1000 stays int
                checked += 1
    assert checked == 41  # every field but ``gating`` and ``validation``


def test_the_loader_reads_every_key_of_the_shipped_table():
    table = _shipped()
    assert rules_from_table(table, name="copy") == load_rules()
    assert len(_keys(table)) == 2 + 4 + 3 + 2 + 14 + 7 + 9


def test_unknown_rule_set():
    with pytest.raises(ConfigError, match="unknown rule set 'nope-1999'"):
        load_rules("nope-1999")


# --------------------------------------------------------------------------- refused tables
@pytest.mark.parametrize(("section", "key"), _keys(_shipped()))
def test_a_missing_key_is_named(section, key):
    table = copy.deepcopy(_shipped())
    del table[section][key]
    with pytest.raises(ConfigError) as exc:
        rules_from_table(table, name="edited")
    assert str(exc.value) == f"rule set 'edited': {section}.{key} is missing"


@pytest.mark.parametrize("section", ["phenotype", "qc", "gating", "calibration", "validation"])
def test_a_missing_or_flat_section_is_named(section):
    table = copy.deepcopy(_shipped())
    del table[section]
    with pytest.raises(ConfigError, match=rf"section \[{section}\] is missing"):
        rules_from_table(table, name="edited")
    table[section] = 3
    with pytest.raises(ConfigError, match=rf"section \[{section}\] must be a table"):
        rules_from_table(table, name="edited")


@pytest.mark.parametrize(("section", "key", "value", "want"), [
    ("phenotype", "mals_ferritin_ng_ml", "4420", "a finite number"),      # text: would compare as text
    ("phenotype", "immunoparalysis_hladr_abc", True, "a finite number"),  # a boolean is not 1
    ("phenotype", "immunoparalysis_hladr_abc", math.nan, "a finite number"),
    ("followup", "reversal_hladr_abc", math.inf, "a finite number"),
    ("followup", "mals_improving_drop", [0.15], "a finite number"),
    ("qc", "monocytes_fail_below", 1000.5, "a whole number"),             # refused, never truncated to 1000
    ("qc", "monocytes_warn_below", "3000", "a whole number"),
    ("gating", "mixture_components", False, "a whole number"),
    ("calibration", "min_levels", 3.0, "a whole number"),
    ("calibration", "expired_lot", 1, "text"),
    ("ruleset", "version", 4, "text"),
    ("validation", "max_wrong_calls", 0.5, "a whole number"),
    ("validation", "abc_tolerance", "5 %", "a finite number"),
])
def test_a_wrong_typed_key_is_named(section, key, value, want):
    table = copy.deepcopy(_shipped())
    table[section][key] = value
    with pytest.raises(ConfigError) as exc:
        rules_from_table(table, name="edited")
    msg = str(exc.value)
    assert msg.startswith(f"rule set 'edited': {section}.{key} must be {want}, not ")
    assert "\n" not in msg


def test_a_whole_number_is_a_valid_threshold():
    table = copy.deepcopy(_shipped())
    table["calibration"]["r2_min"] = 1  # TOML integer where a float is expected: the same number
    r = rules_from_table(table, name="edited")
    assert r.cal_r2_min == 1.0 and isinstance(r.cal_r2_min, float)


def test_expired_lot_is_warn_or_fail():
    table = copy.deepcopy(_shipped())
    table["calibration"]["expired_lot"] = "ignore"
    with pytest.raises(ConfigError, match="calibration.expired_lot must be 'warn' or 'fail'"):
        rules_from_table(table, name="edited")
    table["calibration"]["expired_lot"] = "fail"
    assert rules_from_table(table, name="edited").cal_expired_lot == "fail"


@pytest.mark.parametrize(("key", "value", "want"), [
    ("min_abc_within_share", 90.0, "a share from 0 to 1"),   # a percentage where a share is meant
    ("max_fail_share", -0.1, "a share from 0 to 1"),
    ("min_phenotype_agreement", 1.5, "a share from 0 to 1"),
    ("abc_tolerance", 0.0, "greater than 0"),                 # nothing could ever be within it
    ("intercept_tolerance", -0.05, "greater than 0"),
    ("max_wrong_calls", -1, "0 or more"),
])
def test_validation_limits_out_of_range_are_named(key, value, want):
    table = copy.deepcopy(_shipped())
    table["validation"][key] = value
    with pytest.raises(ConfigError) as exc:
        rules_from_table(table, name="edited")
    assert str(exc.value) == f"rule set 'edited': validation.{key} must be {want}, not {value}"
