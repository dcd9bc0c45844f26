"""The words of a call: numbers as a person writes them (SPEC.md section 2 boundaries), and what a
missing HLA-DR value or ferritin says. Only the words are tested here; the decisions are in
test_phenotype.py and must not move (each case below also checks its label)."""

from __future__ import annotations

import math
import re

import pytest

from hladr.ferritin import parse_ferritin
from hladr.phenotype import call_followup, call_phenotype
from hladr.rules import load_rules

RULES = load_rules()
T_F = RULES.mals_ferritin_ng_ml  # 4420
T_H = RULES.immunoparalysis_hladr_abc  # 5000
T_RH = RULES.reversal_hladr_abc  # 8000


def call(hladr, text, unit=None, why=""):
    return call_phenotype(hladr, parse_ferritin(text, unit, rules=RULES), rules=RULES, hladr_why=why)


@pytest.mark.parametrize(("hladr", "label", "words"), [
    (1333.7760259884278, "immunoparalysis", "mHLA-DR 1334 AB/C < 5000"),  # the raw float
    (2669.4999, "immunoparalysis", "mHLA-DR 2669 AB/C < 5000"),
    (2669.5, "immunoparalysis", "mHLA-DR 2670 AB/C < 5000"),  # half up, as a person rounds
    (26876.31, "intermediate", "mHLA-DR 26876 AB/C >= 5000"),
    (5000.0, "intermediate", "mHLA-DR 5000 AB/C >= 5000"),  # exactly 5000 is not immunoparalysis
    (4999.5, "immunoparalysis", "mHLA-DR 4999.5 AB/C < 5000"),  # never "5000 AB/C < 5000"
    (4999.96, "immunoparalysis", "mHLA-DR 4999.96 AB/C < 5000"),
    (5000.4, "intermediate", "mHLA-DR 5000.4 AB/C >= 5000"),
])
def test_abc_is_a_whole_number_unless_rounding_would_cross_the_threshold(hladr, label, words):
    c = call(hladr, "100")
    assert c.label == label
    assert words in c.reasons, c.reasons


@pytest.mark.parametrize(("text", "unit", "label", "words"), [
    ("28.9", None, "intermediate", "ferritin 28.9 ng/mL <= 4420"),
    ("8184.25", None, "MALS", "ferritin 8184.3 ng/mL > 4420"),  # at most one decimal, half up
    ("10000", None, "MALS", "ferritin 10000 ng/mL > 4420"),
    ("4420", None, "intermediate", "ferritin 4420 ng/mL <= 4420"),  # exactly 4420 is not MALS
    ("4420.04", None, "MALS", "ferritin 4420.04 ng/mL > 4420"),  # not "4420 ng/mL > 4420"
    ("4419.96", None, "intermediate", "ferritin 4419.96 ng/mL <= 4420"),  # not shown as if exactly 4420
    ("9932", "pmol/L", "MALS", "ferritin 4420.1 ng/mL (from '9932' pmol/L) > 4420"),
    ("9931.74", "pmol/L", "intermediate", "ferritin 4420 ng/mL (from '9931.74' pmol/L) <= 4420"),
    ("45", "pmol/L", "intermediate", "ferritin 20 ng/mL (from '45' pmol/L) <= 4420"),
    (">4420", None, "MALS", "ferritin >4420 ng/mL > 4420"),
])
def test_ferritin_has_at_most_one_decimal_and_never_contradicts_the_call(text, unit, label, words):
    c = call(6000, text, unit)
    assert c.label == label
    assert words in c.reasons, c.reasons


_ABC = re.compile(r"mHLA-DR (\d+(?:\.\d+)?) AB/C (<|>=) (\d+)$")
_FERRITIN = re.compile(r"ferritin (\d+(?:\.\d+)?) ng/mL (>|<=) (\d+)$")


@pytest.mark.parametrize("delta", [0.0, 1e-9, 1e-4, 0.04, 0.05, 0.4, 0.5, 0.51, 0.96, 1.0, 2.5])
@pytest.mark.parametrize("sign", [-1, 1])
def test_the_shown_number_satisfies_the_comparison_it_is_written_with(delta, sign):
    """Around both SPEC section 2 thresholds, the number as written makes the written comparison true."""
    hladr = T_H + sign * delta
    ferr = T_F + sign * delta
    c = call(hladr, repr(ferr))
    checked = 0
    for reason in c.reasons:
        for pattern in (_ABC, _FERRITIN):
            m = pattern.match(reason)
            if m:
                shown, op, t = float(m[1]), m[2], float(m[3])
                assert {"<": shown < t, ">=": shown >= t, ">": shown > t, "<=": shown <= t}[op], reason
                assert len(m[1].partition(".")[2]) <= 12  # never a 17-digit binary float
                checked += 1
    assert checked >= 1, c.reasons


def test_just_below_the_threshold_is_written_below_it():
    below = math.nextafter(T_H, 0)
    c = call(below, "100")
    assert c.label == "immunoparalysis"
    (reason,) = [r for r in c.reasons if r.startswith("mHLA-DR")]
    assert float(_ABC.match(reason)[1]) < T_H


def test_followup_reversal_words():
    baseline = call(3000, "1000")
    fu = call_followup(baseline, parse_ferritin("1000", rules=RULES), 8000.4,
                       parse_ferritin("100.06", rules=RULES), rules=RULES)
    assert fu.immunoparalysis_reversed is True
    assert "immunoparalysis reversed: mHLA-DR 8000.4 AB/C > 8000; ferritin 100.1 ng/mL < 4420" in fu.reasons
    fu = call_followup(baseline, parse_ferritin("1000", rules=RULES), 8000.0,
                       parse_ferritin("100", rules=RULES), rules=RULES)
    assert fu.immunoparalysis_reversed is False and any("mHLA-DR 8000 AB/C <= 8000" in r for r in fu.reasons)
    assert T_RH == 8000


# --------------------------------------------------------------------------- HLA-DR not measured
WHY = "gating failed: monocytes not separated from granulocytes"


def test_ferritin_alone_gives_mals_and_says_hladr_was_not_measured():
    """SPEC.md section 2: ferritin > 4420 gives MALS even if the HLA-DR tube failed; section 4: it says so."""
    c = call(None, "5000", why=WHY)
    assert c.label == "MALS"
    assert c.reasons == ("ferritin 5000 ng/mL > 4420", f"HLA-DR not measured ({WHY})")


def test_without_hladr_a_ferritin_at_most_4420_decides_nothing():
    c = call(None, "4420", why=WHY)
    assert c.label == "indeterminate"
    assert f"HLA-DR not measured ({WHY})" in c.reasons
    assert "ferritin 4420 ng/mL <= 4420: immunoparalysis cannot be decided" in c.reasons


def test_hladr_not_measured_without_a_known_cause():
    assert "HLA-DR not measured" in call(None, "100").reasons
    assert "HLA-DR not measured" in call(float("nan"), "100").reasons


# --------------------------------------------------------------------------- ferritin missing
@pytest.mark.parametrize("text", ["", "   ", None])
def test_missing_ferritin_is_said_whatever_the_hladr(text):
    for hladr in (1200.0, 26000.0, None):
        c = call(hladr, text)
        assert c.label == "indeterminate"
        assert c.reasons[0] == "ferritin missing: MALS cannot be excluded"
        assert "ferritin_missing" in c.codes


def test_the_reason_text_module_holds_no_threshold():
    """The words' numbers come from the call (its thresholds from the rule table), never from literals here."""
    import ast
    from pathlib import Path

    from hladr import _reason_text

    tree = ast.parse(Path(_reason_text.__file__).read_text(encoding="utf-8"))
    numbers = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
               and isinstance(n.value, int | float) and not isinstance(n.value, bool)}
    assert numbers <= {0, 1}, numbers
