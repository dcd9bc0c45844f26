"""The run report: ``report.html`` (self-contained) and ``report.pdf`` (the archive copy).

Drawn from plain records (:class:`ReportRun`), the same for a run and for ``hladr report
OUT_DIR``, which re-draws both from results.json, calibration.json and figures.json without
re-analysis. The sample pictures are drawn once, on every usable core for a large run, and
used by both documents. matplotlib is imported only when a report is drawn.
"""

from __future__ import annotations

from .._parallel import usable_cores
from .._workers import worker_pool
from .model import FIGURES_FILE, ReportRun, ReportSample, figures_document, read_output

__all__ = ["ReportRun", "ReportSample", "FIGURES_FILE", "figures_document", "read_output", "render_report",
           "sample_pngs"]

_MIN_FIGURES_PER_PROCESS = 8  # below this, starting a process costs more than it saves


def sample_pngs(run: ReportRun, *, processes: int | None = None) -> list[bytes | None]:
    """Each sample's PNG (None without figure data), in order; a run of many samples is drawn in
    contiguous chunks on one process per usable core (``processes=None``), each with >= 8 samples.
    The bytes are those drawn on one process."""
    from .draw import draw_samples

    todo = [k for k, s in enumerate(run.samples) if s.figure.get("steps")]
    n_proc = min(usable_cores() if processes is None else processes, len(todo) // _MIN_FIGURES_PER_PROCESS)
    items = [(run.samples[k].record, run.samples[k].figure) for k in todo]
    if n_proc <= 1:
        drawn = draw_samples(items) if items else []
    else:
        bounds = [len(items) * i // n_proc for i in range(n_proc + 1)]
        chunks = [items[lo:hi] for lo, hi in zip(bounds, bounds[1:], strict=False)]
        with worker_pool(n_proc) as pool:
            drawn = [png for part in pool.map(draw_samples, chunks) for png in part]
    pngs: list[bytes | None] = [None] * len(run.samples)
    for k, png in zip(todo, drawn, strict=True):
        pngs[k] = png
    return pngs


def render_report(run: ReportRun, *, missing: list[str] = (), processes: int | None = None,
                  calibration_png: bytes | None = None) -> tuple[str, bytes]:
    """(report.html text, report.pdf bytes) of a run; ``calibration_png``: the calibration figure
    when it is already drawn (:class:`hladr.report.background.BackgroundReport`)."""
    from .draw import calibration_png as draw_calibration
    from .html import render_html
    from .pdf import render_pdf

    pngs = sample_pngs(run, processes=processes)
    cal_png = calibration_png if calibration_png is not None else draw_calibration(run.calibration or {},
                                                                                    run.bead_figure)
    return render_html(run, pngs, cal_png, list(missing)), render_pdf(run, pngs, cal_png)
