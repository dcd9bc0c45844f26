"""ImmunoSep phenotype call from monocyte HLA-DR and serum ferritin (SPEC.md section 2).

Every public function here is pure: it takes plain values plus a
:class:`~hladr.rules.RuleSet` (keyword ``rules``) and returns a small frozen
dataclass. Nothing is read, written or printed, and no threshold is written in
this module: each number that decides a call comes from the versioned rule table
(``data/rules/<id>.toml``), and every call records ``rules.label``.

:func:`call_phenotype` turns (median AB/C, :class:`~hladr.ferritin.Ferritin`) into
:class:`PhenotypeCall`; :func:`call_followup` compares a later visit with the baseline
call: :class:`FollowUp`. The ferritin comes from :func:`hladr.ferritin.parse_ferritin`.

Notes
-----
A ferritin value is handled as the interval of values it allows
(:func:`hladr.ferritin.ferritin_bounds`): ``5000`` is exactly 5000, ``>5000`` is
(5000, inf), ``<20`` is [0, 20). A rule decides only when the whole interval lies
on one side of its threshold; otherwise the call is ``indeterminate`` (or ``None``
for a follow-up question). This gives the SPEC's censoring rules (``>X`` with X >=
threshold is MALS, ``<X`` with X <= threshold is "not MALS", anything else cannot
tell) and applies them the same way to the follow-up rules. The 15 % drop is
tested in decimal arithmetic, as ``current <= baseline * (1 - drop)`` on the decimal
forms of both values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from ._reason_text import abc_text, dec, ferritin_text, threshold_text
from .ferritin import (
    Ferritin,
    ferritin_bounds,
    surely_above,
    surely_at_least,
    surely_at_most,
    surely_below,
)
from .rules import RuleSet

__all__ = [
    "LABELS",
    "PhenotypeCall",
    "FollowUp",
    "call_phenotype",
    "call_followup",
]

Label = Literal["MALS", "immunoparalysis", "intermediate", "indeterminate"]
LABELS: tuple[str, ...] = ("MALS", "immunoparalysis", "intermediate", "indeterminate")


@dataclass(frozen=True)
class PhenotypeCall:
    """The ImmunoSep call of one sample.

    Attributes
    ----------
    label : {"MALS", "immunoparalysis", "intermediate", "indeterminate"}
    reasons : tuple of str
        Human-readable, e.g. ``"ferritin 5000 ng/mL > 4420"``.
    codes : tuple of str
        Machine-readable flags (``ferritin_missing``, ``hladr_missing``,
        ``ferritin_censored_below_threshold``, ...); empty for a clean call.
    ruleset : str
        ``rules.label`` of the rule table used.
    """

    label: Label
    reasons: tuple[str, ...]
    codes: tuple[str, ...]
    ruleset: str


@dataclass(frozen=True)
class FollowUp:
    """Change at a later visit relative to the baseline call.

    Attributes
    ----------
    immunoparalysis_reversed : bool or None
        Baseline immunoparalysis only; ``None`` when not applicable or undecidable.
    mals_improving : bool or None
        Baseline MALS only; ``None`` when not applicable or undecidable.
    reasons : tuple of str
        Human-readable, one or more per question.
    codes : tuple of str
        Machine-readable flags of inputs that kept a question open.
    ruleset : str
        ``rules.label`` of the rule table used.
    """

    immunoparalysis_reversed: bool | None
    mals_improving: bool | None
    reasons: tuple[str, ...]
    codes: tuple[str, ...] = ()
    ruleset: str = ""


# ---------------------------------------------------------------------------
# what a reason says (the numbers' text: hladr._reason_text)


def _hladr_problem(hladr_abc: float | None, why: str = "") -> tuple[str, str] | None:
    """(code, reason) when the HLA-DR value cannot be used, else None; ``why`` it was not measured, when known."""
    if hladr_abc is None or math.isnan(hladr_abc):
        return "hladr_missing", f"HLA-DR not measured ({why})" if why else "HLA-DR not measured"
    if math.isinf(hladr_abc):
        return "hladr_invalid", f"mHLA-DR {hladr_abc!r} AB/C is not finite"
    if hladr_abc < 0:
        return "hladr_negative", f"mHLA-DR {abc_text(hladr_abc)} is negative"
    return None


# ---------------------------------------------------------------------------
# calls


def call_phenotype(
    hladr_abc: float | None, ferritin: Ferritin, *, rules: RuleSet, hladr_why: str = ""
) -> PhenotypeCall:
    """Call the ImmunoSep phenotype of one sample.

    Parameters
    ----------
    hladr_abc : float or None
        Median antibodies bound per monocyte (AB/C); ``None`` or NaN when the
        HLA-DR tube could not be measured.
    ferritin : Ferritin
        From :func:`parse_ferritin`.
    rules : RuleSet
        Supplies ``mals_ferritin_ng_ml`` (T_f) and ``immunoparalysis_hladr_abc`` (T_h).
    hladr_why : str, optional
        Why there is no HLA-DR value (the messages of the flags that failed the tube): the
        reasons then say ``HLA-DR not measured (<why>)``, also beside a ferritin-only MALS.

    Returns
    -------
    PhenotypeCall

    Notes
    -----
    ========================================  ===================
    condition                                 label
    ========================================  ===================
    ferritin > T_f (strictly)                 ``MALS`` (wins; HLA-DR not needed)
    ferritin <= T_f and AB/C < T_h            ``immunoparalysis``
    ferritin <= T_f and AB/C >= T_h           ``intermediate``
    anything else                             ``indeterminate``
    ========================================  ===================

    With ``immunosep-2025``, T_f = 4420 ng/mL and T_h = 5000 AB/C: exactly 4420 is
    not MALS, exactly 5000 is not immunoparalysis. ``>X`` is MALS when X >= T_f and
    indeterminate otherwise (ask the lab for a dilution); ``<X`` counts as <= T_f
    when X <= T_f and is indeterminate otherwise. Without a usable ferritin MALS
    cannot be excluded, so the call is indeterminate whatever the HLA-DR value.

    The reasons write numbers as a person does: AB/C whole, ferritin to at most one
    decimal, thresholds as the rule table has them; a value is shown with more places
    only where rounding would put it on the other side of the threshold it is compared with.
    """
    t_f = rules.mals_ferritin_ng_ml
    t_h = rules.immunoparalysis_hladr_abc
    reasons: list[str] = []
    codes: list[str] = []
    hladr_bad = _hladr_problem(hladr_abc, hladr_why)

    def done(label: Label) -> PhenotypeCall:
        return PhenotypeCall(label, tuple(reasons), tuple(codes), rules.label)

    def note_hladr() -> None:
        if hladr_bad is not None:
            codes.append(hladr_bad[0])
            reasons.append(hladr_bad[1])

    b = ferritin_bounds(ferritin)
    if b is None:
        codes.append(ferritin.code or "ferritin_invalid")
        reasons.append(f"{ferritin.problem}: MALS cannot be excluded")
        note_hladr()
        return done("indeterminate")

    if surely_above(b, t_f):
        reasons.append(f"ferritin {ferritin_text(ferritin, t_f)} > {threshold_text(t_f)}")
        note_hladr()
        return done("MALS")

    if not surely_at_most(b, t_f):
        if ferritin.censor == ">":
            codes.append("ferritin_censored_below_threshold")
            reasons.append(
                f"ferritin {ferritin_text(ferritin, t_f)} may or may not exceed {threshold_text(t_f)}: "
                "ask the lab for a dilution"
            )
        else:
            codes.append("ferritin_censored_above_threshold")
            reasons.append(
                f"ferritin {ferritin_text(ferritin, t_f)} may or may not exceed {threshold_text(t_f)}: "
                "ask the lab for an exact value"
            )
        note_hladr()
        return done("indeterminate")

    if hladr_bad is not None:
        reasons.append(
            f"ferritin {ferritin_text(ferritin, t_f)} <= {threshold_text(t_f)}: immunoparalysis cannot be decided"
        )
        note_hladr()
        return done("indeterminate")
    reasons.append(f"ferritin {ferritin_text(ferritin, t_f)} <= {threshold_text(t_f)}")
    assert hladr_abc is not None
    if hladr_abc < t_h:
        reasons.append(f"mHLA-DR {abc_text(hladr_abc, t_h)} < {threshold_text(t_h)}")
        return done("immunoparalysis")
    reasons.append(f"mHLA-DR {abc_text(hladr_abc, t_h)} >= {threshold_text(t_h)}")
    return done("intermediate")


def _reversal(
    hladr_abc: float | None, ferritin: Ferritin, rules: RuleSet
) -> tuple[bool | None, list[str], list[str]]:
    """Immunoparalysis reversed: AB/C > T_rh and ferritin < T_rf (three-valued AND)."""
    t_h = rules.reversal_hladr_abc
    t_f = rules.reversal_ferritin_ng_ml
    reasons: list[str] = []
    codes: list[str] = []

    hladr_ok: bool | None
    bad = _hladr_problem(hladr_abc)
    if bad is not None:
        hladr_ok = None
        codes.append(bad[0])
        reasons.append(bad[1])
    else:
        assert hladr_abc is not None
        hladr_ok = hladr_abc > t_h
        op = ">" if hladr_ok else "<="
        reasons.append(f"mHLA-DR {abc_text(hladr_abc, t_h)} {op} {threshold_text(t_h)}")

    ferritin_ok: bool | None
    b = ferritin_bounds(ferritin)
    if b is None:
        ferritin_ok = None
        codes.append(ferritin.code or "ferritin_invalid")
        reasons.append(ferritin.problem)
    elif surely_below(b, t_f):
        ferritin_ok = True
        reasons.append(f"ferritin {ferritin_text(ferritin, t_f)} < {threshold_text(t_f)}")
    elif surely_at_least(b, t_f):
        ferritin_ok = False
        reasons.append(f"ferritin {ferritin_text(ferritin, t_f)} >= {threshold_text(t_f)}")
    else:
        ferritin_ok = None
        codes.append("ferritin_censored_undecided")
        reasons.append(f"ferritin {ferritin_text(ferritin, t_f)} may or may not be < {threshold_text(t_f)}")

    if hladr_ok is False or ferritin_ok is False:
        result: bool | None = False
    elif hladr_ok and ferritin_ok:
        result = True
    else:
        result = None
    verdict = {
        True: "immunoparalysis reversed",
        False: "immunoparalysis not reversed",
        None: "reversal cannot be decided",
    }[result]
    return result, [f"{verdict}: {'; '.join(reasons)}"], codes


def _improving(
    baseline_ferritin: Ferritin, ferritin: Ferritin, rules: RuleSet
) -> tuple[bool | None, list[str], list[str]]:
    """MALS improving: current <= baseline * (1 - drop), decided on the intervals."""
    keep = Decimal(1) - dec(rules.mals_improving_drop)
    pct = format((dec(rules.mals_improving_drop) * 100).normalize(), "f")
    base = ferritin_bounds(baseline_ferritin)
    cur = ferritin_bounds(ferritin)
    if base is None or cur is None:
        which = baseline_ferritin if base is None else ferritin
        prefix = "baseline " if base is None else ""
        return (
            None,
            [f"MALS improvement cannot be decided: {prefix}{which.problem}"],
            [which.code or "ferritin_invalid"],
        )
    shown = f"ferritin {ferritin_text(ferritin)} vs baseline {ferritin_text(baseline_ferritin)}"
    # surely improving: the largest current value is within the smallest allowed limit
    if cur.hi is not None and dec(cur.hi) <= dec(base.lo) * keep:
        return True, [f"MALS improving: {shown}, a fall of >= {pct} %"], []
    # surely not: the smallest current value is above the largest allowed limit
    if base.hi is not None:
        limit = dec(base.hi) * keep
        lo = dec(cur.lo)
        if lo > limit or ((cur.lo_open or base.hi_open) and lo >= limit):
            return False, [f"MALS not improving: {shown}, a fall of < {pct} %"], []
    return (
        None,
        [f"MALS improvement cannot be decided: {shown} (censored)"],
        ["ferritin_censored_undecided"],
    )


def call_followup(
    baseline: PhenotypeCall,
    baseline_ferritin: Ferritin,
    hladr_abc: float | None,
    ferritin: Ferritin,
    *,
    rules: RuleSet,
) -> FollowUp:
    """Compare a later visit of the same subject with its baseline call.

    Parameters
    ----------
    baseline : PhenotypeCall
        The call at the baseline visit.
    baseline_ferritin : Ferritin
        Ferritin at the baseline visit (used for MALS improvement).
    hladr_abc : float or None
        Median AB/C at this visit; ``None`` or NaN when not measurable.
    ferritin : Ferritin
        Ferritin at this visit.
    rules : RuleSet
        Supplies ``reversal_hladr_abc``, ``reversal_ferritin_ng_ml`` and
        ``mals_improving_drop``.

    Returns
    -------
    FollowUp

    Notes
    -----
    - Baseline ``immunoparalysis``: reversed when AB/C > ``reversal_hladr_abc``
      (8000) and ferritin < ``reversal_ferritin_ng_ml`` (4420), both strict. The
      two conditions combine in three-valued logic: one known failure gives
      ``False`` even when the other input is missing; otherwise a missing or
      undeciding input gives ``None``.
    - Baseline ``MALS``: improving when ferritin <= baseline * (1 - ``mals_improving_drop``)
      (a fall of at least 15 %; exactly 15 % counts), computed in decimal. A
      censored value decides only when every value it allows gives the same answer.
    - Any other baseline: both are ``None``.
    """
    reasons: list[str] = []
    codes: list[str] = []
    reversed_: bool | None = None
    improving: bool | None = None
    if baseline.label == "immunoparalysis":
        reversed_, r, c = _reversal(hladr_abc, ferritin, rules)
        reasons += r
        codes += c
    else:
        reasons.append(
            f"reversal applies to an immunoparalysis baseline only (baseline: {baseline.label})"
        )
    if baseline.label == "MALS":
        improving, r, c = _improving(baseline_ferritin, ferritin, rules)
        reasons += r
        codes += c
    else:
        reasons.append(
            f"MALS improvement applies to a MALS baseline only (baseline: {baseline.label})"
        )
    return FollowUp(reversed_, improving, tuple(reasons), tuple(codes), rules.label)
