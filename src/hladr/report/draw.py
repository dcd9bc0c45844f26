"""The report's pictures: each sample's gating sequence and AB/C histogram, and the bead calibration.

matplotlib is imported when a drawer is made (~0.4 s): only a report draws. Building a figure
(axes, ticks, labels) costs more than drawing it, so one :class:`SampleDrawer` serves a whole
run: each sample sets the data, text, ticks and limits of every artist it uses and hides the
others, so a picture never shows anything of the sample before (tested: a reused drawer gives
the bytes of a new one). Densities are 2-D histograms drawn as one image each (events in the
parent step grey, events kept coloured with viridis, which reads in every common colour-vision
deficiency), never a scatter of a million points.
"""

from __future__ import annotations

import io
import warnings

import numpy as np

__all__ = ["SampleDrawer", "calibration_png", "draw_samples", "REFERENCE_LINES", "MAX_STEPS"]

REFERENCE_LINES = (5000.0, 8000.0, 15000.0)  # AB/C: immunoparalysis, recovery, the normal range's lower end
MAX_STEPS = 5
_GATE_COLOUR = "#D55E00"  # Okabe-Ito vermillion: the gates' lines
_MEDIAN_COLOUR = "#000000"
_SUPER = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    """The figure as an 8-bit RGB PNG (the figure is opaque): the PDF places such a PNG as it is."""
    from PIL import Image  # matplotlib's own PNG writer; used directly to leave out the alpha channel

    with warnings.catch_warnings():
        # a sample id in a script the bundled DejaVu font lacks draws as boxes; the id is in the HTML
        # text, readable in the browser's fonts (no other warning is silenced)
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from (current )?font", category=UserWarning)
        fig.canvas.draw()
    buf = io.BytesIO()
    Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3]).save(buf, format="png")
    return buf.getvalue()


# --------------------------------------------------------------------------- ticks
def _asinh_ticks(lo: float, hi: float, cof: float) -> tuple[list[float], list[str]]:
    """Ticks at 0 and the powers of ten of the raw value, on an asinh(value / cofactor) axis; on a
    range narrower than two of them (a gate's parent of one population) also at 2 and 5 times them."""
    pos, lab = [], []
    for mult in ((1,), (2, 5)):
        for e in range(1, 8):
            for m in mult:
                for sign in (-1, 1):
                    v = sign * m * 10.0**e
                    if abs(v) < 2 * cof:  # crowded against 0 on this scale
                        continue
                    x = float(np.arcsinh(v / cof))
                    if lo <= x <= hi:
                        pos.append(x)
                        lab.append(("−" if sign < 0 else "") + (f"{m}×" if m > 1 else "") + "10"
                                   + str(e).translate(_SUPER))
        if len(pos) >= 2:
            break
    if lo <= 0.0 <= hi:
        pos.append(0.0)
        lab.append("0")
    order = np.argsort(pos)
    return [pos[i] for i in order], [lab[i] for i in order]


def _linear_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    span = hi - lo
    if not span > 0:
        return [], []
    raw = span / 4.0
    mag = 10.0 ** np.floor(np.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    ticks = np.arange(np.ceil(lo / step) * step, hi + 1e-9 * span, step)
    labels = [f"{t / 1000:g}K" if abs(t) >= 1000 else ("0" if t == 0 else f"{t:g}") for t in ticks]
    return [float(t) for t in ticks], labels


def _set_axis_ticks(ax, axis: dict, which: str) -> None:
    lo, hi = axis["range"]
    pos, lab = (_asinh_ticks(lo, hi, axis["cofactor"]) if axis["scale"] == "asinh" else _linear_ticks(lo, hi))
    (ax.set_xticks if which == "x" else ax.set_yticks)(pos, lab)


# --------------------------------------------------------------------------- the density image
def _rgb(step: dict, cmap) -> np.ndarray:
    """Parent events grey (darker = denser), kept events coloured by their density; empty bins white."""
    dens = np.asarray(step["density"], dtype=np.float64).T
    img = np.ones(dens.shape + (3,))
    if dens.max() > 0:
        p = np.log1p(dens) / np.log1p(dens.max())
        grey = 1.0 - 0.65 * p
        img[dens > 0] = grey[dens > 0, None] * np.ones(3)
    kept = step.get("kept")
    if kept is not None:
        k = np.asarray(kept, dtype=np.float64).T
        if k.max() > 0:
            shade = np.log1p(k) / np.log1p(k.max())
            col = cmap(0.25 + 0.75 * shade)[..., :3]
            img[k > 0] = col[k > 0]
    return img


class SampleDrawer:
    """Draws one sample's PNG: up to four gating steps and the AB/C histogram; one instance per run."""

    def __init__(self) -> None:
        plt = _pyplot()
        from matplotlib import colormaps

        self._plt = plt
        self._cmap = colormaps["viridis"]
        self.fig = plt.figure(figsize=(10.0, 6.4), dpi=96)
        gs = self.fig.add_gridspec(2, 3, left=0.075, right=0.985, bottom=0.075, top=0.93, wspace=0.3, hspace=0.5)
        self.step_axes = [self.fig.add_subplot(s) for s in (gs[0, 0], gs[0, 1], gs[0, 2], gs[1, 0], gs[1, 1])]
        # the AB/C histogram spans the second row's last two columns, or its last one beside a fifth step
        self._abc_wide, self._abc_narrow = gs[1, 1:].get_position(self.fig), gs[1, 2].get_position(self.fig)
        self.images = []
        self.lines = []
        for ax in self.step_axes:
            ax.tick_params(labelsize=8)
            self.images.append(ax.imshow(np.ones((2, 2, 3)), origin="lower", aspect="auto", interpolation="nearest"))
            self.lines.append([ax.plot([0, 0], [0, 0], color=_GATE_COLOUR, lw=1.2, ls="--")[0] for _ in range(4)])
        a = self.abc_ax = self.fig.add_subplot(gs[1, 1:])
        a.set_position(self._abc_wide)
        a.tick_params(labelsize=8)
        self.stairs = a.stairs([0.0], [0.0, 1.0], fill=True, color="#0072B2", alpha=0.65)
        for v, name in zip(REFERENCE_LINES, ("5,000", "8,000", "15,000"), strict=True):
            a.axvline(np.log10(v), color=_GATE_COLOUR, lw=0.9, ls="--")
            a.text(np.log10(v), 0.98, f"{name} ", transform=a.get_xaxis_transform(), fontsize=7, color=_GATE_COLOUR,
                   va="top", ha="right", rotation=90)
        self.median_line = a.axvline(0.0, color=_MEDIAN_COLOUR, lw=1.4)
        self.median_text = a.text(0.0, 0.5, "", transform=a.get_xaxis_transform(), fontsize=8, ha="right",
                                  rotation=90, va="center")
        a.set_xlabel("HLA-DR antibodies bound per cell (AB/C)", fontsize=9)
        a.set_ylabel("monocytes", fontsize=9)
        ticks = list(range(1, 7))
        a.set_xticks(ticks, ["10" + str(k).translate(_SUPER) for k in ticks])
        a.set_xlim(1.0, 6.0)
        self.abc_title = a.set_title("", fontsize=9)
        self.no_abc = a.text(0.5, 0.5, "", ha="center", va="center", transform=a.transAxes, fontsize=9)

    # ---------------------------------------------------------------- one sample
    def png(self, record: dict, figure: dict) -> bytes | None:
        """The sample's PNG, or None without figure data (a file that could not be read)."""
        steps = list(figure.get("steps") or [])
        if not steps:
            return None
        if len(steps) > MAX_STEPS:  # a long template path: its first gates and the monocytes
            steps = steps[: MAX_STEPS - 1] + [steps[-1]]
        self.abc_ax.set_position(self._abc_narrow if len(steps) == MAX_STEPS else self._abc_wide)
        counts = record.get("gate_counts") or {}
        for k, ax in enumerate(self.step_axes):
            self._step(ax, k, steps[k] if k < len(steps) else None, counts)
        self._abc(record, figure.get("abc_hist"))
        return _png(self.fig)

    def _step(self, ax, k: int, step: dict | None, counts: dict) -> None:
        ax.set_visible(step is not None)
        if step is None:
            return
        xa, ya = step["x"], step["y"]
        img = self.images[k]
        img.set_data(_rgb(step, self._cmap))
        img.set_extent((*xa["range"], *ya["range"]))
        ax.set_xlim(*xa["range"])
        ax.set_ylim(*ya["range"])
        _set_axis_ticks(ax, xa, "x")
        _set_axis_ticks(ax, ya, "y")
        ax.set_xlabel(xa["label"], fontsize=8)
        ax.set_ylabel(ya["label"], fontsize=8)
        n_kept = counts.get(step.get("count_key") or step["name"])
        parent_key = "events" if step["parent"] == "all events" else step["parent"]
        n_parent = counts.get(parent_key)
        if step.get("kept") is None:
            title = (f"{step['title']}\nall {n_parent:,} events (no gate)" if isinstance(n_parent, int)
                     else step["title"])
        elif isinstance(n_kept, int) and isinstance(n_parent, int) and n_parent > 0:
            title = f"{step['title']}\n{n_kept:,} = {n_kept / n_parent:.1%} of {step['parent']}"
        else:
            title = step["title"]
        ax.set_title(title, fontsize=9)
        pool = self.lines[k]
        for j, line in enumerate(pool):
            seg = step["lines"][j] if j < len(step.get("lines") or []) else None
            line.set_visible(seg is not None)
            if seg is None:
                continue
            if seg[0] == "x":
                line.set_data([seg[1], seg[1]], ya["range"])
            elif seg[0] == "y":
                line.set_data(xa["range"], [seg[1], seg[1]])
            else:
                line.set_data([seg[1], seg[3]], [seg[2], seg[4]])

    def _abc(self, record: dict, hist: dict | None) -> None:
        a = self.abc_ax
        has = bool(hist) and sum(hist["counts"]) > 0
        for artist in a.get_children():
            if artist not in (a.patch, self.no_abc) and hasattr(artist, "set_visible"):
                artist.set_visible(has)
        a.axison = has
        self.no_abc.set_visible(not has)
        self.no_abc.set_text("" if has else "no HLA-DR value (see the flags)")
        if not has:
            return
        counts = np.asarray(hist["counts"], dtype=float)
        lo, hi = hist["log10_edges"]
        # log10 values on a linear axis labelled 10^k: the picture of a log axis at a fraction of its drawing time
        self.stairs.set_data(counts, np.linspace(lo, hi, counts.size + 1))
        top = float(counts.max())
        a.set_ylim(0.0, 1.1 * top if top > 0 else 1.0)
        med = record.get("hladr_abc")
        self.median_line.set_visible(med is not None)
        self.median_text.set_visible(med is not None)
        if med:
            x = float(np.log10(med))
            self.median_line.set_xdata([x, x])
            self.median_text.set_position((x, 0.5))
            self.median_text.set_text(f"median {med:,.0f} ")
        n = record.get("monocyte_count")
        title = f"HLA-DR of the {n:,} gated monocytes" if isinstance(n, int) else "HLA-DR of the gated monocytes"
        self.abc_title.set_text(title if med is not None else f"{title}: NOT REPORTED (QC {record.get('qc')})")

    def close(self) -> None:
        self._plt.close(self.fig)


def draw_samples(items: list[tuple[dict, dict]]) -> list[bytes | None]:
    """PNG of each (record, figure) with one drawer (a worker process's chunk of a run; the process's
    readied drawer when there is one: a reused drawer draws the bytes of a new one)."""
    if _WARM is not None:
        return [_WARM.png(rec, fig) for rec, fig in items]
    drawer = SampleDrawer()
    try:
        return [drawer.png(rec, fig) for rec, fig in items]
    finally:
        drawer.close()


_WARM: SampleDrawer | None = None


def warm_up() -> None:
    """Import matplotlib, build this process's sample drawer and run the PDF backend once (a drawing
    process readied while the run's tubes are analysed: :mod:`hladr.report.background`)."""
    global _WARM
    if _WARM is None:
        _WARM = SampleDrawer()
        from .pdf import warm_up as pdf_warm_up

        pdf_warm_up()


# --------------------------------------------------------------------------- calibration
def calibration_png(cal: dict, bead_figure: dict) -> bytes | None:
    """The bead calibration: PE histogram with each level's population, the log-log fit, its residuals."""
    levels = [lv for lv in cal.get("levels") or [] if lv.get("mfi")]
    fit = cal.get("fit")
    if not fit and not bead_figure:
        return None
    plt = _pyplot()
    fig, (h, f, r) = plt.subplots(1, 3, figsize=(11.0, 3.4), dpi=96, gridspec_kw={"width_ratios": [1.3, 1.1, 0.8]})
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.16, top=0.88, wspace=0.32)
    for ax in (h, f, r):
        ax.tick_params(labelsize=8)
    if bead_figure.get("counts"):
        counts = np.asarray(bead_figure["counts"], dtype=float)
        lo, hi = bead_figure["log10_range"]
        h.stairs(counts, np.linspace(lo, hi, counts.size + 1), fill=True, color="#0072B2", alpha=0.6)
        palette = ("#E69F00", "#009E73", "#CC79A7", "#56B4E9")
        for k, (name, (a, b)) in enumerate(bead_figure.get("levels", {}).items()):
            h.axvspan(a, b, color=palette[k % 4], alpha=0.25)
            h.text(0.5 * (a + b), 0.98, name, transform=h.get_xaxis_transform(), ha="center", va="top", fontsize=7)
        ticks = list(range(int(np.ceil(lo)), int(np.floor(hi)) + 1))
        h.set_xticks(ticks, ["10" + str(t).translate(_SUPER) for t in ticks])
        h.set_xlim(lo, hi)
        h.set_xlabel(f"PE fluorescence ({cal.get('pe_channel') or 'PE'}, compensated)", fontsize=8)
        h.set_ylabel("singlet beads", fontsize=8)
        h.set_title("bead PE histogram and the four levels", fontsize=9)
    else:
        h.text(0.5, 0.5, "bead events not available\n(calibration record reused)", ha="center", va="center",
               transform=h.transAxes, fontsize=8)
        h.set_axis_off()
    finite = bool(fit) and all(isinstance(fit.get(k), int | float) for k in ("slope", "intercept", "r2"))
    if finite and levels:
        mfi = np.array([lv["mfi"] for lv in levels], dtype=float)
        pe = np.array([lv["pe_per_bead"] for lv in levels], dtype=float)
        used = np.array([bool(lv.get("used")) for lv in levels])
        f.scatter(np.log10(mfi[used]), np.log10(pe[used]), color="#0072B2", zorder=3, label="used")
        if (~used).any():
            f.scatter(np.log10(mfi[~used]), np.log10(pe[~used]), color=_GATE_COLOUR, marker="x", zorder=3,
                      label="not used")
        x = np.linspace(np.log10(mfi.min()) - 0.3, np.log10(mfi.max()) + 0.3, 20)
        f.plot(x, fit["intercept"] + fit["slope"] * x, color="0.3", lw=1)
        f.set_xlabel("log10 median PE of the level (MFI)", fontsize=8)
        f.set_ylabel("log10 PE molecules per bead", fontsize=8)
        f.set_title(f"fit: slope {fit['slope']:.3f}, R² {fit['r2']:.4f}", fontsize=9)
        f.legend(fontsize=7, loc="upper left")
        f.grid(True, alpha=0.3)
        res = [lv.get("residual_pct") for lv in levels]
        names = [lv["name"] for lv in levels]
        vals = [0.0 if v is None else v for v in res]
        r.bar(range(len(vals)), vals, color=["#0072B2" if u else _GATE_COLOUR for u in used])
        r.axhline(0.0, color="0.3", lw=0.8)
        r.set_xticks(range(len(vals)), names, fontsize=7)
        r.set_ylabel("residual (% of certificate PE)", fontsize=8)
        r.set_title("residuals per level", fontsize=9)
    else:
        for ax in (f, r):
            ax.set_axis_off()
        f.text(0.5, 0.5, "no calibration fit", ha="center", va="center", transform=f.transAxes)
    try:
        return _png(fig)
    finally:
        plt.close(fig)
