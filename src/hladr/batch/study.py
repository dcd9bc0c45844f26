"""``hladr batch MANIFEST.csv``: re-process many run folders, locally or on a Dask cluster, resumably.

Each row of the manifest (:mod:`hladr.batch.manifest`) is one ``hladr run`` (:func:`run_folder`),
one after the other, its tubes fanned out to the local workers or to the one cluster connection
the batch opens. Before a row runs, its key (every input file's SHA-256 and the settings) is
compared with the ledger's: a row done with the same key whose outputs are untouched is skipped.
A row that cannot start (missing folder, bad worklist, unknown lot, store locked, ...) fails alone
with one line; the next one runs. After each row the ledger is written (atomically), so a batch
that is stopped resumes where it was. At the end one summary: runs done / skipped / failed,
samples pass / warn / fail (of the runs done and skipped).
"""

from __future__ import annotations

import contextlib
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, HladrError
from ..safe_text import printable
from .cluster import DaskSession, connect
from .daily import run_folder
from .manifest import Ledger, ManifestRow, read_manifest, run_key

__all__ = ["BatchSummary", "run_manifest"]


@dataclass
class BatchSummary:
    """What a batch did: rows done, skipped and failed (with their reasons), samples by QC."""

    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    samples: Counter = field(default_factory=Counter)

    def add_samples(self, results: dict) -> None:
        self.samples.update(s.get("qc", "fail") for s in results.get("samples", []))

    def lines(self) -> list[str]:
        runs = f"runs: {self.done} done, {self.skipped} skipped, {len(self.failed)} failed"
        s = self.samples
        samples = f"samples: {s['pass']} pass, {s['warn']} warn, {s['fail']} fail"
        return [f"hladr batch: {runs}; {samples}"] + [f"  failed: {name}: {why}" for name, why in self.failed]

    @property
    def status(self) -> int:
        """SPEC.md §5: 1 when a sample failed or a run could not be done, else 0."""
        return 1 if self.failed or self.samples["fail"] else 0


def run_manifest(
    manifest: str, *, workers: int = 1, scheduler: str | None = None, ship_files: bool = False, force: bool = False,
    db: str | None = None, quiet: bool = False, allow_outside_run_dir: bool = False,
    template_cache: str | Path | None = None, user: str | None = None, reason: str | None = None,
    session: DaskSession | None = None,
) -> int:
    """Run every row of ``manifest``; print the summary; return the exit status (0, 1; 2 raised as HladrError).

    ``force`` runs every row again. ``session``: an open cluster connection to use instead of
    ``scheduler``.
    """
    if ship_files and not (scheduler or session):
        raise ConfigError("--ship-files sends the files to Dask workers: it needs --scheduler")
    if scheduler and workers > 1:
        raise ConfigError("--workers and --scheduler: give one (the cluster's workers do the work with --scheduler)")
    rows = read_manifest(manifest)
    ledger = Ledger(manifest)  # a ledger that cannot be read stops the batch before any work
    with contextlib.ExitStack() as stack:
        if scheduler and session is None:  # one connection for every run; unreachable: the batch does not start
            session = stack.enter_context(connect(scheduler, ship_files=ship_files))
        summary = BatchSummary()
        for k, row in enumerate(rows, start=1):
            _one_row(row, k, len(rows), ledger, summary, force=force, quiet=quiet, workers=workers, session=session,
                     db=db, allow_outside_run_dir=allow_outside_run_dir, template_cache=template_cache, user=user,
                     reason=reason)
    for line in summary.lines():
        print(line, file=sys.stderr)
    return summary.status


def _one_row(row: ManifestRow, k: int, n: int, ledger: Ledger, summary: BatchSummary, *, force: bool, quiet: bool,
             **run_args: object) -> None:
    """Run (or skip) one row and count it in ``summary``; a row that cannot be done is a failed row, one line."""
    allow = bool(run_args["allow_outside_run_dir"])
    try:
        key = run_key(row, allow_outside=allow)
    except (HladrError, OSError) as exc:
        _failed(summary, row, exc, f"[{k}/{n}]", quiet)
        return
    done = None if force else ledger.is_done(row, key)
    if done is not None:
        summary.skipped += 1
        summary.add_samples(done)
        if not quiet:
            print(f"hladr batch: [{k}/{n}] {row.name}: skipped (done, inputs unchanged)", file=sys.stderr)
        return
    if not quiet:
        print(f"hladr batch: [{k}/{n}] {row.name} -> {printable(row.out_dir)}", file=sys.stderr)
    try:
        status = run_folder(row.run_dir, row.out_dir, worklist=row.worklist, lot_id=row.lot, lot_file=row.lot_file,
                            calibration_file=row.calibration, gates_file=row.gates, quiet=quiet,
                            workers=run_args["workers"], session=run_args["session"], db=run_args["db"],
                            allow_outside_run_dir=allow, template_cache=run_args["template_cache"],
                            user=run_args["user"], reason=run_args["reason"], table=False)
    except (HladrError, OSError) as exc:
        _failed(summary, row, exc, f"[{k}/{n}]", quiet)
        return
    results = ledger.record(row, key, status=status)
    if results is None:  # cannot happen after run_folder returned; never count a run without its outputs
        summary.failed.append((row.name, f"{printable(row.out_dir)}: the outputs are incomplete"))
        return
    summary.done += 1
    summary.add_samples(results)


def _failed(summary: BatchSummary, row: ManifestRow, exc: BaseException, where: str, quiet: bool) -> None:
    """Count the row as failed; say so now unless quiet (the summary lists it again)."""
    summary.failed.append((row.name, _one_line(exc)))
    if not quiet:
        print(f"hladr batch: {where} {row.name}: failed: {_one_line(exc)}", file=sys.stderr)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return printable(f"{exc.strerror}{where}")
    return printable(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
