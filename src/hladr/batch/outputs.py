"""The output set of ``hladr run``: results.csv, results.json, calibration.json, figures.json, report.html,
report.pdf, and the table.

Every file of one set carries the same **run id** (:func:`new_run_id`): results.json
and calibration.json at their top level (``run_id``), results.csv in its last column
(``run_id``), report.html under its title and in ``<meta name="hladr-run-id">``. The
set is switched in whole (:mod:`hladr.batch.output_set`), but a reader that opens
``OUT/results.csv`` and, later, ``OUT/results.json`` by path may straddle a switch
and pair two runs: comparing the run ids tells.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from .._atomic import write_atomic
from ..flags import qc_reasons
from ..report import FIGURES_FILE, ReportRun, ReportSample, figures_document, render_report
from ..results import SampleResult
from ..safe_text import csv_cell, dumps_strict, printable
from ..store import json_default
from .worklist import PROVENANCE_COLUMNS, RUN_ID_COLUMN, SPEC_RESULT_COLUMNS

if TYPE_CHECKING:  # types only
    from ..beads.record import Calibration, CalibrationFailure
    from ..report.background import BackgroundReport

__all__ = ["RESULT_COLUMNS", "NOT_IN_RESULTS_JSON", "new_run_id", "results_csv", "sample_record", "write_outputs",
           "format_table"]

RESULT_COLUMNS = list(SPEC_RESULT_COLUMNS)
# fields of a result that results.json leaves out: the figure data (drawn in report.html) and the tube's
# acquisition settings (kept in the results store's tubes; results.json is as it was before the store)
NOT_IN_RESULTS_JSON = ("figure", "acquisition")


def new_run_id(now: _dt.datetime | None = None) -> str:
    """A new run id: UTC time to the second, then 48 random bits (``20260314T091502Z-3f9a1c0b7d2e``).

    Sortable by time for a person, unique without coordination between hosts
    (two runs in the same second collide with probability 2**-48).
    """
    now = now or _dt.datetime.now(_dt.UTC)
    return f"{now.astimezone(_dt.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(6)}"


def _fmt_number(x: float | None, digits: int = 0) -> str:
    if x is None:
        return ""
    return f"{x:.{digits}f}"


def results_csv(results: Iterable[SampleResult], *, run_id: str | None = None) -> str:
    """results.csv text: the SPEC columns, provenance, the worklist's extra columns, then ``run_id``.

    ``run_id`` comes last (when given) so that every column that was there before
    keeps its position. Every text cell (worklist values, ``$SMNO``, file names,
    messages, extra column names) goes through :func:`hladr.safe_text.csv_cell`:
    a cell a spreadsheet would evaluate as a formula is prefixed with ``'``. The
    numbers hladr formats itself (counts, AB/C, ferritin in ng/mL; never negative)
    are written as plain numbers.
    """
    results = list(results)
    extra_cols: list[str] = []
    for r in results:
        for k, _ in r.extra:
            if k not in extra_cols and k not in RESULT_COLUMNS and k not in PROVENANCE_COLUMNS and k != RUN_ID_COLUMN:
                extra_cols.append(k)
    tail = [RUN_ID_COLUMN] if run_id is not None else []
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(RESULT_COLUMNS + list(PROVENANCE_COLUMNS) + [csv_cell(k) for k in extra_cols] + tail)
    t = csv_cell
    for r in results:
        extra = dict(r.extra)
        w.writerow([
            t(r.sample_id), t(r.subject_id), t(r.visit), t(r.file),
            "" if r.monocyte_count is None else r.monocyte_count,
            _fmt_number(r.hladr_abc), _fmt_number(r.hladr_abc_geomean),
            "" if r.ferritin_ng_ml is None else f"{r.ferritin_ng_ml:g}",
            r.phenotype, r.qc,
            t(";".join(f.code for f in r.flags)),
            t(qc_reasons((f.severity, f.message) for f in r.flags)),
            t(r.sha256 or ""), t(r.calibration_id or ""), t(r.ruleset), t(r.software_version),
        ] + [t(extra.get(k, "")) for k in extra_cols] + [t(run_id)] * len(tail))
    return buf.getvalue()


def sample_record(result: SampleResult) -> dict:
    """A sample's record in results.json: the result's fields less :data:`NOT_IN_RESULTS_JSON`."""
    return {k: v for k, v in result.to_dict().items() if k not in NOT_IN_RESULTS_JSON}


def calibration_document(calibration: Calibration | CalibrationFailure, run_id: str) -> dict:
    """calibration.json of this run: the calibration's record with the run's id.

    A record loaded with ``--calibration`` (written back as it was read) that was
    written by another run keeps that run's id as ``calibration_run_id`` (where the fit
    came from).
    """
    doc = calibration.to_dict()
    earlier = doc.pop("run_id", None)
    if earlier is not None and earlier != run_id:
        doc.setdefault("calibration_run_id", earlier)
    return {"run_id": run_id, **doc}


def write_outputs(out: Path, results: list[SampleResult], calibration: Calibration | CalibrationFailure, *,
                  notes: list[str], started: _dt.datetime, run_dir: str, timings: dict[str, float] | None = None,
                  run_id: str | None = None, analysed_by: str = "", background: BackgroundReport | None = None,
                  ) -> None:
    """Write results.csv, results.json, calibration.json, figures.json, report.html and report.pdf
    into ``out`` (a staging folder).

    All carry ``run_id`` (a new one when not given). ``timings`` (ms per stage)
    is completed with the report and write times and stored in results.json.
    """
    run_id = run_id or new_run_id()
    timings = dict(timings or {})
    cal_doc = calibration_document(calibration, run_id)
    doc = {
        "run_id": run_id,
        "hladr_version": __version__,
        "run_dir": run_dir,
        "started_utc": started.isoformat(timespec="seconds"),
        "finished_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "notes": notes,
        "calibration": cal_doc,
        "samples": [sample_record(r) for r in results],
    }
    # the report is drawn from the records written here, as ``hladr report`` re-draws it from the files
    run = report_run(doc, results, calibration, analysed_by=analysed_by)
    t0 = time.perf_counter()
    report_html, report_pdf = background.render(run) if background is not None else render_report(run)
    timings["report"] = 1000.0 * (time.perf_counter() - t0)
    t0 = time.perf_counter()
    write_atomic(out / "results.csv", results_csv(results, run_id=run_id))
    write_atomic(out / "calibration.json", _strict_json(cal_doc) + "\n")
    write_atomic(out / FIGURES_FILE, _strict_json(figures_document(run)) + "\n")
    write_atomic(out / "report.html", report_html)
    write_atomic(out / "report.pdf", report_pdf)
    timings["write"] = 1000.0 * (time.perf_counter() - t0)
    doc["timings_ms"] = {k: round(v, 1) for k, v in timings.items()}
    write_atomic(out / "results.json", _strict_json(doc) + "\n")


def calibration_record(calibration: Calibration | CalibrationFailure) -> dict:
    """The calibration.json record as the report reads it back (strict JSON), before the run has an id."""
    return json.loads(_strict_json(calibration_document(calibration, "")))


def report_run(doc: dict, results: list[SampleResult], calibration: Calibration | CalibrationFailure, *,
               analysed_by: str = "") -> ReportRun:
    """The report's records of a run: results.json's ``doc`` (round-tripped through strict JSON, as
    ``hladr report`` reads it back), each result's figure data and acquisition keywords, the bead figure."""
    plain = json.loads(_strict_json(doc))
    curve = getattr(calibration, "curve", None)
    facts = {k: plain.get(k) for k in ("run_dir", "started_utc", "finished_utc", "hladr_version")}
    facts["analysed_by"] = analysed_by
    samples = tuple(ReportSample(record=rec, figure=r.figure or {}, acquisition=json.loads(_strict_json(r.acquisition)))
                    for rec, r in zip(plain["samples"], results, strict=True))
    return ReportRun(run_id=plain["run_id"], samples=samples, calibration=plain["calibration"],
                     bead_figure=(curve.figure if curve is not None else {}) or {}, notes=tuple(plain["notes"]),
                     facts=facts)


def _strict_json(doc: dict) -> str:
    """Strict JSON (no NaN/Infinity: JSON.parse fails on them); where a number was not finite it is
    null, and ``non_finite_as_null`` lists those places so that a null is never taken for "absent"."""
    nulled: list[str] = []
    text = dumps_strict(doc, indent=2, default=json_default, nulled=nulled)
    if nulled:
        text = dumps_strict({**doc, "non_finite_as_null": nulled}, indent=2, default=json_default)
    return text


TABLE_REASON_WIDTH = 100  # the reason line under a warn or fail row; the whole text is in results.csv


def format_table(results: list[SampleResult]) -> str:
    """The readable table printed by ``hladr run``: one row per sample with every flag code, and
    under a warn or fail row one indented line saying why (its ``qc_reasons``, cut to
    :data:`TABLE_REASON_WIDTH` characters: a terminal is narrow, results.csv has it whole)."""
    head = ("sample", "monocytes", "HLA-DR AB/C", "ferritin", "phenotype", "QC", "flags")
    rows = [head]
    why: dict[int, str] = {}
    for r in results:
        if r.qc != "pass":
            why[len(rows)] = printable(qc_reasons((f.severity, f.message) for f in r.flags))
        rows.append((
            printable(r.sample_id),
            "" if r.monocyte_count is None else f"{r.monocyte_count:,}",
            "" if r.hladr_abc is None else f"{r.hladr_abc:,.0f}",
            printable(r.ferritin_text + (f" {r.ferritin_unit}" if r.ferritin_unit else "")) or "-",
            r.phenotype,
            r.qc,
            printable(";".join(f.code for f in r.flags)),
        ))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    lines = []
    for k, row in enumerate(rows):
        cells = [str(c).rjust(w) if i in (1, 2) else str(c).ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
        if why.get(k):
            text = why[k]
            if len(text) > TABLE_REASON_WIDTH:
                text = text[:TABLE_REASON_WIDTH - 3].rstrip() + "..."
            lines.append(f"    {row[5]}: {text}")
    return "\n".join(lines)
