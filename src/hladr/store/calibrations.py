"""Calibrations in the store: kept once each, read back as a series for the history.

``store_calibration(db, calibration, *, source) -> StoredCalibration`` keeps a
``Calibration`` (its record, the ``calibration.json`` of SPEC.md section 5, and the
columns the history reads); ``calibration_series(db, ...) -> list[CalibrationPoint]``
reads them back, oldest first, as frozen points for the Levey-Jennings chart and the
Westgard rules. Every function takes the path of the store and opens and closes its own
connection. ``calibrations`` holds one row per calibration (``calibration_id`` is
unique), with the columns the history needs and the whole record as JSON;
``calibration_levels`` one row per bead level.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import StoreError
from ..events import parse_fcs_date
from ..safe_text import dumps_strict
from ._json import json_default
from ._wait import is_locked, patiently
from .audit import append_entry, current_user
from .schema import default_db_path, open_once, transaction, utc_now

if TYPE_CHECKING:  # only a type here: importing the bead fit would load Numba for `hladr calibration history`
    from ..beads.record import Calibration

__all__ = ["StoredCalibration", "LevelPoint", "CalibrationPoint", "json_default", "store_calibration",
           "record_calibration", "calibration_series"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredCalibration:
    """Receipt of :func:`store_calibration`: the row and whether it is new."""

    row_id: int
    calibration_id: str
    created: bool

    def note(self, db: str | os.PathLike) -> str:
        """One line for the user: stored in ``db``, or already there."""
        if self.created:
            return f"stored calibration {self.calibration_id} in {db}"
        return f"calibration {self.calibration_id} was already in {db}: not stored again"


@dataclass(frozen=True)
class LevelPoint:
    """One bead level of a stored calibration (``mfi`` is the median PE, channel units)."""

    name: str
    pe_per_bead: float | None
    mfi: float | None
    rcv_pct: float | None
    events: int | None
    used: bool
    saturated: bool


@dataclass(frozen=True)
class CalibrationPoint:
    """One stored calibration, as the history reads it.

    ``acquired_date`` comes from the bead file's ``$DATE``; ``None`` when the file
    had none or it could not be read, in which case :attr:`date` falls back to
    the day it was recorded (UTC).
    """

    row_id: int
    calibration_id: str
    recorded_utc: str
    acquired_date: _dt.date | None
    instrument: str | None
    serial: str | None
    lot_id: str
    slope: float | None
    intercept: float | None
    r2: float | None
    accepted: bool
    source: str
    levels: tuple[LevelPoint, ...]

    @property
    def date(self) -> _dt.date:
        """Acquisition date, or the recording date when that is unknown."""
        return self.acquired_date or _dt.date.fromisoformat(self.recorded_utc[:10])

    def mfi(self, level: str) -> float | None:
        """Median PE of bead level ``level`` (``None`` when absent)."""
        for lv in self.levels:
            if lv.name == level:
                return lv.mfi
        return None

    def level(self, level: str) -> LevelPoint | None:
        """The stored bead level named ``level``, if any."""
        return next((lv for lv in self.levels if lv.name == level), None)


def _num(x: object) -> float | None:
    if x is None:
        return None
    v = float(x)  # type: ignore[arg-type]
    return v if math.isfinite(v) else None


def store_calibration(db: str | os.PathLike | None, calibration: Calibration, *, source: str,
                      user: str | None = None) -> StoredCalibration:
    """Keep a calibration in the store, once.

    Parameters
    ----------
    db : path or None
        The store (created when missing); ``None`` for :func:`default_db_path`.
    calibration : Calibration
        The calibration; its record (``Calibration.to_dict()``, SPEC.md section 5) is
        kept whole as JSON, beside the columns the history reads.
    source : str
        What produced it, e.g. ``"hladr calibrate beads.fcs"`` or ``"hladr run RUN_DIR"``.
    user : str, optional
        Who, for the audit trail's ``calibration_stored`` entry (default: the OS user).

    Returns
    -------
    StoredCalibration
        The row id and ``created=False`` when a calibration with the same id
        (``Calibration.id``) was already stored: the store keeps the first one and
        is unchanged (recording is idempotent). A differing second record is
        logged as a warning, never overwrites.

    Raises
    ------
    StoreError
        The store cannot be opened.
    """
    cal_id = calibration.id
    c, settings = calibration.curve, calibration.settings
    levels = [
        (k, lv.name, _num(lv.pe_per_bead), _num(lv.mfi), _num(lv.rcv_pct), int(lv.events), int(lv.used),
         int(lv.saturated), _num(lv.residual_pct))
        for k, lv in enumerate(c.levels)
    ]
    text = dumps_strict(calibration.to_dict(), sort_keys=True, default=json_default)  # strict JSON: NaN/inf -> null
    acquired = parse_fcs_date(settings.date)
    path = Path(db) if db is not None else default_db_path()
    who = user or current_user()

    def once(timeout: float) -> StoredCalibration:
        return _insert_calibration(open_once(path, True, timeout), path, cal_id, text, levels, user=who, values=(
            cal_id, utc_now(), acquired.isoformat() if acquired else None, settings.date,
            settings.instrument, settings.serial, calibration.lot.id, c.pe_channel or settings.pe_channel,
            settings.pe_voltage, _num(c.slope), _num(c.intercept), _num(c.r2), int(c.accepted),
            calibration.software_version, source, text,
        ))

    return patiently(path, once, doing="store the calibration")


def _insert_calibration(con: sqlite3.Connection, path: Path, cal_id: str, text: str, levels: list[tuple],
                        *, user: str, values: tuple) -> StoredCalibration:
    """One transaction of :func:`store_calibration`; closes ``con``."""
    try:
        with transaction(con):
            row = con.execute(
                "SELECT id, record_json FROM calibrations WHERE calibration_id = ?", (cal_id,)
            ).fetchone()
            if row is not None:
                stored = json.loads(row[1])
                if stored != json.loads(text):
                    log.warning("%s: calibration %s is already stored (row %d) with a different record; "
                                "the stored one is kept", path, cal_id, row[0])
                else:
                    log.info("%s: calibration %s is already stored (row %d); not stored again", path, cal_id, row[0])
                return StoredCalibration(int(row[0]), cal_id, False)
            cur = con.execute(
                "INSERT INTO calibrations (calibration_id, recorded_utc, acquired_date, acquired_date_text, "
                "instrument, serial, lot_id, pe_channel, pe_voltage, slope, intercept, r2, accepted, "
                "software_version, source, record_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            row_id = int(cur.lastrowid)  # type: ignore[arg-type]
            con.executemany(
                "INSERT INTO calibration_levels (calibration_row_id, position, level, pe_per_bead, mfi, rcv_pct, "
                "events, used, saturated, residual_pct) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(row_id, *lv) for lv in levels],
            )
            append_entry(con, utc=values[1], user=user, action="calibration_stored", new={
                "calibration_id": cal_id, "accepted": bool(values[12]), "lot_id": values[6],
                "instrument": values[4], "serial": values[5], "source": values[14]})
    finally:
        con.close()
    log.info("%s: calibration %s stored (row %d)", path, cal_id, row_id)
    return StoredCalibration(row_id, cal_id, True)


def record_calibration(db_path: str | os.PathLike | None, calibration: Calibration, *, source: str) -> int:
    """Keep a calibration; return its row id (see :func:`store_calibration`).

    Recording the same ``calibration_id`` again stores nothing and returns the
    existing row id (logged at INFO level: "already stored; not stored again").
    """
    return store_calibration(db_path, calibration, source=source).row_id


def calibration_series(
    db: str | os.PathLike | None,
    *,
    instrument: str | None = None,
    serial: str | None = None,
    since: _dt.date | None = None,
    lot_id: str | None = None,
) -> list[CalibrationPoint]:
    """Stored calibrations, oldest first, optionally filtered.

    Parameters
    ----------
    db : path or None
        An existing store; ``None`` for :func:`default_db_path`.
    instrument : str, optional
        Instrument model as in ``$CYT`` (case-insensitive), e.g. ``"FACSCanto II"``.
    serial : str, optional
        Instrument serial number (``$CYTSN``), exact.
    since : date, optional
        Keep calibrations acquired on or after this date.
    lot_id : str, optional
        Keep one bead lot.

    Returns
    -------
    list of CalibrationPoint
        Ordered by acquisition date (the recording date when unknown), then by
        the order they were recorded.

    Raises
    ------
    StoreError
        The store does not exist or cannot be read.
    """
    where, params = [], []
    if instrument is not None:
        where.append("instrument = ? COLLATE NOCASE")
        params.append(instrument)
    if serial is not None:
        where.append("serial = ?")
        params.append(serial)
    if since is not None:
        where.append("COALESCE(acquired_date, substr(recorded_utc, 1, 10)) >= ?")
        params.append(since.isoformat())
    if lot_id is not None:
        where.append("lot_id = ?")
        params.append(lot_id)
    cond = " WHERE " + " AND ".join(where) if where else ""
    sql = (
        "SELECT id, calibration_id, recorded_utc, acquired_date, instrument, serial, lot_id, slope, intercept, "
        f"r2, accepted, source FROM calibrations{cond} "
        "ORDER BY COALESCE(acquired_date, substr(recorded_utc, 1, 10)), id"
    )
    path = Path(db) if db is not None else default_db_path()
    return patiently(path, lambda timeout: _read_series(open_once(path, False, timeout), path, sql, cond, params),
                     doing="read the results store")


def _read_series(con: sqlite3.Connection, path: Path, sql: str, cond: str, params: list) -> list[CalibrationPoint]:
    """One reading of :func:`calibration_series`; closes ``con``."""
    try:
        rows = con.execute(sql, params).fetchall()
        levels: dict[int, list[LevelPoint]] = {}
        for r in con.execute(
            "SELECT calibration_row_id, level, pe_per_bead, mfi, rcv_pct, events, used, saturated "
            f"FROM calibration_levels WHERE calibration_row_id IN (SELECT id FROM calibrations{cond}) "
            "ORDER BY calibration_row_id, position",
            params,
        ):
            levels.setdefault(r[0], []).append(LevelPoint(r[1], r[2], r[3], r[4], r[5], bool(r[6]), bool(r[7])))
    except sqlite3.DatabaseError as exc:
        if is_locked(exc):
            raise
        raise StoreError(f"{path}: cannot read the results store ({exc})") from None
    finally:
        con.close()
    return [
        CalibrationPoint(
            row_id=r[0], calibration_id=r[1], recorded_utc=r[2],
            acquired_date=_dt.date.fromisoformat(r[3]) if r[3] else None,
            instrument=r[4], serial=r[5], lot_id=r[6], slope=r[7], intercept=r[8], r2=r[9],
            accepted=bool(r[10]), source=r[11], levels=tuple(levels.get(r[0], ())),
        )
        for r in rows
    ]
