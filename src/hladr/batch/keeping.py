"""Keeping a run in the results store: its calibration, its row, each result, its end; never stopping the run.

:class:`RunKeeper` is the daily run's one handle on the store (:mod:`hladr.store`). The
store is opened and brought up to date before any work (a file that is not a store stops
the run then, exit 2). Afterwards nothing the store does stops the run: a store locked past
the wait (``$HLADR_STORE_WAIT``) or failing is noted in the outputs, no further writes are
tried, and :meth:`RunKeeper.raise_problem` says so after the outputs are written (exit 2:
"the run's results are complete in OUT, but ..."). A result that would need a reason to
become a new version (``--reason``) is not kept: a note in the outputs and a warning line, the
exit status staying SPEC.md's (0 or 1: the run did its work; exit 2 is for a run that could not
start, and sample ids such as P001 recur across runs). What went well is said
on stderr only (:attr:`RunKeeper.said`): the outputs are the same with or without a store.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import StoreBusyError, StoreError
from ..results import RunConfig, SampleResult
from ..safe_text import printable
from ..store import (
    Kept,
    analysis_content,
    begin_run,
    finish_run,
    keep_result,
    open_store,
    software_versions,
    store_calibration,
)

if TYPE_CHECKING:  # types only
    from ..beads.record import Calibration, CalibrationFailure

__all__ = ["RunKeeper"]


class RunKeeper:
    """One run's writes to the store at ``db``, by ``user``, with the ``reason`` for any new version."""

    def __init__(self, db: str | os.PathLike, *, user: str, reason: str | None = None) -> None:
        self.db, self.user, self.reason = Path(db), user, reason
        self.problem: StoreError | None = None  # the first failure; nothing more is written after it
        self.refused: list[Kept] = []
        self.said: list[str] = []  # what went well, for stderr (never part of the outputs)
        self._run_row: int | None = None
        self._run_id = ""
        self._kept: list[Kept] = []
        self._software = software_versions()

    def _failed(self, exc: StoreError, what: str, notes: list[str]) -> None:
        self.problem = exc
        notes.append(f"{what} not kept in the results store: {exc}")

    def open(self, notes: list[str]) -> None:
        """Bring the store up to date now; ``StoreError`` (not a store, newer schema) stops the run before any work."""
        try:
            open_store(self.db).close()
        except StoreBusyError as exc:
            self._failed(exc, "this run's results are", notes)

    def keep_calibration(self, calibration: Calibration, *, source: str, notes: list[str]) -> None:
        if self.problem is not None:
            return
        try:
            self.said.append(store_calibration(self.db, calibration, source=source, user=self.user).note(self.db))
        except StoreError as exc:
            self._failed(exc, "calibration", notes)

    def begin(self, *, run_id: str, started_utc: str, run_dir: str, config: RunConfig,
              calibration: Calibration | CalibrationFailure, notes: list[str]) -> None:
        """The run's row and its ``run_started`` entry (before the tubes are analysed: a run stopped
        while analysing is seen in the store as started and never finished)."""
        if self.problem is not None:
            return
        self._run_id = run_id
        try:
            self._run_row = begin_run(
                self.db, run_id=run_id, started_utc=started_utc, run_dir=run_dir, user=self.user,
                reason=self.reason, config={**asdict(config), "config_sha256": config.digest()},
                calibration=calibration.to_dict(), software=self._software)
        except StoreError as exc:
            self._failed(exc, "this run's results are", notes)

    def keep(self, results: list[SampleResult], calibration: Calibration | CalibrationFailure,
             notes: list[str]) -> None:
        """Each result in its own transaction, in the run's order; then the run's end."""
        if self.problem is not None or self._run_row is None:
            return
        cal = calibration.to_dict()
        for k, r in enumerate(results):
            try:
                kept = keep_result(self.db, run_row=self._run_row, run_id=self._run_id, position=k,
                                   content=analysis_content(r, calibration=cal, software=self._software),
                                   user=self.user, reason=self.reason)
            except StoreError as exc:
                self._failed(exc, f"results from sample {r.sample_id} on are", notes)
                return
            except (TypeError, ValueError) as exc:  # a record the store cannot hold: the outputs still come
                self._failed(StoreError(f"{self.db}: could not keep the result of sample {r.sample_id} "
                                        f"({type(exc).__name__}: {exc})"), f"results from sample {r.sample_id} on are",
                             notes)
                return
            self._kept.append(kept)
            if kept.refused:
                self.refused.append(kept)
                notes.append(f"result of sample {kept.sample_id} not kept in the results store: {kept.refused}")
        try:
            finish_run(self.db, run_row=self._run_row, run_id=self._run_id, user=self.user, kept=self._kept)
        except StoreError as exc:
            self._failed(exc, "the end of the run is", notes)
            return
        new = sum(k.new for k in self._kept)
        self.said.append(f"kept {new} new result{'s' * (new != 1)} in {self.db} (run {self._run_id}); "
                         f"{len(self._kept) - new - len(self.refused)} already there")

    def raise_problem(self, out: str | os.PathLike) -> None:
        """After the outputs are written: the store's failure, or the results it did not keep, as one error."""
        if self.problem is not None:
            cls = StoreBusyError if isinstance(self.problem, StoreBusyError) else StoreError
            raise cls(f"the run's results are complete in {out}, but not all are in the results store: "
                      f"{self.problem}")
        if self.refused:  # the run itself succeeded: its exit status stays SPEC.md's (0 or 1); said on one line
            first = self.refused[0]
            print(printable(
                f"warning: the run's results are complete in {out}, but {len(self.refused)} of them are not kept in "
                f"the results store {self.db}: {first.refused}; run again with --reason TEXT to keep them as new "
                f"versions"), file=sys.stderr)
