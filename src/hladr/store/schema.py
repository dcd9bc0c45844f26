"""The store's file and schema: where it is, opening it, its migrations and its transactions.

Schema
    ``schema_version(version, applied_utc, description, software_version)``
    holds one row per migration applied. ``MIGRATIONS`` is an ordered list;
    opening a store applies the ones it lacks, each in its own transaction, so
    a later release appends a migration and never rewrites an old one.
    Migrations only add: nothing is ever dropped or deleted. A store written by
    a newer hladr is refused.

    Version 1: ``calibrations`` and their ``calibration_levels``. Version 2:
    ``runs`` (one row per ``hladr run`` that kept its results), ``tubes`` (one
    per FCS file content: instrument, serial, voltages), ``samples`` (one per
    sample id), ``results`` (one row per version of a sample's result, with its
    provenance; ``result_id`` is the SHA-256 of ``content_json``),
    ``run_results`` (which results each run gave) and ``audit_log`` (who, when,
    what, why; each entry chained to the previous one by SHA-256). Every table
    is append-only: triggers refuse UPDATE and DELETE (a run's row is completed
    once, when the run ends); the audit chain shows a change made around them.

Concurrency and safety
    WAL journal (readers do not block the writer), ``BEGIN IMMEDIATE``
    transactions, foreign keys on. A store locked by another process is waited
    for (a warning says so) for ``$HLADR_STORE_WAIT`` seconds in all, default 60,
    then ``StoreBusyError`` (see :mod:`hladr.store._wait`); other SQLite errors become
    ``StoreError``: one line for the user, never a traceback.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from .. import __version__
from ..errors import StoreError
from ._wait import is_locked, patiently

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "default_db_path", "open_store", "open_once", "schema_version",
           "transaction", "utc_now", "read_store", "write_store"]

log = logging.getLogger(__name__)
T = TypeVar("T")


# Ordered, append-only: (version, description, statements). Never edit a released entry.
MIGRATIONS: list[tuple[int, str, tuple[str, ...]]] = [
    (
        1,
        "calibrations and their bead levels",
        (
            """CREATE TABLE calibrations (
                id INTEGER PRIMARY KEY,
                calibration_id TEXT NOT NULL UNIQUE,
                recorded_utc TEXT NOT NULL,
                acquired_date TEXT,
                acquired_date_text TEXT,
                instrument TEXT,
                serial TEXT,
                lot_id TEXT NOT NULL,
                pe_channel TEXT,
                pe_voltage TEXT,
                slope REAL,
                intercept REAL,
                r2 REAL,
                accepted INTEGER NOT NULL CHECK (accepted IN (0, 1)),
                software_version TEXT,
                source TEXT NOT NULL,
                record_json TEXT NOT NULL
            )""",
            "CREATE INDEX calibrations_by_serial_date ON calibrations (serial, acquired_date)",
            "CREATE INDEX calibrations_by_instrument_date ON calibrations (instrument, acquired_date)",
            """CREATE TABLE calibration_levels (
                calibration_row_id INTEGER NOT NULL REFERENCES calibrations (id),
                position INTEGER NOT NULL,
                level TEXT NOT NULL,
                pe_per_bead REAL,
                mfi REAL,
                rcv_pct REAL,
                events INTEGER,
                used INTEGER NOT NULL CHECK (used IN (0, 1)),
                saturated INTEGER NOT NULL CHECK (saturated IN (0, 1)),
                residual_pct REAL,
                PRIMARY KEY (calibration_row_id, position)
            )""",
        ),
    ),
    (
        2,
        "runs, tubes, sample results in versions with their provenance, and the hash-chained audit log",
        (
            # one row per `hladr run` that kept its results here: an event (a re-run is a new row; its
            # results are the same rows). finished_utc stays NULL for a run that was stopped.
            """CREATE TABLE runs (
                id INTEGER PRIMARY KEY,
                run_id TEXT NOT NULL UNIQUE,
                started_utc TEXT NOT NULL,
                finished_utc TEXT,
                n_results INTEGER,
                run_dir TEXT NOT NULL,
                user TEXT NOT NULL,
                reason TEXT,
                hladr_version TEXT NOT NULL,
                software_json TEXT NOT NULL,
                config_json TEXT NOT NULL,
                calibration_row INTEGER REFERENCES calibrations (id),
                calibration_json TEXT NOT NULL
            )""",
            # one row per FCS file content: what the cytometer was set to
            """CREATE TABLE tubes (
                id INTEGER PRIMARY KEY,
                sha256 TEXT NOT NULL UNIQUE,
                file TEXT NOT NULL,
                instrument TEXT,
                serial TEXT,
                acquired_date_text TEXT,
                voltages_json TEXT NOT NULL,
                acquisition_json TEXT NOT NULL,
                recorded_utc TEXT NOT NULL
            )""",
            "CREATE TABLE samples (id INTEGER PRIMARY KEY, sample_id TEXT NOT NULL UNIQUE, recorded_utc TEXT NOT NULL)",
            # one row per version of a sample's result; content_json is what result_id is the SHA-256 of;
            # run_row: the run whose analysis it is (an amendment: that of the version it corrects, based_on)
            """CREATE TABLE results (
                id INTEGER PRIMARY KEY,
                result_id TEXT NOT NULL UNIQUE,
                sample_row INTEGER NOT NULL REFERENCES samples (id),
                version INTEGER NOT NULL CHECK (version >= 1),
                kind TEXT NOT NULL CHECK (kind IN ('analysis', 'amendment')),
                based_on INTEGER REFERENCES results (id),
                run_row INTEGER REFERENCES runs (id),
                tube_row INTEGER REFERENCES tubes (id),
                calibration_row INTEGER REFERENCES calibrations (id),
                recorded_utc TEXT NOT NULL,
                user TEXT NOT NULL,
                reason TEXT,
                subject_id TEXT NOT NULL,
                visit TEXT NOT NULL,
                file TEXT NOT NULL,
                sha256 TEXT,
                qc TEXT NOT NULL,
                phenotype TEXT NOT NULL,
                monocyte_count INTEGER,
                hladr_abc REAL,
                ferritin_ng_ml REAL,
                ferritin_text TEXT NOT NULL,
                ferritin_unit TEXT NOT NULL,
                calibration_id TEXT,
                ruleset TEXT NOT NULL,
                gate_sha256 TEXT NOT NULL,
                config_sha256 TEXT NOT NULL,
                software_version TEXT NOT NULL,
                content_json TEXT NOT NULL,
                UNIQUE (sample_row, version),
                CHECK (version = 1 OR length(trim(coalesce(reason, ''))) > 0),
                CHECK ((kind = 'amendment') = (based_on IS NOT NULL))
            )""",
            "CREATE INDEX results_by_time ON results (recorded_utc)",
            # which results a run gave, in its order (new = 1: stored by that run; 0: already stored)
            """CREATE TABLE run_results (
                run_row INTEGER NOT NULL REFERENCES runs (id),
                position INTEGER NOT NULL,
                result_row INTEGER NOT NULL REFERENCES results (id),
                new INTEGER NOT NULL CHECK (new IN (0, 1)),
                PRIMARY KEY (run_row, position)
            )""",
            "CREATE INDEX run_results_by_result ON run_results (result_row)",
            # append-only; entry_sha256 = SHA-256 of the entry with prev_sha256, the previous entry's
            """CREATE TABLE audit_log (
                seq INTEGER PRIMARY KEY,
                utc TEXT NOT NULL,
                user TEXT NOT NULL,
                action TEXT NOT NULL,
                sample_id TEXT,
                run_id TEXT,
                result_id TEXT,
                old_json TEXT,
                new_json TEXT,
                reason TEXT,
                prev_sha256 TEXT NOT NULL,
                entry_sha256 TEXT NOT NULL UNIQUE
            )""",
            "CREATE INDEX audit_by_sample ON audit_log (sample_id)",
            *(
                f"CREATE TRIGGER {table}_{event.lower()}_refused BEFORE {event} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                for table in ("calibrations", "calibration_levels", "tubes", "samples", "results", "run_results",
                              "audit_log")
                for event in ("UPDATE", "DELETE")
            ),
            "CREATE TRIGGER runs_delete_refused BEFORE DELETE ON runs "
            "BEGIN SELECT RAISE(ABORT, 'runs is append-only'); END",
            # a run's row is completed once (finished_utc, n_results), nothing else ever changes
            "CREATE TRIGGER runs_update_refused BEFORE UPDATE ON runs WHEN OLD.finished_utc IS NOT NULL "
            "OR NEW.run_id IS NOT OLD.run_id OR NEW.started_utc IS NOT OLD.started_utc "
            "OR NEW.run_dir IS NOT OLD.run_dir OR NEW.user IS NOT OLD.user OR NEW.reason IS NOT OLD.reason "
            "OR NEW.software_json IS NOT OLD.software_json OR NEW.config_json IS NOT OLD.config_json "
            "OR NEW.calibration_row IS NOT OLD.calibration_row OR NEW.calibration_json IS NOT OLD.calibration_json "
            "OR NEW.hladr_version IS NOT OLD.hladr_version "
            "BEGIN SELECT RAISE(ABORT, 'a run is completed once and never changed'); END",
        ),
    ),
]


SCHEMA_VERSION = MIGRATIONS[-1][0]


def default_db_path() -> Path:
    """``$HLADR_DB``, else ``~/.local/share/hladr/hladr.sqlite``."""
    env = os.environ.get("HLADR_DB")
    return Path(env) if env else Path.home() / ".local" / "share" / "hladr" / "hladr.sqlite"


def _connect(path: Path, timeout: float) -> sqlite3.Connection:
    try:
        con = sqlite3.connect(str(path), timeout=timeout, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open the results store ({exc})") from None
    try:
        con.execute("PRAGMA foreign_keys = ON")
        con.execute("PRAGMA journal_mode = WAL")
    except sqlite3.DatabaseError as exc:
        con.close()
        if is_locked(exc):
            raise  # waited for by the caller
        raise StoreError(f"{path}: not an hladr results store ({exc})") from None
    return con


@contextmanager
def transaction(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    con.execute("BEGIN IMMEDIATE")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _current_version(con: sqlite3.Connection) -> int:
    row = con.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def _migrate(con: sqlite3.Connection, path: Path) -> None:
    has_table = con.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    if has_table and _current_version(con) == SCHEMA_VERSION:  # up to date: no write lock needed
        return
    with transaction(con):
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER PRIMARY KEY, applied_utc TEXT NOT NULL, "
            "description TEXT NOT NULL, software_version TEXT NOT NULL)"
        )
    if _current_version(con) > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: results store has schema version {_current_version(con)}, newer than this "
            f"hladr {__version__} knows ({SCHEMA_VERSION}); upgrade hladr"
        )
    for version, description, statements in MIGRATIONS:
        with transaction(con):
            if _current_version(con) >= version:  # re-read inside the lock: another process may have migrated
                continue
            for sql in statements:
                con.execute(sql)
            con.execute(
                "INSERT INTO schema_version (version, applied_utc, description, software_version) "
                "VALUES (?, ?, ?, ?)",
                (version, utc_now(), description, __version__),
            )
            log.info("%s: results store migrated to schema version %d (%s)", path, version, description)


def open_store(db: str | os.PathLike | None = None, *, create: bool = True) -> sqlite3.Connection:
    """Open (and, with ``create``, create) the store and bring its schema up to date.

    Parameters
    ----------
    db : path, optional
        The SQLite file; :func:`default_db_path` when ``None``.
    create : bool
        Create the file and its parent folders when missing. With ``False`` a
        missing store raises ``StoreError``: reading must not leave empty stores behind.

    Returns
    -------
    sqlite3.Connection
        In autocommit mode; the caller closes it.

    Raises
    ------
    StoreError
        Missing (with ``create=False``), not SQLite, or written by a newer hladr.
    """
    path = Path(db) if db is not None else default_db_path()
    return patiently(path, lambda timeout: open_once(path, create, timeout), doing="open the results store")


def open_once(path: Path, create: bool, timeout: float) -> sqlite3.Connection:
    """One attempt of :func:`open_store` (a locked store raises ``sqlite3.OperationalError``)."""
    if not path.exists():
        if not create:
            raise StoreError(
                f"{path}: no results store here; 'hladr run' and 'hladr calibrate' keep one (--db FILE, $HLADR_DB)"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the results store's folder ({exc.strerror})") from None
    con = _connect(path, timeout)
    try:
        _migrate(con, path)
    except sqlite3.DatabaseError as exc:
        con.close()
        if is_locked(exc):
            raise
        raise StoreError(f"{path}: not an hladr results store ({exc})") from None
    except BaseException:
        con.close()
        raise
    return con


def read_store(db: str | os.PathLike | None, doing: str, fn: Callable[[sqlite3.Connection], T]) -> T:
    """``fn(con)`` on an existing store (never created by reading), waited for while another process holds it."""
    path = Path(db) if db is not None else default_db_path()

    def once(timeout: float) -> T:
        con = open_once(path, False, timeout)
        try:
            return fn(con)
        except sqlite3.DatabaseError as exc:
            if is_locked(exc):
                raise
            raise StoreError(f"{path}: cannot read the results store ({exc})") from None
        finally:
            con.close()

    return patiently(path, once, doing=doing)


def write_store(db: str | os.PathLike | None, doing: str, fn: Callable[[sqlite3.Connection], T], *,
                create: bool = True) -> T:
    """``fn(con)`` in one ``BEGIN IMMEDIATE`` transaction on the store (with ``create``, made when missing):
    all of it commits or none; a store another process holds is waited for and the whole transaction retried."""
    path = Path(db) if db is not None else default_db_path()

    def once(timeout: float) -> T:
        con = open_once(path, create, timeout)
        try:
            with transaction(con):
                return fn(con)
        except sqlite3.DatabaseError as exc:
            if is_locked(exc):
                raise
            raise StoreError(f"{path}: could not {doing} ({exc})") from None
        finally:
            con.close()

    return patiently(path, once, doing=doing)


def schema_version(db: str | os.PathLike | None = None) -> int:
    """Schema version of an existing store (after any pending migration)."""
    con = open_store(db, create=False)
    try:
        return _current_version(con)
    finally:
        con.close()


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
