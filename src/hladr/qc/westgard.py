"""Westgard rules on a QC series (pure core: numbers in, violations out, no I/O).

Every public function takes a sequence of values in acquisition order (oldest
first; ``None`` or NaN marks a missing value) and returns small frozen results:
``estimate_limits(values) -> QCLimits`` and ``evaluate_westgard(values, ...) ->
list[Violation]``. Indices in the results are positions in the sequence given.

The rules are the standard multirule definitions (Westgard et al., Clin Chem
1981;27:493), applied to one series of one control material, here one metric of
the daily QuantiBRITE calibration (slope, intercept, MFI of a bead level). Each
value is turned into a z-score ``z = (x - mean) / sd``:

=======  ===========================================================================
rule     violated when
=======  ===========================================================================
1-3s     one point with ``|z| > 3``
2-2s     two consecutive points with ``z > 2`` (or both ``z < -2``)
R-4s     two consecutive points, one with ``z > 2`` and the other with ``z < -2``
         (so their range exceeds 4 SD)
4-1s     four consecutive points with ``z > 1`` (or all ``z < -1``)
10x      ten consecutive points on the same side of the mean (``z > 0``, or all ``z < 0``)
=======  ===========================================================================

The thresholds are the table ``WESTGARD_RULES`` below: they are the standard
definitions, not lab-specific settings.

Conventions (each one is tested):

- **Strict inequalities.** A point exactly on a limit is not beyond it: ``z = 3``
  does not violate 1-3s, ``z = 2`` does not count for 2-2s or R-4s, and a point
  exactly on the mean breaks a 10x run (it is on neither side).
- **Prospective evaluation.** The rules are checked as each new point arrives, on
  the window that ends at that point, as a lab does every day. A violation is
  reported at the point that completes it (``index``) with every point of the
  window (``indices``). A run that continues is reported again at each new point:
  eleven points above the mean give 10x at the 10th and at the 11th point, because
  each of those days was out of control.
- **Missing values are skipped.** ``None``/NaN is not a measurement: it neither
  breaks nor extends a run; "consecutive" means consecutive measured values.
- **Limits.** ``mean`` and ``sd`` are those of the control's established target
  when given. Otherwise they are estimated from the first ``baseline_n`` (20)
  measured values, or from all of them when there are fewer. Twenty is the
  minimum that CLSI C24 recommends for setting a new control's limits, and a
  baseline at the start of the series, rather than all points, keeps a later
  shift or drift from inflating the SD that is meant to detect it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "WESTGARD_RULES",
    "DEFAULT_RULES",
    "BASELINE_N",
    "WestgardRule",
    "QCLimits",
    "Violation",
    "estimate_limits",
    "evaluate_westgard",
]

BASELINE_N = 20
"""Measured values used to estimate mean and SD when they are not given (CLSI C24)."""


@dataclass(frozen=True)
class WestgardRule:
    """One rule: ``n`` consecutive points beyond ``limit_sd`` SDs.

    ``kind`` is ``"same-side"`` (all ``n`` points beyond the limit on the same side
    of the mean; with ``n = 1`` either side) or ``"opposite"`` (two consecutive
    points beyond the limit on opposite sides: the range rule).
    """

    name: str
    n: int
    limit_sd: float
    kind: str
    description: str


WESTGARD_RULES: dict[str, WestgardRule] = {
    r.name: r
    for r in (
        WestgardRule("1-3s", 1, 3.0, "same-side", "one point beyond mean ± 3 SD"),
        WestgardRule("2-2s", 2, 2.0, "same-side", "two consecutive points beyond the same ± 2 SD limit"),
        WestgardRule("R-4s", 2, 2.0, "opposite", "two consecutive points, one above +2 SD and one below -2 SD"),
        WestgardRule("4-1s", 4, 1.0, "same-side", "four consecutive points beyond the same ± 1 SD limit"),
        WestgardRule("10x", 10, 0.0, "same-side", "ten consecutive points on the same side of the mean"),
    )
}
"""The standard Westgard multirules, by name."""

DEFAULT_RULES = tuple(WESTGARD_RULES)


@dataclass(frozen=True)
class QCLimits:
    """Target mean and SD of a QC series and where they came from.

    Attributes
    ----------
    mean, sd : float
        Target mean and standard deviation (``sd > 0``).
    n : int
        Measured values the estimate used (0 when both were given).
    source : str
        ``"given"`` or a description such as ``"first 20 of 25 values"``.
    """

    mean: float
    sd: float
    n: int
    source: str

    def z(self, x: float) -> float:
        """Distance of ``x`` from the mean in SDs."""
        return (x - self.mean) / self.sd


@dataclass(frozen=True)
class Violation:
    """One Westgard rule violated by a window of the series.

    Attributes
    ----------
    rule : str
        Rule name (a key of ``WESTGARD_RULES``).
    index : int
        Position of the point that completes the violation (the newest in the window).
    indices : tuple of int
        Positions of every point involved, oldest first.
    message : str
        One line for people, naming the points and their SD distances.
    """

    rule: str
    index: int
    indices: tuple[int, ...]
    message: str


def _measured(values: Sequence[float | None]) -> list[tuple[int, float]]:
    out = []
    for i, v in enumerate(values):
        if v is None:
            continue
        x = float(v)
        if math.isfinite(x):
            out.append((i, x))
    return out


def estimate_limits(
    values: Sequence[float | None],
    *,
    mean: float | None = None,
    sd: float | None = None,
    baseline_n: int = BASELINE_N,
) -> QCLimits:
    """Target mean and SD: the ones given, or estimated from a baseline.

    Parameters
    ----------
    values : sequence of float or None
        The series in acquisition order; ``None``/NaN are skipped.
    mean, sd : float, optional
        Established target values. Either one not given is estimated from the
        first ``baseline_n`` measured values (all of them when there are fewer):
        the SD is the sample SD (``n - 1`` denominator) about the estimated mean,
        or the root-mean-square deviation about a given mean.
    baseline_n : int
        Size of the baseline (default 20, the CLSI C24 minimum).

    Returns
    -------
    QCLimits

    Raises
    ------
    ValueError
        ``sd`` given and not positive; fewer than two measured values to estimate
        the SD from; or an estimated SD of zero (all baseline values equal).
    """
    if baseline_n < 2:
        raise ValueError(f"baseline_n must be at least 2, got {baseline_n}")
    if sd is not None and not (math.isfinite(sd) and sd > 0):
        raise ValueError(f"sd must be a positive number, got {sd}")
    if mean is not None and sd is not None:
        return QCLimits(float(mean), float(sd), 0, "given")
    measured = [x for _, x in _measured(values)]
    base = measured[:baseline_n]
    if sd is None and len(base) < 2:
        raise ValueError(f"need at least 2 measured values to estimate the SD, got {len(base)}")
    est_mean = statistics.fmean(base) if mean is None else float(mean)
    if sd is None:
        # SD about the target: the sample SD when the mean is estimated too.
        ss = sum((x - est_mean) ** 2 for x in base)
        est_sd = math.sqrt(ss / (len(base) - 1)) if mean is None else math.sqrt(ss / len(base))
        if not est_sd > 0:
            raise ValueError(f"the {len(base)} baseline values are all equal: the SD is zero")
    else:
        est_sd = float(sd)
    return QCLimits(est_mean, est_sd, len(base), f"first {len(base)} of {len(measured)} values")


def evaluate_westgard(
    values: Sequence[float | None],
    *,
    mean: float | None = None,
    sd: float | None = None,
    rules: Sequence[str] = DEFAULT_RULES,
    baseline_n: int = BASELINE_N,
) -> list[Violation]:
    """Check a QC series against the Westgard rules and name every violation.

    Parameters
    ----------
    values : sequence of float or None
        The series in acquisition order (oldest first); ``None``/NaN are skipped.
    mean, sd : float, optional
        Target mean and SD; estimated as in :func:`estimate_limits` when not given.
    rules : sequence of str
        Rule names from ``WESTGARD_RULES`` (default: all five).
    baseline_n : int
        Baseline size for the estimate (default 20).

    Returns
    -------
    list of Violation
        Ordered by the completing point, then by the order of ``rules``.

    Raises
    ------
    ValueError
        An unknown rule name, or limits that cannot be set (see :func:`estimate_limits`).

    Notes
    -----
    ``z = (x - mean) / sd``; every comparison is strict (``z > 3``, never ``>=``),
    so a point exactly on a limit is within it. See the module docstring for the
    rule table and the conventions.

    Examples
    --------
    >>> [v.rule for v in evaluate_westgard([0, 0.5, 3.5], mean=0, sd=1)]
    ['1-3s']
    """
    unknown = [r for r in rules if r not in WESTGARD_RULES]
    if unknown:
        raise ValueError(f"unknown Westgard rule(s) {unknown}; known: {', '.join(WESTGARD_RULES)}")
    limits = estimate_limits(values, mean=mean, sd=sd, baseline_n=baseline_n)
    points = [(i, limits.z(x)) for i, x in _measured(values)]
    out: list[Violation] = []
    for k in range(len(points)):
        for name in rules:
            v = _check(WESTGARD_RULES[name], points, k)
            if v is not None:
                out.append(v)
    return out


def _sd_text(z: float) -> str:
    return f"{z:+.2f} SD"


def _check(rule: WestgardRule, points: list[tuple[int, float]], k: int) -> Violation | None:
    """The violation of ``rule`` completed by measured point ``k``, if any."""
    if k + 1 < rule.n:
        return None
    window = points[k + 1 - rule.n: k + 1]
    idx = tuple(i for i, _ in window)
    zs = [z for _, z in window]
    lim = rule.limit_sd
    where = f"point {idx[0]}" if len(idx) == 1 else f"points {idx[0]}-{idx[-1]}"
    if rule.kind == "opposite":
        (z0, z1) = zs
        if (z0 > lim and z1 < -lim) or (z0 < -lim and z1 > lim):
            return Violation(rule.name, idx[-1], idx,
                             f"{rule.name}: {where} at {_sd_text(z0)} and {_sd_text(z1)}, "
                             f"a range of {abs(z1 - z0):.2f} SD (> {2 * lim:g} SD across the mean)")
        return None
    if all(z > lim for z in zs):
        side = "above the mean" if lim == 0 else f"above +{lim:g} SD"
    elif all(z < -lim for z in zs):
        side = "below the mean" if lim == 0 else f"below -{lim:g} SD"
    else:
        return None
    if rule.n == 1:
        detail = f"{where} at {_sd_text(zs[0])}, {side}"
    elif rule.n <= 4:
        detail = f"{where} all {side} ({', '.join(f'{z:+.2f}' for z in zs)} SD)"
    else:
        detail = f"{where}: {rule.n} consecutive values {side}"
    return Violation(rule.name, idx[-1], idx, f"{rule.name}: {detail}")
