"""Self-contained HTML run report: calibration curve, results table, notes.

matplotlib is imported inside the plotting functions: it takes ~0.4 s to import, and
only a run's report draws; figures are embedded as base64 PNG so the report is one file.
"""

from __future__ import annotations

import base64
import html
import io
import warnings
from typing import TYPE_CHECKING

import numpy as np

from ._parallel import usable_cores
from ._workers import worker_pool
from .results import SampleResult
from .safe_text import printable

if TYPE_CHECKING:  # types only: the bead fit's modules load Numba, which the drawing processes never need
    from .beads.record import Calibration, CalibrationFailure

__all__ = ["render_report", "calibration_figure_png", "sample_figure_png", "sample_figures", "SampleFigure"]


def calibration_figure_png(cal: Calibration | CalibrationFailure | None) -> bytes | None:
    """PNG of the bead fit: certificate PE vs MFI per level, fitted line, residuals (``None`` without a fit)."""
    if cal is None or cal.curve is None:
        return None
    # matplotlib: heavy (~0.4 s to import), loaded only when a report is drawn
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = cal.curve
    fig, ax = plt.subplots(figsize=(5.5, 4.0), dpi=100)
    levels = [lv for lv in curve.levels if lv.mfi]
    for lv in levels:
        style = dict(color="tab:blue") if lv.used else dict(color="tab:red", marker="x")
        ax.scatter([lv.mfi], [lv.pe_per_bead], zorder=3, **style)
        ax.annotate(f"{lv.name} ({lv.residual_pct:+.1f} %)" if lv.residual_pct is not None
                    else lv.name, (lv.mfi, lv.pe_per_bead), textcoords="offset points",
                    xytext=(6, -10), fontsize=8)
    if levels:
        mfi = np.array([lv.mfi for lv in levels])
        x = np.logspace(np.log10(mfi.min()) - 0.3, np.log10(mfi.max()) + 0.3, 50)
        ax.plot(x, curve.pe_molecules(x), color="0.3", lw=1,
                label=f"log10 PE = {curve.intercept:.3f} + {curve.slope:.3f}·log10 MFI, R²={curve.r2:.4f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("median PE fluorescence (MFI, compensated)")
    ax.set_ylabel("PE molecules per bead (certificate)")
    ax.set_title(f"QuantiBRITE PE lot {cal.lot.id} — {'accepted' if cal.accepted else 'REJECTED'}")
    if levels:  # no fitted line without levels, and matplotlib warns about an empty legend
        ax.legend(fontsize=7, loc="upper left")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _has_figure(r: SampleResult) -> bool:
    """Whether the analysis left figure data for this sample (a file that could not be read leaves none)."""
    return bool(r.figure) and "density" in r.figure


class SampleFigure:
    """Draws the per-sample PNG; one instance serves a whole run.

    Building a matplotlib figure (axes, ticks, labels) cost more than drawing it: ~50 ms
    per sample, 59 % of a 96-tube run. So the figure and its artists are made once and
    each sample only sets their data, text and limits. Every artist a sample uses is set
    (or hidden) for every sample, so a figure never shows anything of the sample before:
    the tests check that a reused instance gives the same bytes as a new one.
    """

    def __init__(self) -> None:
        # matplotlib: heavy (~0.4 s to import), loaded only when a report is drawn
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        self._plt = plt
        self.fig, (a1, a2) = plt.subplots(1, 2, figsize=(7.0, 2.8), dpi=72)
        self.fig.subplots_adjust(left=0.08, right=0.98, bottom=0.16, top=0.9, wspace=0.28)
        self.a1, self.a2 = a1, a2
        self.density = a1.imshow(np.zeros((2, 2)), origin="lower", aspect="auto", cmap="viridis")
        self.outline = None  # contour of the gated monocytes (a new artist per sample)
        a1.tick_params(labelsize=6)
        self.stairs = a2.stairs([0.0], [0.0, 1.0], fill=True, color="tab:blue", alpha=0.6)
        self.median_line = a2.axvline(0.0, color="black", lw=1)
        self.median_text = a2.text(0.0, 0.0, "", fontsize=7)
        a2.axvline(np.log10(5000), color="red", lw=0.8, ls="--")
        a2.set_xlabel("HLA-DR antibodies bound per cell (AB/C)", fontsize=7)
        a2.set_ylabel("monocytes", fontsize=7)
        a2.tick_params(labelsize=6)
        self.no_abc = a2.text(0.5, 0.5, "no HLA-DR value (see QC)", ha="center", va="center", transform=a2.transAxes)

    def png(self, r: SampleResult) -> bytes | None:
        """PNG of one sample: CD14 vs SSC density with the gated monocytes' outline; AB/C histogram."""
        if not _has_figure(r):
            return None
        fig_data = r.figure
        a1, a2 = self.a1, self.a2
        h = np.asarray(fig_data["density"], dtype=float)
        xr, yr = fig_data["x_range"], fig_data["y_range"]
        shade = np.log1p(h.T)
        self.density.set_data(shade)
        self.density.set_clim(float(shade.min()), float(shade.max()))  # what imshow's autoscale picks
        self.density.set_extent((xr[0], xr[1], yr[0], yr[1]))
        if self.outline is not None:
            self.outline.remove()
            self.outline = None
        if fig_data.get("gated"):
            g = np.asarray(fig_data["gated"], dtype=float).T
            if g.max() > 0:
                xs = np.linspace(xr[0], xr[1], g.shape[1] + 1)
                ys = np.linspace(yr[0], yr[1], g.shape[0] + 1)
                self.outline = a1.contour(0.5 * (xs[:-1] + xs[1:]), 0.5 * (ys[:-1] + ys[1:]), g,
                                          levels=[0.5], colors="red", linewidths=1.0)
        a1.set_xlim(xr[0], xr[1])
        a1.set_ylim(yr[0], yr[1])
        a1.set_xlabel(fig_data["x_label"], fontsize=7)
        a1.set_ylabel(fig_data["y_label"], fontsize=7)
        a1.set_title(f"{printable(r.sample_id)}: {r.monocyte_count or 0:,} monocytes", fontsize=8)
        hist = fig_data.get("abc_hist")
        a2.axison = bool(hist)
        for artist in a2.get_children():
            if artist is not a2.patch:
                artist.set_visible(bool(hist))
        self.no_abc.set_visible(not hist)
        if hist:
            counts = np.asarray(hist["counts"], dtype=float)
            lo, hi = hist["log10_edges"]
            # log10 values on a linear axis with 10^k labels: same picture, a fraction of the
            # drawing time of a matplotlib log axis (its minor-tick machinery dominates)
            self.stairs.set_data(counts, np.linspace(lo, hi, counts.size + 1))
            top = float(counts.max()) if counts.size else 0.0
            a2.set_xlim(lo, hi)
            a2.set_ylim(0.0, 1.05 * top if top > 0 else 1.0)
            a2.set_xticks(range(int(lo), int(hi) + 1), [f"$10^{k}$" for k in range(int(lo), int(hi) + 1)])
            has_median = bool(r.hladr_abc)
            self.median_line.set_visible(has_median)
            self.median_text.set_visible(has_median)
            if has_median:
                x = float(np.log10(r.hladr_abc))
                self.median_line.set_xdata([x, x])
                self.median_text.set_position((x, top * 0.95))
                self.median_text.set_text(f" median {r.hladr_abc:,.0f}")
        buf = io.BytesIO()
        with warnings.catch_warnings():
            # a sample id in a script the bundled DejaVu font lacks (CJK, ...) draws as boxes in the PNG
            # title and matplotlib warns once per glyph; the id is in the report's HTML text, readable
            # in the browser's fonts, so that warning is not the user's concern (no other is silenced)
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from (current )?font", category=UserWarning)
            self.fig.savefig(buf, format="png")
        return buf.getvalue()

    def close(self) -> None:
        self._plt.close(self.fig)


_MIN_FIGURES_PER_PROCESS = 8  # below this, starting a process costs more than it saves


def _draw_all(results: list[SampleResult]) -> list[bytes | None]:
    drawer = SampleFigure()
    try:
        return [drawer.png(r) for r in results]
    finally:
        drawer.close()


def sample_figure_png(r: SampleResult) -> bytes | None:
    """PNG of one sample (a one-off :class:`SampleFigure`)."""
    return _draw_all([r])[0] if _has_figure(r) else None


def sample_figures(results: list[SampleResult], *, processes: int | None = None) -> list[bytes | None]:
    """Each sample's PNG (``None`` where it has no figure data), in order.

    Drawing is ~80 % of the report's time (text rendering in matplotlib), so a run with
    many samples is drawn in contiguous chunks on several processes: one per usable core
    (``processes=None``), each with at least 8 figures. The bytes are the same as drawn
    on one process.
    """
    todo = [k for k, r in enumerate(results) if _has_figure(r)]
    n_proc = min(usable_cores() if processes is None else processes, len(todo) // _MIN_FIGURES_PER_PROCESS)
    pngs: list[bytes | None] = [None] * len(results)
    if n_proc <= 1:
        drawn = _draw_all([results[k] for k in todo]) if todo else []
    else:
        bounds = [len(todo) * i // n_proc for i in range(n_proc + 1)]
        chunks = [[results[k] for k in todo[lo:hi]] for lo, hi in zip(bounds, bounds[1:], strict=False)]
        with worker_pool(n_proc) as pool:
            drawn = [png for part in pool.map(_draw_all, chunks) for png in part]
    for k, png in zip(todo, drawn, strict=True):
        pngs[k] = png
    return pngs


def gate_check_text(gate: dict) -> str:
    """One line of the automated gate's self-check figures (empty for a template gate)."""
    c = gate.get("checks") or {}
    if not c:
        return ""
    parts = []
    if c.get("agreement_jaccard") is not None:
        parts.append(f"2nd estimate overlap {c['agreement_jaccard']:.0%}")
    if c.get("agreement_median_ratio") is not None:
        parts.append(f"median HLA-DR {c['agreement_median_ratio'] - 1:+.1%}")
    if c.get("separation") is not None:
        parts.append(f"separation {c['separation']:.1f}")
    if c.get("hladr_ratio_to_negative") is not None:
        parts.append(f"HLA-DR x{c['hladr_ratio_to_negative']:.1f} of {c.get('hladr_negative_reference', '')}")
    if c.get("monocyte_share_of_cells") is not None:
        parts.append(f"{c['monocyte_share_of_cells']:.1%} of cells")
    return "; ".join(parts)


def _img(png: bytes | None, alt: str) -> str:
    if not png:
        return ""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def render_report(results: list[SampleResult], cal: Calibration | CalibrationFailure | None, *, notes: list[str],
                  run_id: str | None = None) -> str:
    """The run report as one HTML page (the sample figures as :func:`sample_figures` draws them).

    ``cal`` is the run's calibration (its fit drawn, its reasons listed), or the bead tube
    that gave none (its reason listed).

    ``run_id`` (the id shared by every file of the output set) is shown under the title and
    kept in a ``<meta name="hladr-run-id">`` tag, so a reader can check the page is of the run it expects.
    """
    def e(text: object) -> str:  # HTML-escaped, and no control/format characters (ANSI, bidi, NUL)
        return html.escape(printable(text))

    png = calibration_figure_png(cal)
    img = _img(png, "bead calibration") or "<p>No calibration fit.</p>"
    rows = []
    for r in results:
        cls = {"fail": "fail", "warn": "warn"}.get(r.qc, "")
        rows.append(
            f'<tr class="{cls}"><td>{e(r.sample_id)}</td><td>{e(r.file)}</td>'
            f"<td>{'' if r.monocyte_count is None else r.monocyte_count}</td>"
            f"<td>{'' if r.hladr_abc is None else f'{r.hladr_abc:,.0f}'}</td>"
            f"<td>{e(r.ferritin_text)} {e(r.ferritin_unit)}</td><td>{e(r.phenotype)}</td><td>{e(r.qc)}</td>"
            f"<td>{'<br>'.join(e(f.message) for f in r.flags if f.severity != 'info')}</td>"
            f"<td>{e(gate_check_text(r.gate))}</td></tr>"
        )
    reasons = "".join(f"<li>{e(x)}</li>" for x in (cal.reasons if cal is not None else ()))
    note_html = "".join(f"<li>{e(n)}</li>" for n in notes)
    run_meta = f'\n<meta name="hladr-run-id" content="{e(run_id)}">' if run_id else ""
    run_line = f"\n<p>Run id: <code>{e(run_id)}</code></p>" if run_id else ""
    pngs = sample_figures(results)
    figures = "".join(f"<div>{_img(png, printable(r.sample_id))}</div>" for r, png in zip(results, pngs, strict=True))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hladr run report</title>{run_meta}
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #bbb;padding:3px 8px;font-size:13px}} tr.fail{{background:#fdd}}
tr.warn{{background:#ffd}}</style></head><body>
<h1>hladr run report</h1>{run_line}
<h2>Calibration</h2>{img}<ul>{reasons}</ul>
<h2>Samples</h2>
<table><tr><th>sample</th><th>file</th><th>monocytes</th><th>HLA-DR AB/C</th><th>ferritin</th>
<th>phenotype</th><th>QC</th><th>reasons</th><th>gate self-check</th></tr>
{''.join(rows)}</table>
<h2>Gating and HLA-DR per sample</h2>
<p>Left: CD14 vs side scatter of all events (density), with the outline of the gated monocytes (red;
the automated gate is drawn in CD14, SSC, FSC and CD45 together, so its outline here is a projection).
Right: monocyte HLA-DR distribution with its median (black) and the 5000 AB/C threshold (red, dashed).</p>
{figures}
<h2>Notes</h2><ul>{note_html or '<li>none</li>'}</ul>
</body></html>
"""
