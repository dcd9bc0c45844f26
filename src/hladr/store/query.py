"""Reading kept results back: a sample's versions, the current results, a run's results, a run's record.

Every function takes the path of an existing store (reading never creates one) and returns
frozen :class:`StoredResult` records, each with its content (the sample's record as in
results.json, the tube, the calibration reference, the software versions) and who kept it,
when and why. The current result of a sample is its highest version.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sqlite3
from dataclasses import dataclass, field

from ..errors import ConfigError
from .schema import read_store

__all__ = ["StoredResult", "StoredRun", "sample_versions", "current_results", "run_results", "stored_run",
           "find_run"]

_COLUMNS = ("r.id, r.result_id, s.sample_id, r.version, r.kind, r.based_on, r.recorded_utc, r.user, r.reason, "
            "r.qc, r.phenotype, r.hladr_abc, r.ferritin_text, r.ferritin_unit, r.ferritin_ng_ml, r.calibration_id, "
            "r.ruleset, r.file, r.sha256, r.content_json, "
            "(SELECT run_id FROM runs WHERE runs.id = r.run_row), "
            "(SELECT MAX(version) FROM results x WHERE x.sample_row = r.sample_row)")
_FROM = " FROM results r JOIN samples s ON s.id = r.sample_row"


@dataclass(frozen=True)
class StoredResult:
    """One version of a sample's result as kept. ``run_id``: the run whose analysis it is (for an
    amendment, that of the version it corrects, whose row is ``based_on``)."""

    row: int
    result_id: str
    sample_id: str
    version: int
    kind: str
    based_on: int | None
    recorded_utc: str
    user: str
    reason: str | None
    qc: str
    phenotype: str
    hladr_abc: float | None
    ferritin_text: str
    ferritin_unit: str
    ferritin_ng_ml: float | None
    calibration_id: str | None
    ruleset: str
    file: str
    sha256: str | None
    content: dict = field(repr=False)
    run_id: str | None
    latest_version: int

    @property
    def current(self) -> bool:
        return self.version == self.latest_version

    @property
    def record(self) -> dict:
        """The sample's record, with the fields of results.json (less ``timings_ms``)."""
        return self.content["sample"]


def _result(row: tuple) -> StoredResult:
    return StoredResult(*row[:19], content=json.loads(row[19]), run_id=row[20], latest_version=row[21])


def sample_versions(db: str | os.PathLike | None, sample_id: str) -> list[StoredResult]:
    """Every version of one sample's result, oldest first (empty when the store has none)."""
    sql = f"SELECT {_COLUMNS}{_FROM} WHERE s.sample_id = ? ORDER BY r.version"
    return read_store(db, "read the results store",
                      lambda con: [_result(r) for r in con.execute(sql, (sample_id,))])


def current_results(db: str | os.PathLike | None, *, since: _dt.date | None = None) -> list[StoredResult]:
    """The current version of every sample, in the order the samples were first kept; ``since``: kept on or
    after that (UTC) day."""
    sql = (f"SELECT {_COLUMNS}{_FROM} WHERE r.version = "
           "(SELECT MAX(version) FROM results x WHERE x.sample_row = r.sample_row)")
    params: tuple = ()
    if since is not None:
        sql, params = sql + " AND r.recorded_utc >= ?", (since.isoformat(),)
    return read_store(db, "read the results store",
                      lambda con: [_result(r) for r in con.execute(sql + " ORDER BY r.sample_row", params)])


@dataclass(frozen=True)
class StoredRun:
    """A run as kept: its id, times (``finished_utc`` ``None``: it did not finish), where it read, who ran it,
    the hladr version, and its calibration record."""

    row: int
    run_id: str
    started_utc: str
    finished_utc: str | None
    n_results: int | None
    run_dir: str
    user: str
    reason: str | None
    hladr_version: str
    calibration: dict = field(repr=False)


def find_run(con: sqlite3.Connection, run_id: str) -> StoredRun | None:
    """The run of that id, or None."""
    row = con.execute(
        "SELECT id, run_id, started_utc, finished_utc, n_results, run_dir, user, reason, hladr_version, "
        "calibration_json FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return None if row is None else StoredRun(*row[:9], calibration=json.loads(row[9]))


def stored_run(db: str | os.PathLike | None, run_id: str) -> StoredRun:
    """The kept run ``run_id``; ``ConfigError`` when the store has no such run."""
    run = read_store(db, "read the results store", lambda con: find_run(con, run_id))
    if run is None:
        raise ConfigError(f"no run {run_id} in the results store {db}; 'hladr results list' shows the runs kept")
    return run


def run_results(db: str | os.PathLike | None, run_id: str) -> list[StoredResult]:
    """The results of one run, in its order: for each result it gave, that version as later amended
    (``hladr results amend``), not a later run's re-analysis of the sample (that run's own)."""

    def read(con: sqlite3.Connection) -> list[StoredResult]:
        run = find_run(con, run_id)
        if run is None:
            return []
        out = []
        given = con.execute(f"SELECT {_COLUMNS}{_FROM} JOIN run_results l ON l.result_row = r.id "
                            "WHERE l.run_row = ? ORDER BY l.position", (run.row,)).fetchall()
        for row in given:
            res = _result(row)
            later = con.execute(f"SELECT {_COLUMNS}{_FROM} WHERE s.sample_id = ? AND r.version > ? "
                                "ORDER BY r.version", (res.sample_id, res.version)).fetchall()
            for newer in map(_result, later):
                if newer.kind == "amendment" and newer.based_on == res.row:
                    res = newer
            out.append(res)
        return out

    return read_store(db, "read the results store", read)
