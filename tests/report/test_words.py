"""The report's words: the self-check judged against the rule table at its exact limits, manual gates
named, a result without HLA-DR says why, the summary's order."""

from __future__ import annotations

import pytest

from hladr.report.words import check_rows, gate_kind, qc_counts, result_sentence, review_order
from hladr.rules import load_rules

G = load_rules().gating


def _checks(**kw) -> dict:
    base = {"monocyte_share_of_cells": 0.05, "separation": 5.0, "hladr_ratio_to_negative": 10.0,
            "hladr_negative_reference": "granulocytes", "agreement_jaccard": 0.9, "agreement_median_ratio": 1.0,
            "scatter_spread_fsc": 1.2, "scatter_spread_ssc": 1.1, "second_estimate": "kmeans"}
    return {"ruleset": load_rules().label, "gate": {"method": "mixture", "checks": {**base, **kw}}}


def _verdicts(rec: dict) -> dict[str, str]:
    return {row[0]: row[3] for row in check_rows(rec)}


def test_every_check_is_ok_inside_its_limits():
    v = _verdicts(_checks())
    assert len(v) == 7 and set(v.values()) == {"ok"}


@pytest.mark.parametrize(("key", "value", "label", "verdict"), [
    ("separation", G.min_separation, "separation from the nearest population", "ok"),
    ("separation", G.min_separation - 1e-9, "separation from the nearest population", "FAILED"),
    ("hladr_ratio_to_negative", G.min_hladr_ratio, "HLA-DR of monocytes / granulocytes", "ok"),
    ("hladr_ratio_to_negative", G.min_hladr_ratio - 1e-9, "HLA-DR of monocytes / granulocytes", "FAILED"),
    ("agreement_jaccard", G.min_agreement_jaccard, "overlap with a second estimate (kmeans)", "ok"),
    ("agreement_jaccard", G.min_agreement_jaccard - 1e-9, "overlap with a second estimate (kmeans)", "FAILED"),
    ("agreement_median_ratio", 1 + G.max_median_disagreement + 1e-9, "median HLA-DR, second estimate vs gate",
     "FAILED"),
    ("monocyte_share_of_cells", G.max_monocyte_fraction, "monocytes among cells", "ok"),
    ("monocyte_share_of_cells", G.max_monocyte_fraction + 1e-9, "monocytes among cells", "FAILED"),
    ("monocyte_share_of_cells", G.min_monocyte_share - 1e-9, "monocytes among cells", "FAILED"),
    ("scatter_spread_fsc", G.max_scatter_spread, "FSC spread / lymphocytes'", "ok"),
    ("scatter_spread_ssc", G.max_scatter_spread + 1e-9, "SSC spread / lymphocytes'", "FAILED"),
])
def test_each_check_is_judged_at_the_rule_tables_limit(key, value, label, verdict):
    assert _verdicts(_checks(**{key: value}))[label] == verdict


def test_a_template_gate_is_named_manual_with_its_file():
    rec = {"gate": {"template": "P003_corrected.xml", "template_sha256": "ab" * 32, "gate_path": ["monocytes"]}}
    assert gate_kind(rec).startswith("manual (Gating-ML P003_corrected.xml, SHA-256 abababababab")
    assert gate_kind({"gate": {"method": "mixture"}}) == "automated"
    assert check_rows(rec) == []  # a template has no self-check


def test_a_result_without_hladr_says_it_was_not_measured_and_why():
    rec = {"monocyte_count": 681, "hladr_abc": None, "ferritin_text": "<20", "ferritin_unit": "ng/mL",
           "phenotype": "indeterminate", "phenotype_reasons": ["mHLA-DR not measurable"], "qc": "fail",
           "flags": [{"code": "monocytes_too_few", "severity": "fail", "message": "681 monocytes < 1000"},
                     {"code": "no_debris_valley", "severity": "info", "message": "x"}]}
    s = result_sentence(rec)
    assert s.startswith("681 monocytes gated; HLA-DR not measured (681 monocytes < 1000)")
    assert "ferritin <20 ng/mL" in s and "Call: indeterminate" in s and s.endswith("QC fail.")


def test_a_measured_result_reads_as_a_sentence():
    rec = {"monocyte_count": 5329, "hladr_abc": 2669.4, "ferritin_text": "", "phenotype": "indeterminate",
           "phenotype_reasons": [], "qc": "pass", "flags": []}
    assert result_sentence(rec) == ("5,329 monocytes gated; median HLA-DR 2,669 antibodies bound per cell. "
                                    "ferritin not given. Call: indeterminate. QC pass.")


def test_the_summary_puts_failures_then_warnings_first_in_file_order():
    recs = [{"qc": q} for q in ("pass", "fail", "warn", "pass", "fail", "warn")]
    assert review_order(recs) == [1, 4, 2, 5, 0, 3]
    assert qc_counts(recs) == {"pass": 2, "warn": 2, "fail": 2}
