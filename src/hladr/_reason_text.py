"""The numbers of a phenotype call's reasons, written as a person writes them.

:mod:`hladr.phenotype` says why it called what it called in words (``mHLA-DR 1334 AB/C < 5000``);
this module gives those words their numbers: AB/C as a whole number, ferritin in ng/mL to at most
one decimal (rounded half up, trailing zeros dropped), thresholds as the rule table writes them.
A value is shown with more places only where rounding would put it on another side of the
threshold it is compared with (``4999.5 AB/C < 5000``, never ``5000 AB/C < 5000``): the words
never contradict the decision, which is made on the exact value. Pure functions, no thresholds here.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

from .ferritin import PMOL_L, Ferritin

__all__ = ["ABC_PLACES", "FERRITIN_PLACES", "dec", "threshold_text", "number_text", "abc_text", "ferritin_text"]


def dec(x: float) -> Decimal:
    """The shortest decimal that round-trips to ``x`` (the value as written)."""
    return Decimal(repr(float(x)))


def threshold_text(x: float) -> str:
    """Shortest exact text of a number, without a trailing ``.0`` (thresholds, as the rule table writes them)."""
    x = float(x)
    return f"{x:.0f}" if x.is_integer() else repr(x)


def _side(x: Decimal, t: Decimal) -> int:
    return (x > t) - (x < t)


# places a reason shows: AB/C as a whole number, ferritin in ng/mL to at most one decimal
ABC_PLACES = 0
FERRITIN_PLACES = 1


def number_text(x: float, places: int, threshold: float | None = None) -> str:
    """``x`` as a person writes it: rounded half up to ``places`` decimals, trailing zeros dropped
    (``1333.776`` -> ``1334``). Where the rounded text would stand on another side of ``threshold``
    than ``x`` (``4999.6`` shown as ``5000`` beside ``< 5000``), more places are shown until it does
    not: the words never contradict the decision."""
    x = float(x)
    if not math.isfinite(x):
        return repr(x)
    exact = dec(x)
    t = dec(threshold) if threshold is not None else None
    written = max(places, -int(exact.as_tuple().exponent))  # at every place written, x is on its own side
    for d in range(places, written + 1):
        shown = exact.quantize(Decimal(1).scaleb(-d), rounding=ROUND_HALF_UP)
        if t is None or _side(shown, t) == _side(exact, t):
            text = format(shown, "f")
            return text.rstrip("0").rstrip(".") if "." in text else text
    return repr(x)


def abc_text(x: float, threshold: float | None = None) -> str:
    """An AB/C value in a reason: a whole number (``1334 AB/C``), unless that would contradict ``threshold``."""
    return f"{number_text(x, ABC_PLACES, threshold)} AB/C"


def ferritin_text(f: Ferritin, threshold: float | None = None) -> str:
    """A ferritin in a reason: in ng/mL to at most one decimal (more only where ``threshold`` needs it),
    with the text it came from when it was converted from pmol/L."""
    if f.ng_ml is None:
        base = repr(f.text)
    else:
        base = f"{f.censor}{number_text(f.ng_ml, FERRITIN_PLACES, threshold)} ng/mL"
    if f.unit == PMOL_L:
        return f"{base} (from {f.text.strip()!r} {PMOL_L})"
    return base
