"""Serum ferritin as a worklist gives it: parsed text, its unit, and the interval of values it allows.

Every public function here is pure: it takes plain values (and, for parsing, a
:class:`~hladr.rules.RuleSet`, keyword ``rules``) and returns a small frozen
dataclass or a bool. Nothing is read, written or printed, and no threshold is
written in this module.

- :func:`parse_ferritin` turns the worklist text (and unit) into :class:`Ferritin`;
  bad text is not an exception but a ``Ferritin`` whose ``problem`` says why.
- :func:`ferritin_bounds` gives the values a ``Ferritin`` allows, and the
  ``surely_*`` tests say on which side of a threshold all of them lie;
  :mod:`hladr.phenotype` decides its calls with them.

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
as binary floating point can give for such quotients).
"""

from __future__ import annotations

import math
import re
import reprlib
from dataclasses import dataclass
from decimal import Decimal

from .rules import RuleSet

__all__ = [
    "Ferritin",
    "FerritinBounds",
    "PMOL_L",
    "parse_ferritin",
    "ferritin_bounds",
    "surely_above",
    "surely_at_most",
    "surely_below",
    "surely_at_least",
]

# Accepted unit spellings (compared after lower-casing, removing spaces and writing
# both micro signs, U+00B5 and U+03BC, as "u"), mapped to their canonical spelling.
_UNITS = {
    "ng/ml": "ng/mL",
    "ug/l": "µg/L",
    "pmol/l": "pmol/L",
}
PMOL_L = "pmol/L"  # the canonical spelling of pmol/L

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
        return bad("ferritin missing", "ferritin_missing")
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
    if canonical == PMOL_L:
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
# the values a ferritin allows


@dataclass(frozen=True)
class FerritinBounds:
    """The values a ferritin text allows: lo..hi, each end open or closed."""

    lo: float
    lo_open: bool
    hi: float | None  # None: no upper bound
    hi_open: bool


def ferritin_bounds(f: Ferritin) -> FerritinBounds | None:
    """The values ``f`` allows; None when it is not usable."""
    if not f.usable or f.ng_ml is None:
        return None
    v = f.ng_ml
    if f.censor == ">":
        return FerritinBounds(v, True, None, False)
    if f.censor == "<":
        return FerritinBounds(0.0, False, v, True)
    return FerritinBounds(v, False, v, False)


def surely_above(b: FerritinBounds, t: float) -> bool:
    """Every allowed value is > t."""
    return b.lo > t or (b.lo_open and b.lo >= t)


def surely_at_most(b: FerritinBounds, t: float) -> bool:
    """Every allowed value is <= t."""
    return b.hi is not None and b.hi <= t


def surely_below(b: FerritinBounds, t: float) -> bool:
    """Every allowed value is < t."""
    return b.hi is not None and (b.hi < t or (b.hi_open and b.hi <= t))


def surely_at_least(b: FerritinBounds, t: float) -> bool:
    """Every allowed value is >= t."""
    return b.lo >= t
