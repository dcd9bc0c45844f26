"""ImmunoSep phenotype call from monocyte HLA-DR and serum ferritin (SPEC.md section 2).

Every public function here is pure: it takes plain values plus a
:class:`~hladr.rules.RuleSet` (keyword ``rules``) and returns a small frozen
dataclass. Nothing is read, written or printed, and no threshold is written in
this module: each number that decides a call comes from the versioned rule table
(``data/rules/<id>.toml``), and every call records ``rules.label``.

- :func:`parse_ferritin` turns the worklist text (and unit) into :class:`Ferritin`;
  bad text is not an exception but a ``Ferritin`` whose ``problem`` says why.
- :func:`call_phenotype` turns (median AB/C, ``Ferritin``) into :class:`PhenotypeCall`.
- :func:`call_followup` compares a later visit with the baseline call: :class:`FollowUp`.

Notes
-----
A ferritin value is handled as the interval of values it allows: ``5000`` is
exactly 5000, ``>5000`` is (5000, inf), ``<20`` is [0, 20). A rule decides only
when the whole interval lies on one side of its threshold; otherwise the call is
``indeterminate`` (or ``None`` for a follow-up question). This gives the SPEC's
censoring rules (``>X`` with X >= threshold is MALS, ``<X`` with X <= threshold
is "not MALS", anything else cannot tell) and applies them the same way to the
follow-up rules.

Numbers are converted and compared in decimal arithmetic, as written: pmol/L is
divided by ``rules.ferritin_pmol_per_ng`` with :class:`decimal.Decimal` on the
digits of the text, so ``9931.74 pmol/L`` is exactly 4420 ng/mL (not 4420.0000000000005
as binary floating point can give for such quotients), and the 15 % drop is
tested as ``current <= baseline * (1 - drop)`` on the decimal forms of both values.
"""

from __future__ import annotations

import math
import re
import reprlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from .rules import RuleSet

__all__ = [
    "LABELS",
    "Ferritin",
    "PhenotypeCall",
    "FollowUp",
    "parse_ferritin",
    "call_phenotype",
    "call_followup",
]

Label = Literal["MALS", "immunoparalysis", "intermediate", "indeterminate"]
LABELS: tuple[str, ...] = ("MALS", "immunoparalysis", "intermediate", "indeterminate")

# Accepted unit spellings (compared after lower-casing, removing spaces and writing
# both micro signs, U+00B5 and U+03BC, as "u"), mapped to their canonical spelling.
_UNITS = {
    "ng/ml": "ng/mL",
    "ug/l": "µg/L",
    "pmol/l": "pmol/L",
}
_PMOL = "pmol/L"

_VALUE_RE = re.compile(
    r"""^(?P<op>>=|<=|=>|=<|≥|≤|>|<)?\s*
        (?P<sign>[-−])?\s*
        (?P<num>\d+(?:\.\d*)?|\.\d+)\s*
        (?P<unit>[^\W\d_].*)?$""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Ferritin:
    """Serum ferritin as parsed from a worklist.

    Attributes
    ----------
    ng_ml : float or None
        The value (or the censoring bound) in ng/mL; ``None`` when ``problem``.
    censor : str
        ``""`` for an exact value, ``">"`` or ``"<"`` for a censored one.
    text : str
        The text as it arrived (``""`` for ``None``).
    unit : str
        Canonical spelling of the unit the value was reported in (``"ng/mL"``,
        ``"µg/L"``, ``"pmol/L"``), or the unit as written when it was rejected.
    problem : str
        ``""`` when usable, else a short human reason.
    code : str
        ``""`` when usable, else a machine-readable code: ``ferritin_missing``,
        ``ferritin_invalid``, ``ferritin_negative``, ``ferritin_unit_unknown``,
        ``ferritin_unit_conflict``.
    """

    ng_ml: float | None
    censor: str
    text: str
    unit: str
    problem: str
    code: str = ""

    @property
    def usable(self) -> bool:
        """True when the value can be used (``problem`` is empty)."""
        return not self.problem


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
# parsing


def _as_text(value: object) -> str:
    """Worklist cell -> str; ``None`` and float NaN (an empty pandas cell) -> ``""``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _short(text: str) -> str:
    """A cell for a one-line message: its repr, long ones cut in the middle (``reprlib``)."""
    return reprlib.repr(text)


def _unit_key(unit: str) -> str:
    return re.sub(r"\s+", "", unit).lower().replace("µ", "u").replace("μ", "u")


def parse_ferritin(text: str | None, unit: str | None = None, *, rules: RuleSet) -> Ferritin:
    """Parse a ferritin value as written in a worklist.

    Parameters
    ----------
    text : str or None
        E.g. ``"1234.5"``, ``" >5000 "``, ``"< 20"``, ``"11235 pmol/L"``.
    unit : str or None, optional
        The worklist's unit column; empty or ``None`` means ng/mL unless ``text``
        carries a unit.
    rules : RuleSet
        Supplies ``ferritin_pmol_per_ng``.

    Returns
    -------
    Ferritin
        With ``problem == ""`` and ``ng_ml`` set when usable; otherwise ``ng_ml`` is
        ``None`` and ``problem``/``code`` say why. Bad text never raises.

    Notes
    -----
    - A decimal point is accepted; a comma is rejected (``1,234`` may be a
      thousands separator or a decimal comma; guessing would move a value across
      the MALS threshold by a factor of 1000).
    - Only ``>`` and ``<`` censor; ``>=``, ``<=``, ``≥``, ``≤`` are rejected.
    - ng/mL, ng/ml, µg/L, ug/L, μg/L are the same unit; pmol/L is divided by
      ``rules.ferritin_pmol_per_ng`` (2.247 in ``immunosep-2025``), in decimal
      arithmetic on the digits as written.
    - A unit in the text is used when the unit column is empty and must agree
      with it otherwise.

    Examples
    --------
    >>> from hladr.rules import load_rules
    >>> parse_ferritin("> 5000", rules=load_rules())
    Ferritin(ng_ml=5000.0, censor='>', text='> 5000', unit='ng/mL', problem='', code='')
    >>> parse_ferritin("9931.74", "pmol/L", rules=load_rules()).ng_ml
    4420.0
    """
    raw = _as_text(text)
    column_unit = _as_text(unit).strip()
    s = raw.strip()

    def bad(problem: str, code: str, shown_unit: str = column_unit) -> Ferritin:
        return Ferritin(None, "", raw, shown_unit, problem, code)

    if not s:
        return bad("ferritin is empty", "ferritin_missing")
    if "," in s:
        return bad(
            f"ferritin {_short(s)} contains a comma (thousands separator or decimal comma?); "
            "write it without one, e.g. 1234 or 1234.5",
            "ferritin_invalid",
        )
    m = _VALUE_RE.match(s)
    if m is None:
        return bad(f"ferritin {_short(s)} is not a number", "ferritin_invalid")
    op = m["op"] or ""
    if op not in ("", ">", "<"):
        return bad(
            f"ferritin {_short(s)}: only '>' and '<' are accepted as censoring, not {op!r}",
            "ferritin_invalid",
        )
    if m["sign"]:
        return bad("ferritin is negative", "ferritin_negative")

    text_unit = (m["unit"] or "").strip()
    shown = text_unit or column_unit
    for u in (text_unit, column_unit):
        if u and _unit_key(u) not in _UNITS:
            return bad(f"unknown ferritin unit {_short(u)}", "ferritin_unit_unknown", u)
    if text_unit and column_unit and _unit_key(text_unit) != _unit_key(column_unit):
        same_ng = {_unit_key(text_unit), _unit_key(column_unit)} <= {"ng/ml", "ug/l"}
        if not same_ng:
            return bad(
                f"ferritin {_short(s)} is in {text_unit} but the unit column says {column_unit}",
                "ferritin_unit_conflict",
                shown,
            )
    canonical = _UNITS[_unit_key(shown)] if shown else "ng/mL"

    value = Decimal(m["num"])
    if canonical == _PMOL:
        value = value / Decimal(repr(rules.ferritin_pmol_per_ng))
    if value > Decimal(repr(rules.ferritin_max_ng_ml)):  # compared as decimals: 400 digits are no float
        return bad(f"ferritin {_short(s)} is above {rules.ferritin_max_ng_ml:g} ng/mL: not a serum value "
                   "(typing or export error?)", "ferritin_invalid", canonical)
    if op == "<" and value == 0:
        return bad(f"ferritin {_short(s)} is below zero", "ferritin_invalid", canonical)
    ng_ml = float(value)
    if not math.isfinite(ng_ml):  # not reachable below the plausibility limit; kept as the last guard
        return bad(f"ferritin {_short(s)} is not a finite number", "ferritin_invalid", canonical)
    return Ferritin(ng_ml, op, raw, canonical, "")


# ---------------------------------------------------------------------------
# interval logic


@dataclass(frozen=True)
class _Bounds:
    """The values a ferritin text allows: lo..hi, each end open or closed."""

    lo: float
    lo_open: bool
    hi: float | None  # None: no upper bound
    hi_open: bool


def _bounds(f: Ferritin) -> _Bounds | None:
    if not f.usable or f.ng_ml is None:
        return None
    v = f.ng_ml
    if f.censor == ">":
        return _Bounds(v, True, None, False)
    if f.censor == "<":
        return _Bounds(0.0, False, v, True)
    return _Bounds(v, False, v, False)


def _surely_above(b: _Bounds, t: float) -> bool:
    """Every allowed value is > t."""
    return b.lo > t or (b.lo_open and b.lo >= t)


def _surely_at_most(b: _Bounds, t: float) -> bool:
    """Every allowed value is <= t."""
    return b.hi is not None and b.hi <= t


def _surely_below(b: _Bounds, t: float) -> bool:
    """Every allowed value is < t."""
    return b.hi is not None and (b.hi < t or (b.hi_open and b.hi <= t))


def _surely_at_least(b: _Bounds, t: float) -> bool:
    """Every allowed value is >= t."""
    return b.lo >= t


def _dec(x: float) -> Decimal:
    """The shortest decimal that round-trips to ``x`` (the value as written)."""
    return Decimal(repr(float(x)))


# ---------------------------------------------------------------------------
# formatting


def _fmt(x: float) -> str:
    """Shortest exact text of a number, without a trailing ``.0``."""
    x = float(x)
    return f"{x:.0f}" if x.is_integer() else repr(x)


def _show(f: Ferritin) -> str:
    base = f"{f.censor}{_fmt(f.ng_ml)} ng/mL" if f.ng_ml is not None else repr(f.text)
    if f.unit == _PMOL:
        return f"{base} (from {f.text.strip()!r} {_PMOL})"
    return base


def _hladr_problem(hladr_abc: float | None) -> tuple[str, str] | None:
    """(code, reason) when the HLA-DR value cannot be used, else None."""
    if hladr_abc is None or math.isnan(hladr_abc):
        return "hladr_missing", "mHLA-DR not measurable"
    if math.isinf(hladr_abc):
        return "hladr_invalid", f"mHLA-DR {hladr_abc!r} AB/C is not finite"
    if hladr_abc < 0:
        return "hladr_negative", f"mHLA-DR {_fmt(hladr_abc)} AB/C is negative"
    return None


# ---------------------------------------------------------------------------
# calls


def call_phenotype(hladr_abc: float | None, ferritin: Ferritin, *, rules: RuleSet) -> PhenotypeCall:
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
    """
    t_f = rules.mals_ferritin_ng_ml
    t_h = rules.immunoparalysis_hladr_abc
    reasons: list[str] = []
    codes: list[str] = []
    hladr_bad = _hladr_problem(hladr_abc)

    def done(label: Label) -> PhenotypeCall:
        return PhenotypeCall(label, tuple(reasons), tuple(codes), rules.label)

    def note_hladr() -> None:
        if hladr_bad is not None:
            codes.append(hladr_bad[0])
            reasons.append(hladr_bad[1])

    b = _bounds(ferritin)
    if b is None:
        codes.append(ferritin.code or "ferritin_invalid")
        reasons.append(f"{ferritin.problem}: MALS cannot be excluded")
        note_hladr()
        return done("indeterminate")

    if _surely_above(b, t_f):
        reasons.append(f"ferritin {_show(ferritin)} > {_fmt(t_f)}")
        note_hladr()
        return done("MALS")

    if not _surely_at_most(b, t_f):
        if ferritin.censor == ">":
            codes.append("ferritin_censored_below_threshold")
            reasons.append(
                f"ferritin {_show(ferritin)} may or may not exceed {_fmt(t_f)}: "
                "ask the lab for a dilution"
            )
        else:
            codes.append("ferritin_censored_above_threshold")
            reasons.append(
                f"ferritin {_show(ferritin)} may or may not exceed {_fmt(t_f)}: "
                "ask the lab for an exact value"
            )
        note_hladr()
        return done("indeterminate")

    if hladr_bad is not None:
        reasons.append(
            f"ferritin {_show(ferritin)} <= {_fmt(t_f)}: immunoparalysis cannot be decided"
        )
        note_hladr()
        return done("indeterminate")
    reasons.append(f"ferritin {_show(ferritin)} <= {_fmt(t_f)}")
    assert hladr_abc is not None
    if hladr_abc < t_h:
        reasons.append(f"mHLA-DR {_fmt(hladr_abc)} AB/C < {_fmt(t_h)}")
        return done("immunoparalysis")
    reasons.append(f"mHLA-DR {_fmt(hladr_abc)} AB/C >= {_fmt(t_h)}")
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
        reasons.append(f"mHLA-DR {_fmt(hladr_abc)} AB/C {op} {_fmt(t_h)}")

    ferritin_ok: bool | None
    b = _bounds(ferritin)
    if b is None:
        ferritin_ok = None
        codes.append(ferritin.code or "ferritin_invalid")
        reasons.append(ferritin.problem)
    elif _surely_below(b, t_f):
        ferritin_ok = True
        reasons.append(f"ferritin {_show(ferritin)} < {_fmt(t_f)}")
    elif _surely_at_least(b, t_f):
        ferritin_ok = False
        reasons.append(f"ferritin {_show(ferritin)} >= {_fmt(t_f)}")
    else:
        ferritin_ok = None
        codes.append("ferritin_censored_undecided")
        reasons.append(f"ferritin {_show(ferritin)} may or may not be < {_fmt(t_f)}")

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
    keep = Decimal(1) - _dec(rules.mals_improving_drop)
    pct = format((_dec(rules.mals_improving_drop) * 100).normalize(), "f")
    base = _bounds(baseline_ferritin)
    cur = _bounds(ferritin)
    if base is None or cur is None:
        which = baseline_ferritin if base is None else ferritin
        prefix = "baseline " if base is None else ""
        return (
            None,
            [f"MALS improvement cannot be decided: {prefix}{which.problem}"],
            [which.code or "ferritin_invalid"],
        )
    shown = f"ferritin {_show(ferritin)} vs baseline {_show(baseline_ferritin)}"
    # surely improving: the largest current value is within the smallest allowed limit
    if cur.hi is not None and _dec(cur.hi) <= _dec(base.lo) * keep:
        return True, [f"MALS improving: {shown}, a fall of >= {pct} %"], []
    # surely not: the smallest current value is above the largest allowed limit
    if base.hi is not None:
        limit = _dec(base.hi) * keep
        lo = _dec(cur.lo)
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
