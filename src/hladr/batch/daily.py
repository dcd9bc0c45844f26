"""The daily run: find the files, calibrate, analyse every sample, write the outputs.

This is the imperative shell around :func:`hladr.pipeline.analyze_sample`: it reads
the worklist, resolves the bead lot, fits (or loads) the calibration, fans the
sample tubes out (``--workers``; ``--scheduler``: a Dask cluster, :mod:`hladr.batch.cluster`)
with their progress on stderr (:mod:`hladr.batch.progress`), checks across the tubes
(:mod:`hladr.batch.checks`), writes ``results.csv``, ``results.json``, ``calibration.json`` and ``report.html``
(:mod:`hladr.batch.outputs`, one run id in all four) as one set switched in whole
(OUT_DIR is checked before any work: :mod:`hladr.batch.output_set`), and prints the table.
One bad file gives that sample ``qc=fail``; the run completes. The one-file
commands ``hladr calibrate`` and ``hladr gate`` are in :mod:`hladr.commands`.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import as_completed
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .._atomic import write_atomic
from .._workers import worker_pool
from ..beads.detect import is_bead_file
from ..beads.lots import resolve_lot
from ..beads.record import Calibration, CalibrationFailure, calibrate_beads
from ..errors import CalibrationError, ConfigError, HladrError
from ..gating.gatingml.engine import load_monocyte_template
from ..pipeline import analyze_sample
from ..results import RunConfig, SampleInput, SampleResult
from ..safe_text import printable
from ..store import current_user
from .checks import flag_run
from .cluster import DaskSession, connect
from .keeping import RunKeeper
from .output_set import prepare_output, writable_path
from .outputs import RESULT_COLUMNS, calibration_record, format_table, new_run_id, results_csv, write_outputs
from .progress import Progress
from .worklist import WORKLIST_COLUMNS, inside, read_worklist, tube_path

if TYPE_CHECKING:  # types only
    from ..report.background import BackgroundReport

__all__ = ["run_folder", "read_worklist", "write_atomic", "RESULT_COLUMNS", "results_csv", "write_outputs",
           "format_table"]

log = logging.getLogger(__name__)

FCS_SUFFIXES = (".fcs", ".lmd")
_WORKLIST_COLUMNS = WORKLIST_COLUMNS


# --------------------------------------------------------------------------- small I/O helpers
def _fcs_files(run_dir: Path, *, allow_outside: bool = False) -> list[Path]:
    """The run folder's FCS files; a symlink leading out of the folder is refused (``allow_outside``: kept)."""
    files = sorted(p for p in run_dir.iterdir() if p.is_file() and p.suffix.lower() in FCS_SUFFIXES)
    for f in files:
        if not allow_outside and not inside(run_dir, f):
            raise ConfigError(f"{printable(f)}: a link to a file outside the run folder; only files inside it "
                              "are read (or use --allow-outside-run-dir)")
    return files


NOTE_NAMES_SHOWN = 5  # unlisted files named in the run's note; the rest are counted
NO_WORKLIST_FERRITIN = ("no worklist: the ferritin of every sample is unknown, so no phenotype is called "
                        "(indeterminate, flag ferritin_missing); the HLA-DR values stand")
NO_FERRITIN_COLUMN = ("the worklist has no 'ferritin' column: the ferritin of every sample is unknown, so no "
                      "phenotype is called (indeterminate, flag ferritin_missing); the HLA-DR values stand")


def _worklist_notes(run_dir: Path, rows: list[dict[str, str]]) -> list[str]:
    """The run's notes about what its worklist leaves out: FCS files of the run folder it does not list
    (they are not analysed: count and first names), and a missing ``ferritin`` column."""
    def key(path: Path) -> str:
        try:
            return os.path.normcase(str(path.resolve()))
        except (OSError, RuntimeError):  # a symlink loop: its name is its key
            return os.path.normcase(str(path))

    notes = []
    listed = {key(run_dir / r["file"]) for r in rows}
    unlisted = sorted(p.name for p in run_dir.iterdir()
                      if p.suffix.lower() in FCS_SUFFIXES and p.is_file() and key(p) not in listed)
    if unlisted:
        shown = ", ".join(unlisted[:NOTE_NAMES_SHOWN])
        more = f" and {len(unlisted) - NOTE_NAMES_SHOWN} more" if len(unlisted) > NOTE_NAMES_SHOWN else ""
        files = "file is" if len(unlisted) == 1 else "files are"
        notes.append(f"{len(unlisted)} FCS {files} in the run folder but not on the worklist, so not analysed: "
                     f"{shown}{more}")
    if rows and "ferritin" not in rows[0]:
        notes.append(NO_FERRITIN_COLUMN)
    return notes


# --------------------------------------------------------------------------- the run
def _analyse_all(
    inputs: list[SampleInput], calibration: Calibration | None, config: RunConfig, workers: int,
    on_done: Callable[[SampleResult], None], template_cache: Path | None = None, session: DaskSession | None = None,
) -> list[SampleResult]:
    if session is not None:  # on a Dask cluster (batch/cluster.py)
        return session.analyse(inputs, calibration, config, on_done, template_cache)
    if workers <= 1 or len(inputs) <= 1:
        out = []
        for inp in inputs:
            r = analyze_sample(inp, calibration, config, template_cache=template_cache)
            on_done(r)
            out.append(r)
        return out
    results: list[SampleResult | None] = [None] * len(inputs)
    with worker_pool(workers) as pool:  # workers die with the run and do not hold its stdout
        # one tube per core already: a tube's own work stays on one thread
        futures = {pool.submit(analyze_sample, inp, calibration, config, threads=1, template_cache=template_cache): k
                   for k, inp in enumerate(inputs)}
        for fut in as_completed(futures):
            r = fut.result()
            results[futures[fut]] = r
            on_done(r)
    return [r for r in results if r is not None]


def _file_label(run_dir: Path, name: str) -> str:
    """The ``file`` recorded for a tube: its name inside the run folder, or the full path of one outside."""
    p = Path(name)
    if not p.is_absolute() and inside(run_dir, run_dir / p):
        return os.path.normpath(name)
    return str((run_dir / p).resolve())


def _sample_inputs(run_dir: Path, rows: list[dict[str, str]], *, allow_outside: bool = False) -> list[SampleInput]:
    out = []
    for row in rows:
        extra = tuple((k, v) for k, v in row.items() if k not in _WORKLIST_COLUMNS)
        gates = row.get("gates")
        out.append(SampleInput(
            path=str(tube_path(run_dir, row["file"], allow_outside=allow_outside)),
            sample_id=row.get("sample_id", ""),
            subject_id=row.get("subject_id", ""),
            visit=row.get("visit", ""),
            ferritin=row.get("ferritin", ""),
            ferritin_unit=row.get("ferritin_unit", ""),
            extra=extra,
            gates_file=str(tube_path(run_dir, gates, allow_outside=allow_outside, column="gates")) if gates else None,
            file_label=_file_label(run_dir, row["file"]),
        ))
    return out


def run_folder(
    run_dir: str,
    out_dir: str,
    *,
    worklist: str | None = None,
    lot_id: str | None = None,
    lot_file: str | None = None,
    calibration_file: str | None = None,
    gates_file: str | None = None,
    gates_for: Sequence[Sequence[str]] | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    db: str | None = None,
    quiet: bool = False,
    config: RunConfig | None = None,
    allow_outside_run_dir: bool = False,
    template_cache: str | Path | None = None,
    user: str | None = None,
    reason: str | None = None,
    ship_files: bool = False,
    session: DaskSession | None = None,
    table: bool = True,
    report: BackgroundReport | None = None,
) -> int:
    """``hladr run``: analyse a run folder; return the exit status of SPEC.md §5.

    Only files inside ``run_dir`` are read (worklist ``file`` and ``gates``, links in the
    folder) unless ``allow_outside_run_dir``; a worklist that fails its checks
    (:mod:`hladr.batch.worklist`) stops the run before any work. ``template_cache`` is
    the folder where parsed Gating-ML templates are kept between runs (the ``hladr``
    command passes ``$HLADR_CACHE/templates`` or ``~/.cache/hladr/templates``); None
    keeps nothing on disk.

    ``db`` (else ``$HLADR_DB``; the ``hladr`` command passes its default when neither is
    set) is the results store that keeps the calibration, the run and every result
    (:mod:`hladr.batch.keeping`), by ``user`` (default: the OS user); ``reason`` is
    required to keep a result that differs from its sample's kept one as a new version.

    ``gates_for``: (sample id, Gating-ML file) pairs (``--gates-for``): that sample's tubes are
    gated with that file instead of the automated gate or ``gates_file`` (the correction
    workflow of ``hladr gates export``); every file is checked, and every id must be on the
    worklist, before any work.

    ``scheduler`` (``tcp://HOST:PORT``) sends the per-tube work to that Dask cluster
    (:mod:`hladr.batch.cluster`; ``ship_files``: the workers get the files' bytes instead of
    reading them); ``session`` is an open cluster connection to use instead (``hladr batch``,
    which also passes ``table=False``: notes and progress, no results table).

    ``report``: a drawing process readied while the tubes are analysed (the ``hladr`` command
    starts one); None draws the report in this process at the end. The report is the same.
    """
    config = config or RunConfig()
    template_cache = Path(template_cache) if template_cache is not None else None
    rd = Path(run_dir)
    if not rd.is_dir():
        raise ConfigError(f"{rd}: run folder not found")
    if ship_files and not (scheduler or session):
        raise ConfigError("--ship-files sends the files to Dask workers: it needs --scheduler")
    if scheduler and workers > 1:
        raise ConfigError("--workers and --scheduler: give one (the cluster's workers do the work with --scheduler)")
    if scheduler and session is None:  # one connection for the run; a scheduler that cannot be reached stops it now
        with connect(scheduler, ship_files=ship_files) as opened:
            return run_folder(run_dir, out_dir, worklist=worklist, lot_id=lot_id, lot_file=lot_file,
                              calibration_file=calibration_file, gates_file=gates_file, db=db, quiet=quiet,
                              config=config, allow_outside_run_dir=allow_outside_run_dir,
                              template_cache=template_cache, user=user, reason=reason, session=opened, table=table)
    output = prepare_output(out_dir)  # a folder that cannot or must not be written stops the run before any work
    db = db or os.environ.get("HLADR_DB") or None
    if db:
        writable_path(db, what="--db")
    if gates_file:
        load_monocyte_template(gates_file, cache_dir=template_cache)  # one that cannot be used stops the run now
        config = replace(config, gates_file=str(Path(gates_file).resolve()))
    per_sample = _gates_for(gates_for, template_cache)
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}")
    wl_path = Path(worklist) if worklist else (rd / "worklist.csv")
    outside = allow_outside_run_dir
    rows = read_worklist(wl_path, run_dir=rd, allow_outside=outside) if (worklist or wl_path.is_file()) else None
    notes: list[str] = list(output.notes)
    timings: dict[str, float] = {}
    keeper = RunKeeper(db, user=user or current_user(), reason=reason) if db else None
    if keeper is not None:
        keeper.open(notes)  # a file that is not a results store stops the run before any work

    if rows is not None:
        bead_rows = [r for r in rows if r["role"] == "beads"]
        sample_rows = [r for r in rows if r["role"] == "sample"]
        bead_paths = [tube_path(rd, r["file"], allow_outside=outside) for r in bead_rows]
        if len(bead_paths) > 1:
            notes.append(f"{len(bead_paths)} bead tubes in the worklist: using {bead_rows[0]['file']}; "
                         f"not used: {', '.join(r['file'] for r in bead_rows[1:])}")
        worklist_lot = (bead_rows[0].get("lot") or None) if bead_rows else None
        notes.extend(_worklist_notes(rd, rows))
    else:
        files = _fcs_files(rd, allow_outside=outside)
        if not files:
            raise ConfigError(f"{rd}: no FCS files (.fcs, .lmd) in the run folder")
        bead_paths = [] if calibration_file else [f for f in files if is_bead_file(f)]
        if len(bead_paths) > 1:
            notes.append(f"{len(bead_paths)} files look like bead tubes: using {bead_paths[0].name}; "
                         f"not used and not analysed: {', '.join(f.name for f in bead_paths[1:])}")
        sample_rows = [{"file": f.name} for f in files if f not in bead_paths]
        worklist_lot = None
        notes.append(NO_WORKLIST_FERRITIN)
    if not sample_rows:
        raise ConfigError(f"{rd}: no sample tubes to analyse")
    if per_sample:
        _check_gates_for(per_sample, sample_rows if rows is not None else None)
    row_templates = list(dict.fromkeys(r["gates"] for r in sample_rows if r.get("gates")))
    if row_templates:  # so do the worklist's per-tube templates
        for row_gates in row_templates:
            load_monocyte_template(rd / row_gates, cache_dir=template_cache)

    calibration: Calibration | None = None  # the curve the samples are quantified with
    outcome: Calibration | CalibrationFailure  # what calibration.json and the report show
    if calibration_file:
        try:
            cal_record = json.loads(Path(calibration_file).read_text(encoding="utf-8"), parse_constant=_no_constant)
        except (OSError, ValueError) as exc:
            raise CalibrationError(f"{calibration_file}: cannot read calibration record ({exc})") from None
        calibration = outcome = Calibration.from_dict(cal_record, where=calibration_file)
        if not calibration.accepted:
            raise CalibrationError(f"{calibration_file}: this calibration was rejected; it cannot be used")
        if keeper is not None:  # the results' provenance: once in the store (already there when made here)
            keeper.keep_calibration(calibration, source=f"hladr run --calibration {Path(calibration_file).resolve()}",
                                    notes=notes)
    else:
        if not bead_paths:
            raise CalibrationError(
                f"{rd}: no bead tube found and no --calibration given (mark it role=beads in the worklist)"
            )
        lot, note = resolve_lot(lot_id=lot_id, lot_file=lot_file, worklist_lot=worklist_lot)
        if note:
            notes.append(note)
        bead = bead_paths[0]
        t0 = time.perf_counter()
        try:
            fit = calibrate_beads(str(bead), lot, config)
        except HladrError as exc:
            outcome = CalibrationFailure(lot, bead.name, "bead_tube_unusable", str(exc))
        else:
            if isinstance(fit, Calibration):
                calibration = outcome = fit
            else:
                outcome = CalibrationFailure(lot, bead.name, fit.code, fit.reason)
        timings["calibrate"] = 1000.0 * (time.perf_counter() - t0)
        if keeper is not None and calibration is not None:
            keeper.keep_calibration(calibration, source=f"hladr run {rd.resolve()}", notes=notes)
        if not outcome.accepted:
            why = "; ".join(outcome.reasons) or "rejected"
            notes.append(f"bead calibration not accepted ({bead.name}): {why}")
    if report is not None:  # drawn while the tubes are analysed
        report.calibration(calibration_record(outcome), getattr(outcome.curve, "figure", None) or {})

    inputs = [replace(inp, gates_file=per_sample.get(inp.sample_id, inp.gates_file))
              for inp in _sample_inputs(rd, sample_rows, allow_outside=outside)]
    progress = Progress(len(inputs), quiet=quiet)
    started = _dt.datetime.now(_dt.UTC)
    run_id = new_run_id(started)  # shared by every file of the output set
    if keeper is not None:
        keeper.begin(run_id=run_id, started_utc=started.isoformat(timespec="seconds"), run_dir=str(rd.resolve()),
                     config=config, calibration=outcome, notes=notes)
    t0 = time.perf_counter()
    try:
        results = _analyse_all(inputs, calibration, config, workers, lambda r: progress.step(), template_cache,
                               session)
    finally:
        progress.close()  # the bar's line ends even when the run stops
    results = flag_run(results, config)  # checks across tubes: shared sample ids, the same file twice
    timings["analyse"] = 1000.0 * (time.perf_counter() - t0)
    for r in results:
        for stage, ms in r.timings_ms.items():
            timings[f"analyse.{stage}"] = timings.get(f"analyse.{stage}", 0.0) + ms

    if keeper is not None:
        keeper.keep(results, outcome, notes)  # each result in its own transaction, before the outputs
    previous = output.write(lambda folder: write_outputs(folder, results, outcome, notes=notes, started=started,
                                                         run_dir=str(rd), timings=timings, run_id=run_id,
                                                         analysed_by=user or current_user(),
                                                         background=report))
    out = Path(out_dir)
    if not quiet:
        for n in notes + (keeper.said if keeper is not None else []):
            print(f"note: {printable(n)}", file=sys.stderr)
    if not quiet and table:
        print(format_table(results))
        print(f"\nwrote {printable(out / 'results.csv')}, results.json, calibration.json, report.html, report.pdf "
              f"(run {run_id})")
    if previous is not None:
        print(f"note: the previous results in {printable(out)} were moved to {printable(previous)}", file=sys.stderr)
    if keeper is not None:
        keeper.raise_problem(out)
    return 1 if any(r.qc == "fail" for r in results) else 0


def _gates_for(pairs: Sequence[Sequence[str]] | None, template_cache: Path | None) -> dict[str, str]:
    """``--gates-for`` as {sample id: the Gating-ML file's absolute path}, each file checked as ``--gates``."""
    out: dict[str, str] = {}
    for sample_id, path in pairs or ():
        if sample_id in out:
            raise ConfigError(f"--gates-for {sample_id}: given twice; give one Gating-ML file per sample")
        load_monocyte_template(path, cache_dir=template_cache)  # one that cannot be used stops the run now
        out[sample_id] = str(Path(path).resolve())
    return out


def _check_gates_for(per_sample: dict[str, str], sample_rows: list[dict[str, str]] | None) -> None:
    """Every ``--gates-for`` sample is on the worklist (whose ids are known before any tube is read)."""
    if sample_rows is None:
        raise ConfigError("--gates-for needs a worklist naming the sample ids (RUN_DIR/worklist.csv or --worklist)")
    known = {r.get("sample_id", "") for r in sample_rows}
    for sample_id in per_sample:
        if sample_id not in known:
            raise ConfigError(f"--gates-for {sample_id}: no sample tube with this sample_id on the worklist")


def _no_constant(name: str) -> float:
    """``json.loads(parse_constant=...)``: a record with NaN or Infinity is not strict JSON; refuse it."""
    raise ValueError(f"{name} is not a JSON number")
