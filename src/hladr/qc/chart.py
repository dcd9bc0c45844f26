"""Levey-Jennings chart of the calibration history (PNG bytes; matplotlib inside the function).

``levey_jennings_png(series, violations_by_metric, *, title) -> bytes`` draws one
panel per ``ChartMetric`` (slope, intercept, MFI of each bead level), stacked on
a shared date axis: the values in acquisition order, the target mean and the
±1/2/3 SD limits (labelled with their values at the right edge), the baseline
the limits were estimated from (shaded), bead-lot changes (dotted verticals),
rejected calibrations (grey crosses, not part of the QC statistics) and every
Westgard violation (red: the point that completes it, filled, with the rule
names; the other points of the violation, ringed).

The figure is built on ``matplotlib.figure.Figure`` with the Agg canvas: no
pyplot state, no GUI backend, safe in threads and on servers.
"""

from __future__ import annotations

import datetime as _dt
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .westgard import Violation

__all__ = ["ChartMetric", "levey_jennings_png"]


@dataclass(frozen=True)
class ChartMetric:
    """One QC metric over time, ready to draw.

    Attributes
    ----------
    key : str
        Identifier, also the key of ``violations_by_metric`` (e.g. ``"slope"``, ``"mfi_high"``).
    title : str
        Panel title.
    ylabel : str
        y-axis label with units.
    dates : tuple of date
        Acquisition date of each point.
    values : tuple of float or None
        The metric; ``None`` when the calibration has no value for it.
    in_qc : tuple of bool
        False for points outside the QC statistics (rejected calibrations).
    lots : tuple of str
        Bead lot of each point (lot changes are marked).
    mean, sd : float or None
        Target mean and SD; ``None`` when there were too few points to set them.
    baseline_n : int
        How many of the first QC points the limits were estimated from (0: given).
    """

    key: str
    title: str
    ylabel: str
    dates: tuple[_dt.date, ...]
    values: tuple[float | None, ...]
    in_qc: tuple[bool, ...]
    lots: tuple[str, ...]
    mean: float | None
    sd: float | None
    baseline_n: int = 0


_LIMIT_STYLE = {
    0: ("#2e7d32", "-", 1.3),
    1: ("#9e9e9e", ":", 1.0),
    2: ("#ef6c00", "--", 1.0),
    3: ("#c62828", "-.", 1.1),
}


def _baseline_end(m: ChartMetric) -> int | None:
    """Index of the last point of the baseline (the ``baseline_n``-th QC value)."""
    if not m.baseline_n:
        return None
    seen = 0
    for i, (v, q) in enumerate(zip(m.values, m.in_qc, strict=True)):
        if v is not None and q:
            seen += 1
            if seen == m.baseline_n:
                return i
    return None


def levey_jennings_png(
    series: Sequence[ChartMetric],
    violations_by_metric: Mapping[str, Sequence[Violation]],
    *,
    title: str,
    subtitle: str = "",
    dpi: int = 110,
) -> bytes:
    """Draw the Levey-Jennings chart of several metrics and return PNG bytes.

    Parameters
    ----------
    series : sequence of ChartMetric
        One panel each, top to bottom, all on the same dates.
    violations_by_metric : mapping of str to sequence of Violation
        Westgard violations per ``ChartMetric.key``; indices refer to positions
        in that metric's ``values``.
    title : str
        Figure title (instrument and period).
    subtitle : str
        Second title line (e.g. where the limits come from).
    dpi : int
        Resolution of the PNG.

    Returns
    -------
    bytes
        The PNG file.

    Raises
    ------
    ValueError
        No metric to draw.
    """
    if not series:
        raise ValueError("no metric to draw")
    # matplotlib: heavy (~0.4 s to import), loaded only when a chart is drawn
    from matplotlib import dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    n = len(series)
    fig = Figure(figsize=(11.5, 2.35 * n + 1.6), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    for ax, m in zip(axes, series, strict=True):
        _panel(ax, m, violations_by_metric.get(m.key, ()))
    last = axes[-1]
    last.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=4, maxticks=12))
    last.xaxis.set_major_formatter(mdates.DateFormatter("%d %b %Y"))
    for label in last.get_xticklabels():
        label.set_rotation(30)
        label.set_horizontalalignment("right")
    last.set_xlabel("acquisition date of the bead tube ($DATE)")
    first_date, last_date = min(series[0].dates), max(series[0].dates)
    pad = max(_dt.timedelta(days=1), (last_date - first_date) * 0.03)
    last.set_xlim(first_date - pad, last_date + pad)

    handles = [
        Line2D([], [], color="#1565c0", marker="o", markersize=4, lw=1, label="accepted calibration"),
        Line2D([], [], color="#757575", marker="x", lw=0, label="rejected (not in QC statistics)"),
        Line2D([], [], color="#d50000", marker="o", markersize=7, lw=0, label="Westgard violation (rule named)"),
        Line2D([], [], color="#d50000", marker="o", markersize=9, lw=0, markerfacecolor="none",
               label="other points of the violation"),
        Line2D([], [], color=_LIMIT_STYLE[0][0], ls=_LIMIT_STYLE[0][1], label="mean"),
        Line2D([], [], color=_LIMIT_STYLE[1][0], ls=_LIMIT_STYLE[1][1], label="± 1 SD"),
        Line2D([], [], color=_LIMIT_STYLE[2][0], ls=_LIMIT_STYLE[2][1], label="± 2 SD"),
        Line2D([], [], color=_LIMIT_STYLE[3][0], ls=_LIMIT_STYLE[3][1], label="± 3 SD"),
        Patch(color="#e3f2fd", label="baseline (mean and SD estimated here)"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=5, fontsize=8, frameon=False)
    fig.suptitle(title + (f"\n{subtitle}" if subtitle else ""), fontsize=11)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _panel(ax, m: ChartMetric, violations: Sequence[Violation]) -> None:
    dates, values = m.dates, m.values
    qc = [i for i, (v, q) in enumerate(zip(values, m.in_qc, strict=True)) if v is not None and q]
    rejected = [i for i, (v, q) in enumerate(zip(values, m.in_qc, strict=True)) if v is not None and not q]
    ax.set_title(m.title, fontsize=9.5, loc="left")
    ax.set_ylabel(m.ylabel, fontsize=8.5)
    ax.tick_params(labelsize=8)
    ax.yaxis.set_major_formatter(_tick_formatter())
    ax.grid(axis="x", color="#eeeeee", lw=0.6)

    end = _baseline_end(m)
    if end is not None and m.mean is not None:
        ax.axvspan(dates[0] - _dt.timedelta(hours=12), dates[end] + _dt.timedelta(hours=12),
                   color="#e3f2fd", zorder=0)
    if m.mean is not None and m.sd is not None:
        for k in (0, 1, 2, 3):
            color, ls, lw = _LIMIT_STYLE[k]
            for sign in ((1,) if k == 0 else (1, -1)):
                y = m.mean + sign * k * m.sd
                ax.axhline(y, color=color, ls=ls, lw=lw, zorder=1)
                name = "mean" if k == 0 else f"{'+' if sign > 0 else '-'}{k} SD"
                ax.text(1.005, y, f"{name} {_fmt(y)}", transform=ax.get_yaxis_transform(), fontsize=7,
                        color=color, va="center", ha="left", clip_on=False)
        # the scale follows the limits and the accepted points; a rejected point far off is drawn at the edge
        lo, hi = m.mean - 4 * m.sd, m.mean + 4 * m.sd
        vals = [values[i] for i in qc]
        if vals:
            lo, hi = min(lo, min(vals)), max(hi, max(vals))
        room = (0.22 if violations else 0.06) * (hi - lo)  # for the rule names beyond the outermost points
        lo, hi = lo - room, hi + room
        ax.set_ylim(lo, hi)
    else:
        ax.text(0.5, 0.92, "too few accepted calibrations to set QC limits", transform=ax.transAxes,
                ha="center", va="top", fontsize=8, color="#555555")

    if qc:
        ax.plot([dates[i] for i in qc], [values[i] for i in qc], color="#1565c0", marker="o", markersize=4,
                lw=1, zorder=3)
    if rejected:
        lo, hi = ax.get_ylim()
        inside = [i for i in rejected if lo <= values[i] <= hi]
        ax.plot([dates[i] for i in inside], [values[i] for i in inside], color="#757575", marker="x",
                lw=0, markersize=6, zorder=3)
        for i in rejected:
            if i in inside:
                continue
            top = values[i] > hi
            edge = hi - 0.03 * (hi - lo) if top else lo + 0.03 * (hi - lo)
            ax.plot([dates[i]], [edge], color="#757575", marker="^" if top else "v", lw=0, markersize=6, zorder=3)
            ax.annotate(f"rejected, {_fmt(values[i])} (off scale)", (dates[i], edge), xytext=(-6, 0),
                        textcoords="offset points", ha="right", va="center", fontsize=7, color="#616161")

    previous = None
    for i, lot in enumerate(m.lots):
        if previous is not None and lot != previous:
            ax.axvline(dates[i] - _dt.timedelta(hours=12), color="#6a1b9a", ls=":", lw=1)
            ax.text(dates[i] - _dt.timedelta(hours=12), 0.97, f" lot {lot}", transform=ax.get_xaxis_transform(),
                    fontsize=7, color="#6a1b9a", va="top")
        previous = lot

    by_point: dict[int, list[str]] = {}
    ringed: set[int] = set()
    for v in violations:
        names = by_point.setdefault(v.index, [])
        if v.rule not in names:
            names.append(v.rule)
        ringed.update(i for i in v.indices if i != v.index)
    ringed -= set(by_point)
    if ringed:
        ax.plot([dates[i] for i in sorted(ringed)], [values[i] for i in sorted(ringed)], lw=0, marker="o",
                markersize=9, markerfacecolor="none", markeredgecolor="#d50000", zorder=4)
    for i, names in sorted(by_point.items()):
        ax.plot([dates[i]], [values[i]], lw=0, marker="o", markersize=7, color="#d50000", zorder=5)
        away = 1 if m.mean is None or values[i] >= m.mean else -1  # write away from the mean, off the line
        ax.annotate("\n".join(names), (dates[i], values[i]), xytext=(0, away * 7),
                    textcoords="offset points", ha="center", va="bottom" if away > 0 else "top", fontsize=6.5,
                    linespacing=1.0, color="#d50000", fontweight="bold", zorder=6)


def _tick_formatter():
    from matplotlib.ticker import FuncFormatter  # matplotlib: heavy, loaded only when a chart is drawn

    return FuncFormatter(lambda y, _pos: f"{y:,.0f}" if abs(y) >= 1000 else f"{y:g}")


def _fmt(y: float) -> str:
    a = abs(y)
    if a >= 1000:
        return f"{y:,.0f}"
    if a >= 10:
        return f"{y:.1f}"
    return f"{y:.4f}"
