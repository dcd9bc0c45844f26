"""``hladr calibration history``: the calibration series, its Westgard rules and Levey-Jennings chart.

``calibration_history(db, *, instrument, since, out_png) -> int`` reads the
calibrations kept in the results store (one instrument), prints them as a table
with every Westgard violation, writes the Levey-Jennings PNG and returns the exit
status:

====  ===================================================================
0     no Westgard violation
1     at least one violation (each is printed: metric, rule, date, message)
2     (raised as ``HladrError``) no store, no calibration to show, or
      several instruments and no ``--instrument``
====  ===================================================================

What is monitored
    For each calibration: the fit's slope and intercept, and the median PE
    (MFI) of each bead level. Limits are the mean and SD of the first 20
    accepted calibrations of the series shown (all of them when fewer; see
    ``westgard``), so ``--since`` restarts the baseline, e.g. after a bead-lot
    change or a service visit. Rejected calibrations are listed and drawn, but
    are not part of the statistics: they are already failures, and their values
    (a missing level, a bad fit) would distort the limits. A saturated level's
    MFI is clipped by the detector and is left out the same way.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .._atomic import write_atomic
from ..beads.lots import LEVEL_NAMES
from ..errors import StoreError
from ..safe_text import printable
from ..store import CalibrationPoint, calibration_series, default_db_path
from .chart import ChartMetric, levey_jennings_png
from .westgard import BASELINE_N, DEFAULT_RULES, WESTGARD_RULES, QCLimits, Violation, estimate_limits, evaluate_westgard

__all__ = ["calibration_history", "HistoryMetric", "history_metrics"]

DEFAULT_PNG = "levey_jennings.png"


@dataclass(frozen=True)
class HistoryMetric:
    """One monitored metric of the series, with its limits and violations."""

    key: str
    label: str
    title: str
    ylabel: str
    values: tuple[float | None, ...]
    in_qc: tuple[bool, ...]
    limits: QCLimits | None
    violations: tuple[Violation, ...]


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _metric_values(points: Sequence[CalibrationPoint]) -> list[tuple[str, str, str, str, list[float | None]]]:
    """(key, short label, panel title, y label, values) of every monitored metric."""
    out = [
        ("slope", "slope", "Slope of log10(PE per bead) vs log10(MFI)", "slope (log-log)",
         [_finite(p.slope) for p in points]),
        ("intercept", "intercept", "Intercept of log10(PE per bead) vs log10(MFI)", "intercept (log10 PE)",
         [_finite(p.intercept) for p in points]),
    ]
    for name in LEVEL_NAMES:
        vals: list[float | None] = []
        pe = None
        for p in points:
            lv = p.level(name)
            ok = lv is not None and lv.used and not lv.saturated
            vals.append(_finite(lv.mfi) if ok else None)  # type: ignore[union-attr]
            if lv is not None and pe is None:
                pe = lv.pe_per_bead
        pe_text = f" ({pe:,.0f} PE per bead, first lot)" if pe else ""
        out.append((f"mfi_{name}", f"MFI {name}", f"MFI of bead level '{name}'{pe_text}",
                    "median PE fluorescence\n(channel units)", vals))
    return out


def history_metrics(points: Sequence[CalibrationPoint], *, rules: Sequence[str] = DEFAULT_RULES) -> list[HistoryMetric]:
    """Evaluate the Westgard rules on each metric of a calibration series.

    Parameters
    ----------
    points : sequence of CalibrationPoint
        One instrument's calibrations, oldest first.
    rules : sequence of str
        Westgard rules to apply (default: 1-3s, 2-2s, R-4s, 4-1s, 10x).

    Returns
    -------
    list of HistoryMetric
        Slope, intercept, then the MFI of each level. ``limits`` is ``None`` (and
        nothing is evaluated) when a metric has fewer than two accepted values.
    """
    metrics = []
    in_qc = tuple(p.accepted for p in points)
    for key, label, title, ylabel, vals in _metric_values(points):
        qc_vals = [v if q else None for v, q in zip(vals, in_qc, strict=True)]
        try:
            limits: QCLimits | None = estimate_limits(qc_vals)
        except ValueError:
            limits = None
        violations: list[Violation] = []
        if limits is not None:
            violations = evaluate_westgard(qc_vals, mean=limits.mean, sd=limits.sd, rules=rules)
        metrics.append(HistoryMetric(key, label, title, ylabel, tuple(vals), in_qc, limits, tuple(violations)))
    return metrics


def _select(db: Path, instrument: str | None, since: _dt.date | None, lot_id: str | None) -> list[CalibrationPoint]:
    if instrument is None:
        points = calibration_series(db, since=since, lot_id=lot_id)
    else:  # a serial number first, then an instrument model name
        points = (calibration_series(db, serial=instrument, since=since, lot_id=lot_id)
                  or calibration_series(db, instrument=instrument, since=since, lot_id=lot_id))
    if not points:
        what = "".join([
            f" for instrument {instrument!r}" if instrument else "",
            f" since {since.isoformat()}" if since else "",
            f" of lot {lot_id!r}" if lot_id else "",
        ])
        raise StoreError(f"{db}: no calibrations stored{what}")
    machines = sorted({(p.instrument or "?", p.serial or "?") for p in points})
    if len(machines) > 1:
        names = ", ".join(f"{i} SN {s}" for i, s in machines)
        raise StoreError(
            f"{db}: calibrations from {len(machines)} instruments ({names}); a chart is per instrument: "
            "choose one with --instrument SN"
        )
    return points


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def format_series(points: Sequence[CalibrationPoint], metrics: Sequence[HistoryMetric]) -> str:
    """The series as a text table, one row per calibration, with the rules each point violated."""
    flags: dict[int, list[str]] = {}
    for m in metrics:
        for v in m.violations:
            rules = flags.setdefault(v.index, [])
            if v.rule not in rules:
                rules.append(v.rule)
    head = (f"{'#':>3}  {'date':<10}  {'instrument':<22} {'lot':<8} {'slope':>7} {'intercept':>9} {'R²':>8} "
            f"{'accepted':<8}" + "".join(f" {'MFI ' + n:>12}" for n in LEVEL_NAMES) + "  violations")
    lines = [head]
    for i, p in enumerate(points):
        inst = printable(f"{p.instrument or '?'} {p.serial or ''}".strip())  # text of the FCS files: shown safe
        lot = printable(p.lot_id)
        mfis = "".join(f" {_fmt(p.mfi(n), '12.1f'):>12}" for n in LEVEL_NAMES)
        lines.append(
            f"{i:>3}  {p.date.isoformat():<10}  {inst[:22]:<22} {lot[:8]:<8} {_fmt(p.slope, '7.4f'):>7} "
            f"{_fmt(p.intercept, '9.4f'):>9} {_fmt(p.r2, '8.5f'):>8} {'yes' if p.accepted else 'NO':<8}{mfis}"
            + (f"  {', '.join(sorted(flags[i], key=list(WESTGARD_RULES).index))}" if i in flags else "")
        )
    return "\n".join(lines)


def format_limits(metrics: Sequence[HistoryMetric]) -> str:
    """Mean, SD and baseline size of each metric."""
    lines = []
    for m in metrics:
        if m.limits is None:
            lines.append(f"  {m.label:<14} too few accepted values to set limits; not evaluated")
        else:
            lim = m.limits
            cv = f"  CV {100 * lim.sd / abs(lim.mean):.2f} %" if lim.mean else ""
            lines.append(f"  {m.label:<14} mean {_num(lim.mean):>12}  SD {_num(lim.sd):>10}{cv}  ({lim.source})")
    return "\n".join(lines)


def _num(x: float) -> str:
    return f"{x:,.1f}" if abs(x) >= 100 else f"{x:.5f}"


def format_violations(points: Sequence[CalibrationPoint], metrics: Sequence[HistoryMetric]) -> str:
    """Every violation: metric, rule, date of the point that completes it, message."""
    rows = [(v.index, k, m.label, v) for k, m in enumerate(metrics) for v in m.violations]
    if not rows:
        return ""
    lines = [f"  {'metric':<14} {'rule':<5} {'date':<10}  message"]
    for index, _, label, v in sorted(rows, key=lambda r: r[:2]):
        lines.append(f"  {label:<14} {v.rule:<5} {points[index].date.isoformat():<10}  {v.message}")
    return "\n".join(lines)


def calibration_history(
    db: str | os.PathLike | None,
    *,
    instrument: str | None = None,
    since: _dt.date | None = None,
    out_png: str | os.PathLike | None = None,
    lot_id: str | None = None,
) -> int:
    """Print the calibration history with its Westgard violations and write the Levey-Jennings chart.

    Parameters
    ----------
    db : path or None
        The results store; ``$HLADR_DB`` or the default path when ``None``.
    instrument : str, optional
        Serial number (``$CYTSN``) or model name (``$CYT``) of the instrument.
        Required when the store holds more than one instrument.
    since : date, optional
        First acquisition date shown; the baseline starts there.
    out_png : path, optional
        The chart; ``levey_jennings.png`` in the current folder when ``None``.
    lot_id : str, optional
        Only calibrations with this bead lot.

    Returns
    -------
    int
        0 no violation, 1 at least one violation.

    Raises
    ------
    StoreError
        No store, no calibration to show, or several instruments without ``instrument``.
    """
    path = Path(db) if db is not None else default_db_path()
    points = _select(path, instrument, since, lot_id)
    metrics = history_metrics(points)
    first, last = points[0], points[-1]
    # instrument, serial and lot ids come from the FCS files and lot records: no control characters on the
    # terminal or in the chart (the same rule as the run's table, :mod:`hladr.safe_text`)
    machine = printable(f"{first.instrument or 'unknown instrument'}"
                        + (f" (SN {first.serial})" if first.serial else ""))
    period = f"{first.date.isoformat()} to {last.date.isoformat()}"
    n_rej = sum(not p.accepted for p in points)
    print(f"calibration history: {machine}, {period}, {len(points)} calibrations"
          + (f" ({n_rej} rejected, not in the QC statistics)" if n_rej else "") + f"; store {printable(path)}")
    print(format_series(points, metrics))
    print(f"QC limits (rules {', '.join(DEFAULT_RULES)}):")
    print(format_limits(metrics))
    baseline = max((m.limits.n for m in metrics if m.limits is not None), default=0)
    if 0 < baseline < BASELINE_N:
        print(f"note: limits from only {baseline} accepted calibrations ({BASELINE_N} recommended): provisional")
    n_viol = sum(len(m.violations) for m in metrics)
    if n_viol:
        print(f"Westgard violations ({n_viol}):")
        print(format_violations(points, metrics))
    else:
        print("Westgard: no violation")

    lots = sorted({printable(p.lot_id) for p in points})
    chart = [
        ChartMetric(
            key=m.key, title=m.title, ylabel=m.ylabel, dates=tuple(p.date for p in points), values=m.values,
            in_qc=m.in_qc, lots=tuple(printable(p.lot_id) for p in points),
            mean=m.limits.mean if m.limits else None, sd=m.limits.sd if m.limits else None,
            baseline_n=m.limits.n if m.limits else 0,
        )
        for m in metrics
    ]
    subtitle = (f"bead lot{'s' if len(lots) > 1 else ''} {', '.join(lots)}; {len(points)} calibrations; "
                f"limits: mean and SD of the first {baseline} accepted; "
                f"Westgard rules {', '.join(DEFAULT_RULES)}: {n_viol} violation{'s' if n_viol != 1 else ''}")
    png = levey_jennings_png(
        chart, {m.key: m.violations for m in metrics},
        title=f"Levey-Jennings chart, QuantiBRITE PE calibration: {machine}, {period}", subtitle=subtitle,
    )
    out = Path(out_png) if out_png is not None else Path(DEFAULT_PNG)
    write_atomic(out, png, mode=0o644)
    print(f"wrote {printable(out)}")
    return 1 if n_viol else 0
