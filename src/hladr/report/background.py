"""The report drawn beside the analysis: a process that gets matplotlib ready while tubes are analysed.

Importing matplotlib, building the sample figure and the PDF backend's first page cost ~0.6 s,
and the calibration figure ~0.1 s: in a run of one tube they were most of the report's time and
a third of the run's. :class:`BackgroundReport` starts one drawing process when the run starts
(on a machine with a second core), which readies all of that while the main process calibrates
and analyses, draws the calibration figure as soon as there is one, and at the end draws the
report of a small run (fewer samples than make several processes worth their start). A larger
run is drawn on every core as before, with the calibration figure already drawn. The bytes are
those :func:`hladr.report.render_report` draws in the main process (tested).
"""

from __future__ import annotations

import json
from concurrent.futures import Future
from contextlib import ExitStack

from .._parallel import usable_cores
from .._workers import worker_pool
from . import _MIN_FIGURES_PER_PROCESS, ReportRun, render_report

__all__ = ["BackgroundReport"]


def _warm() -> bool:
    """In the drawing process: import and build what every report needs, once, at a lower priority than the
    analysis it runs beside (it has until the analysis ends)."""
    import os

    from .draw import warm_up

    if hasattr(os, "nice"):
        try:
            os.nice(5)
        except OSError:
            pass

    warm_up()
    return True


def _calibration(cal: dict, bead_figure: dict) -> bytes | None:
    from .draw import calibration_png

    return calibration_png(cal, bead_figure)


def _render(run: ReportRun, missing: list[str], cal_png: bytes | None) -> tuple[str, bytes]:
    return render_report(run, missing=missing, processes=1, calibration_png=cal_png)


def _key(cal: dict, bead_figure: dict) -> str:
    """What the calibration figure is drawn from (the record's run id aside)."""
    return json.dumps({k: v for k, v in cal.items() if k not in ("run_id", "calibration_run_id")}, sort_keys=True,
                      default=str) + json.dumps(bead_figure, sort_keys=True, default=str)


class BackgroundReport:
    """One drawing process for a run's report; a context manager (the process ends with it)."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._pool = None
        self._cal: tuple[str, Future] | None = None

    def __enter__(self) -> BackgroundReport:
        if usable_cores() >= 2:  # on one core it would only take turns with the analysis
            self._pool = self._stack.enter_context(worker_pool(1))
            self._pool.submit(_warm)
        return self

    def __exit__(self, *exc) -> None:
        self._stack.__exit__(*exc)

    def calibration(self, cal: dict, bead_figure: dict) -> None:
        """Draw the calibration figure now (``cal``: the plain calibration.json record)."""
        if self._pool is not None:
            self._cal = (_key(cal, bead_figure), self._pool.submit(_calibration, cal, bead_figure))

    def render(self, run: ReportRun, *, missing: list[str] = ()) -> tuple[str, bytes]:
        """(report.html, report.pdf) of the run, as :func:`render_report` draws them."""
        cal_png = None
        if self._cal is not None and self._cal[0] == _key(run.calibration or {}, run.bead_figure):
            cal_png = self._cal[1].result()
        n = sum(1 for s in run.samples if s.figure.get("steps"))
        if self._pool is None or n // _MIN_FIGURES_PER_PROCESS >= 2:  # several processes draw a large run
            return render_report(run, missing=list(missing), calibration_png=cal_png)
        return self._pool.submit(_render, run, list(missing), cal_png).result()
