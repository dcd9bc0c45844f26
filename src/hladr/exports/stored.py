"""The results store as the source of an export: one run by its id, or the current results kept since a day.

Both give what an output folder gives (:func:`hladr.exports.command.read_run_folder`): a
:class:`RunRecord` and the sample records of results.json, now read from the store
(:mod:`hladr.store.query`). A run's export holds, for each tube the run analysed, the result
it kept as later amended (``hladr results amend``); a re-analysis by a later run belongs to
that run's export. ``--since DATE`` exports the current version of every sample kept on or
after that day, from whichever runs: each sample names its run (``run_id``) in the record
and the :class:`RunRecord` carries them all (``runs``), so that run ids, analysis and
calibration dates and provenance stay each sample's own.
"""

from __future__ import annotations

import datetime as _dt
import os

from .. import __version__
from ..errors import ConfigError
from ..store import StoredRun, current_results, run_results, stored_run
from .records import RunRecord

__all__ = ["read_stored_run", "read_stored_since"]


def _run_record(run: StoredRun, db: str | os.PathLike, *, whole: bool = True) -> RunRecord:
    """The export's record of a kept run; ``whole``: refuse a run that did not finish (its set may lack tubes)."""
    if whole and run.finished_utc is None:
        raise ConfigError(f"run {run.run_id} in {db} did not finish (it was stopped): its results may be "
                          "incomplete; export the run that analysed the tubes again, or use --since")
    return RunRecord(run_id=run.run_id, hladr_version=run.hladr_version, started_utc=run.started_utc,
                     finished_utc=run.finished_utc or "", calibration=run.calibration,
                     source=f"{db} (run {run.run_id})")


def read_stored_run(db: str | os.PathLike, run_id: str) -> tuple[RunRecord, list[dict]]:
    """The run record and its sample records, as that run kept them (amendments included)."""
    record = _run_record(stored_run(db, run_id), db)
    samples = [r.record for r in run_results(db, run_id)]
    if not samples:
        raise ConfigError(f"run {run_id} in {db} kept no result to export")
    return record, samples


def read_stored_since(db: str | os.PathLike, since: _dt.date) -> tuple[RunRecord, list[dict]]:
    """The current result of every sample kept on or after ``since`` (UTC), each with its own run."""
    results = current_results(db, since=since)
    if not results:
        raise ConfigError(f"no results kept in {db} since {since.isoformat()}")
    # a result kept by a run that was stopped afterwards is whole (each result is one transaction)
    runs = {rid: _run_record(stored_run(db, rid), db, whole=False)
            for rid in dict.fromkeys(r.run_id for r in results if r.run_id)}
    samples = [{**r.record, "run_id": r.run_id} for r in results]
    one = next(iter(runs.values())) if len(runs) == 1 else None
    return RunRecord(
        run_id=f"since-{since.isoformat()}",
        hladr_version=__version__,
        started_utc=min(r.started_utc for r in runs.values()),
        finished_utc=max(r.finished_utc for r in runs.values()),  # "" (no time) sorts first
        calibration=one.calibration if one else {},
        source=f"{db} (results kept since {since.isoformat()})",
        runs=runs,
    ), samples
