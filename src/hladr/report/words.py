"""The report's words: a result as a sentence, the gate's self-check against its limits, the run's facts.

Shared by the HTML page and the PDF so that both say the same thing.
"""

from __future__ import annotations

from collections import Counter

from ..rules import RuleSet, load_rules

__all__ = ["result_sentence", "check_rows", "run_facts", "qc_counts", "review_order", "flag_lines",
           "gate_kind", "number"]

QC_ORDER = {"fail": 0, "warn": 1, "pass": 2}


def number(x: float | None, unit: str = "") -> str:
    """A value as a person writes it: thousands separated, no decimals above 100."""
    if x is None:
        return "—"
    text = f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.3g}"
    return f"{text} {unit}".strip()


def review_order(records: list[dict]) -> list[int]:
    """Sample indices for the summary: failures, then warnings, then passes (file order within each)."""
    return sorted(range(len(records)), key=lambda k: (QC_ORDER.get(records[k].get("qc"), 0), k))


def qc_counts(records: list[dict]) -> dict[str, int]:
    c = Counter(r.get("qc") for r in records)
    return {q: c.get(q, 0) for q in ("pass", "warn", "fail")}


def gate_kind(record: dict) -> str:
    """``automated``, or ``manual (FILE)`` for gates from a Gating-ML file."""
    gate = record.get("gate") or {}
    if gate.get("template"):
        return f"manual (Gating-ML {gate['template']}, SHA-256 {str(gate.get('template_sha256', ''))[:12]})"
    return "automated" if gate.get("method") == "mixture" else "none"


def flag_lines(record: dict) -> list[tuple[str, str, str]]:
    """(severity, code, message) of every flag, failures first."""
    flags = [f for f in record.get("flags") or [] if isinstance(f, dict)]
    flags.sort(key=lambda f: QC_ORDER.get(f.get("severity"), 3))
    return [(str(f.get("severity", "")), str(f.get("code", "")), str(f.get("message", ""))) for f in flags]


def result_sentence(record: dict) -> str:
    """The result in words: what was measured, the call, and why."""
    n = record.get("monocyte_count")
    abc = record.get("hladr_abc")
    ferr = (record.get("ferritin_text") or "").strip()
    unit = (record.get("ferritin_unit") or "ng/mL").strip()
    parts = []
    if abc is not None:
        parts.append(f"{number(n)} monocytes gated; median HLA-DR {number(abc)} antibodies bound per cell")
    else:
        why = [f.get("message", "") for f in record.get("flags") or [] if f.get("severity") == "fail"]
        head = f"{number(n)} monocytes gated; " if n else ""
        parts.append(head + "HLA-DR not measured" + (f" ({'; '.join(why)})" if why else ""))
    parts.append(f"ferritin {ferr} {unit}" if ferr else "ferritin not given")
    call = record.get("phenotype", "")
    reasons = "; ".join(record.get("phenotype_reasons") or [])
    return f"{'. '.join(parts)}. Call: {call}" + (f" ({reasons})." if reasons else ".") + \
        f" QC {record.get('qc', '')}."


def _rules(label: str) -> RuleSet | None:
    try:
        return load_rules(label.split("@", 1)[0]) if label else None
    except Exception:  # a rule set this installation does not have: the figures are shown without limits
        return None


def check_rows(record: dict) -> list[tuple[str, str, str, str]]:
    """The automated gate's self-check: (figure, value, limit, verdict) per check with a limit in the rule table."""
    gate = record.get("gate") or {}
    c = gate.get("checks") or {}
    if not c:
        return []
    rules = _rules(c.get("rules") or record.get("ruleset", ""))
    g = rules.gating if rules else None

    def verdict(ok: bool | None) -> str:
        return "—" if ok is None else ("ok" if ok else "FAILED")

    rows = []
    share = c.get("monocyte_share_of_cells")
    if share is not None:
        ok = None if g is None else g.min_monocyte_share <= share <= g.max_monocyte_fraction
        lim = "" if g is None else f"{g.min_monocyte_share:.1%} to {g.max_monocyte_fraction:.0%}"
        rows.append(("monocytes among cells", f"{share:.2%}", lim, verdict(ok)))
    sep = c.get("separation")
    if sep is not None:
        rows.append(("separation from the nearest population", f"{sep:.1f}",
                     "" if g is None else f"≥ {g.min_separation:g}",
                     verdict(None if g is None else sep >= g.min_separation)))
    ratio = c.get("hladr_ratio_to_negative")
    if ratio is not None:
        ref = c.get("hladr_negative_reference", "negative population")
        rows.append((f"HLA-DR of monocytes / {ref}", f"× {ratio:.1f}",
                     "" if g is None else f"≥ × {g.min_hladr_ratio:g}",
                     verdict(None if g is None else ratio >= g.min_hladr_ratio)))
    jac = c.get("agreement_jaccard")
    if jac is not None:
        rows.append((f"overlap with a second estimate ({c.get('second_estimate', 'k-means')})", f"{jac:.0%}",
                     "" if g is None else f"≥ {g.min_agreement_jaccard:.0%}",
                     verdict(None if g is None else jac >= g.min_agreement_jaccard)))
    med = c.get("agreement_median_ratio")
    if med is not None:
        rows.append(("median HLA-DR, second estimate vs gate", f"{med - 1:+.1%}",
                     "" if g is None else f"within ±{g.max_median_disagreement:.0%}",
                     verdict(None if g is None else abs(med - 1) <= g.max_median_disagreement)))
    for axis in ("fsc", "ssc"):
        v = c.get(f"scatter_spread_{axis}")
        if v is not None:
            rows.append((f"{axis.upper()} spread / lymphocytes'", f"× {v:.2f}",
                         "" if g is None else f"≤ × {g.max_scatter_spread:g}",
                         verdict(None if g is None else v <= g.max_scatter_spread)))
    return rows


def _num(v: object, spec: str) -> str:
    """A number of a record formatted, or ``—`` where it is null (not finite when written)."""
    return format(v, spec) if isinstance(v, int | float) else "—"


def _utc(stamp: object) -> str:
    """``2026-12-05T01:54:34+00:00`` as ``2026-12-05 01:54:34 UTC``."""
    text = str(stamp or "")
    if not text:
        return "—"
    return text.replace("T", " ").removesuffix("+00:00") + " UTC"


def run_facts(run) -> list[tuple[str, str]]:
    """The run header: (label, value) pairs for the page and the PDF."""
    samples = run.samples
    cal = run.calibration or {}
    acq = [s.acquisition for s in samples if s.acquisition]

    def distinct(key: str) -> str:
        vals = sorted({str(a.get(key)) for a in acq if a.get(key)})
        return ", ".join(vals) if vals else "—"

    lot = cal.get("lot") or {}
    fit = cal.get("fit") or {}
    rulesets = sorted({s.record.get("ruleset", "") for s in samples} - {""})
    versions = sorted({s.record.get("software_version", "") for s in samples} - {""})
    f = run.facts
    return [
        ("run folder", str(f.get("run_dir", "—"))),
        ("acquired", distinct("date")),
        ("instrument", distinct("instrument")),
        ("serial number", distinct("serial")),
        ("operator (FCS $OP)", distinct("operator")),
        ("analysed", f"{_utc(f.get('started_utc'))} by {f.get('analysed_by') or '—'}"),
        ("bead lot", f"{lot.get('id', '—')} {lot.get('product', '') or ''}".strip()),
        ("calibration", f"{cal.get('id', '—')}: {'accepted' if cal.get('accepted') else 'NOT accepted'}"
                        + (f", slope {_num(fit.get('slope'), '.3f')}, R² {_num(fit.get('r2'), '.4f')}" if fit else "")),
        ("software", f"hladr {', '.join(versions) or f.get('hladr_version', '—')}"),
        ("rule set", ", ".join(rulesets) or "—"),
    ]
