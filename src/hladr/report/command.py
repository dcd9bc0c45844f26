"""``hladr report OUT_DIR``: draw report.html and report.pdf again from an output folder's records.

No tube is read and nothing is analysed: the report is drawn from results.json,
calibration.json and figures.json, so the same run gives the same report (a new hladr draws
it its way). Each file is replaced atomically; a reader never sees half a report.
"""

from __future__ import annotations

from pathlib import Path

from .._atomic import write_atomic
from . import read_output, render_report

__all__ = ["rerender"]


def rerender(out_dir: str | Path) -> tuple[list[Path], list[str], str]:
    """Re-draw the report of ``out_dir``; return (files written, what could not be shown, run id)."""
    out = Path(out_dir)
    run, missing = read_output(out)
    html, pdf = render_report(run, missing=missing)
    paths = [out / "report.html", out / "report.pdf"]
    write_atomic(paths[0], html)
    write_atomic(paths[1], pdf)
    return paths, missing, run.run_id
