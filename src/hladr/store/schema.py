"""The store's file and schema: where it is, opening it, its migrations and its transactions.

Schema
    ``schema_version(version, applied_utc, description, software_version)``
    holds one row per migration applied. ``MIGRATIONS`` is an ordered list;
    opening a store applies the ones it lacks, each in its own transaction, so
    a later release (sample results, hash-chained audit trail) appends a
    migration and never rewrites an old one. Migrations only add: nothing is
    ever dropped or deleted. A store written by a newer hladr is refused.

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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .. import __version__
from ..errors import StoreError
from ._wait import is_locked, patiently

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "default_db_path", "open_store", "open_once", "schema_version",
           "transaction", "utc_now"]

log = logging.getLogger(__name__)


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
                f"{path}: no results store here; record calibrations with 'hladr calibrate ... --db {path}'"
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


def schema_version(db: str | os.PathLike | None = None) -> int:
    """Schema version of an existing store (after any pending migration)."""
    con = open_store(db, create=False)
    try:
        return _current_version(con)
    finally:
        con.close()


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
