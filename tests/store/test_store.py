"""The SQLite results store: schema and migrations, round trip, idempotency, filters."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sqlite3
from pathlib import Path

import pytest

from calibration_records import make_calibration
from hladr.beads.record import Calibration
from hladr.errors import CalibrationError, StoreError
from hladr.events import parse_fcs_date
from hladr.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    calibration_series,
    default_db_path,
    open_store,
    record_calibration,
    schema_version,
    store_calibration,
)

REPO = Path(__file__).resolve().parents[2]
LEVELS = ("low", "med-low", "med-high", "high")


# ---------------------------------------------------------------- schema


def test_new_store_has_the_schema_and_wal(tmp_path):
    db = tmp_path / "deep" / "folder" / "hladr.sqlite"
    record_calibration(db, make_calibration(1), source="test")
    assert db.is_file()  # parent folders created
    assert schema_version(db) == SCHEMA_VERSION == MIGRATIONS[-1][0]
    with sqlite3.connect(db) as con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"schema_version", "calibrations", "calibration_levels"} <= tables
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = con.execute("SELECT version, description, software_version FROM schema_version").fetchall()
        assert [r[0] for r in rows] == [m[0] for m in MIGRATIONS]
        cols = {r[1] for r in con.execute("PRAGMA table_info(calibrations)")}
        assert {"id", "calibration_id", "recorded_utc", "acquired_date", "instrument", "serial", "lot_id", "slope",
                "intercept", "r2", "accepted", "record_json", "source"} <= cols
        cols = {r[1] for r in con.execute("PRAGMA table_info(calibration_levels)")}
        assert {"calibration_row_id", "level", "mfi", "rcv_pct", "events", "used", "saturated"} <= cols
    con.close()


# the one form in which a migration may name DELETE: a trigger that refuses it
_GUARD = re.compile(r"CREATE TRIGGER \w+ BEFORE (UPDATE|DELETE) ON \w+ (WHEN .+ )?"
                    r"BEGIN SELECT RAISE\(ABORT, '[^']*'\); END", re.DOTALL)


def test_migrations_are_ordered_and_never_drop_or_delete():
    versions = [v for v, _, _ in MIGRATIONS]
    assert versions == sorted(versions) == list(range(1, len(versions) + 1))
    for _, _, statements in MIGRATIONS:
        for sql in statements:
            assert "DROP" not in sql.upper()
            if _GUARD.fullmatch(sql) is None:
                assert "DELETE" not in sql.upper() and "UPDATE" not in sql.upper(), sql


def test_every_kept_table_refuses_update_and_delete(tmp_path):
    """Rows are only ever added: SQLite itself refuses to change or remove one (the audit chain shows it anyway)."""
    db = tmp_path / "s.sqlite"
    record_calibration(db, make_calibration(1), source="test")
    con = sqlite3.connect(db, isolation_level=None)
    for sql in ("UPDATE calibrations SET slope = 2", "DELETE FROM calibrations",
                "DELETE FROM calibration_levels", "UPDATE calibration_levels SET mfi = 1"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute(sql)
    con.close()


def test_reopening_does_not_reapply_migrations(tmp_path):
    db = tmp_path / "s.sqlite"
    for _ in range(3):
        open_store(db).close()
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == len(MIGRATIONS)
    con.close()


def test_store_from_a_newer_hladr_is_refused(tmp_path):
    db = tmp_path / "s.sqlite"
    open_store(db).close()
    con = sqlite3.connect(db)
    con.execute("INSERT INTO schema_version VALUES (99, '2030-01-01T00:00:00Z', 'future', '9.0')")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer than this hladr"):
        calibration_series(db)


def test_missing_store_is_an_error_when_reading_and_is_not_created(tmp_path):
    db = tmp_path / "nope.sqlite"
    with pytest.raises(StoreError, match="no results store"):
        calibration_series(db)
    assert not db.exists()


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    db = tmp_path / "x.sqlite"
    db.write_bytes(b"this is not a database, just some text" * 50)
    with pytest.raises(StoreError, match="not an hladr results store"):
        calibration_series(db)


def test_default_path(monkeypatch, tmp_path):
    monkeypatch.setenv("HLADR_DB", str(tmp_path / "env.sqlite"))
    assert default_db_path() == tmp_path / "env.sqlite"
    monkeypatch.delenv("HLADR_DB")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_db_path() == tmp_path / ".local" / "share" / "hladr" / "hladr.sqlite"


# ---------------------------------------------------------------- round trip and idempotency


def test_round_trip(tmp_path):
    db = tmp_path / "s.sqlite"
    cal = make_calibration(1, date="05-JAN-2026", slope=1.0123, intercept=-0.3045)
    row = record_calibration(db, cal, source="hladr calibrate beads_1.fcs")
    (p,) = calibration_series(db)
    assert p.row_id == row and p.calibration_id == cal.id
    assert p.acquired_date == dt.date(2026, 1, 5) == p.date
    assert (p.instrument, p.serial, p.lot_id) == ("FACSCanto II", "V33896202", "96597")
    assert (p.slope, p.intercept, p.r2, p.accepted) == (1.0123, -0.3045, 0.9999, True)
    assert p.source == "hladr calibrate beads_1.fcs"
    assert p.recorded_utc.endswith("Z") and dt.datetime.fromisoformat(p.recorded_utc)
    assert [lv.name for lv in p.levels] == list(LEVELS)
    assert [p.mfi(n) for n in LEVELS] == [1200.0, 12800.0, 56500.0, 122000.0]
    assert p.level("high").events == 2003 and p.level("high").rcv_pct == 8.0 and p.level("high").used
    assert p.mfi("nope") is None
    con = sqlite3.connect(db)
    (text,) = con.execute("SELECT record_json FROM calibrations").fetchone()
    con.close()
    assert json.loads(text) == cal.to_dict()  # the whole record is kept


def test_a_record_read_from_a_file_is_kept_as_it_was_read(tmp_path):
    """``--calibration CAL.json`` reads a record; the store keeps that record, not one rebuilt from its parts."""
    record = {**make_calibration(3).to_dict(), "run_id": "20260105T080000Z-0123456789ab",
              "field_of_another_version": "kept"}
    record["lot"]["path"] = "/labs/lots/96597.toml"
    cal = Calibration.from_dict(json.loads(json.dumps(record)))
    db = tmp_path / "s.sqlite"
    record_calibration(db, cal, source="test")
    con = sqlite3.connect(db)
    (text,) = con.execute("SELECT record_json FROM calibrations").fetchone()
    con.close()
    assert json.loads(text) == record
    assert calibration_series(db)[0].calibration_id == cal.id == record["id"]


def test_real_calibration_record_round_trip(tmp_path):
    from hladr.beads.lots import find_lot
    from hladr.beads.record import calibrate_beads

    cal = calibrate_beads(str(REPO / "example_fcs" / "beads.fcs"), find_lot("96597"))
    rec = cal.to_dict()  # may hold numpy scalars
    db = tmp_path / "s.sqlite"
    record_calibration(db, cal, source="test")
    (p,) = calibration_series(db)
    assert p.calibration_id == cal.id
    assert p.slope == pytest.approx(cal.curve.slope) and p.intercept == pytest.approx(cal.curve.intercept)
    assert p.acquired_date == parse_fcs_date(rec["settings"]["date"])
    assert [p.mfi(lv["name"]) for lv in rec["levels"]] == pytest.approx([lv["mfi"] for lv in rec["levels"]])


def test_recording_twice_stores_once_and_says_so(tmp_path, caplog):
    db = tmp_path / "s.sqlite"
    cal = make_calibration(1)
    first = store_calibration(db, cal, source="a")
    with caplog.at_level(logging.INFO, logger="hladr.store"):
        second = store_calibration(db, cal, source="b")
    assert first.created and not second.created
    assert first.row_id == second.row_id == record_calibration(db, cal, source="c")
    assert "already stored" in caplog.text and "not stored again" in caplog.text
    assert first.note(db) == f"stored calibration {cal.id} in {db}"
    assert second.note(db) == f"calibration {cal.id} was already in {db}: not stored again"
    (p,) = calibration_series(db)
    assert p.source == "a"
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM calibration_levels").fetchone()[0] == 4
    con.close()


def test_a_different_record_with_the_same_id_never_overwrites(tmp_path, caplog):
    db = tmp_path / "s.sqlite"
    store_calibration(db, make_calibration(1, slope=1.01), source="a")
    with caplog.at_level(logging.WARNING, logger="hladr.store"):
        receipt = store_calibration(db, make_calibration(1, slope=1.05), source="b")
    assert not receipt.created and "different record" in caplog.text
    assert calibration_series(db)[0].slope == 1.01


def test_the_calibration_id_is_the_sha256_of_lot_and_inputs(tmp_path):
    import hashlib

    db = tmp_path / "s.sqlite"
    cal = make_calibration(7)
    a = store_calibration(db, cal, source="x")
    b = store_calibration(db, make_calibration(7, slope=1.02), source="y")  # same lot and bead file: same id
    expected = hashlib.sha256(("96597|" + cal.inputs[0][1]).encode()).hexdigest()[:16]
    assert a.calibration_id == b.calibration_id == cal.id == expected and not b.created
    other_lot = make_calibration(7, lot="LOT2")
    assert store_calibration(db, other_lot, source="z").calibration_id == other_lot.id != expected


@pytest.mark.parametrize("drop", ["fit", "accepted", "levels", "lot"])
def test_invalid_record_is_refused_where_it_is_read_and_nothing_is_created(tmp_path, drop):
    rec = make_calibration(1).to_dict()
    del rec[drop]
    db = tmp_path / "s.sqlite"
    with pytest.raises(CalibrationError, match="not a valid calibration record"):
        record_calibration(db, Calibration.from_dict(rec), source="test")
    assert not db.exists()


def test_rejected_and_unreadable_date_are_kept(tmp_path):
    db = tmp_path / "s.sqlite"
    record_calibration(db, make_calibration(1, accepted=False, date="sometime"), source="t")
    (p,) = calibration_series(db)
    assert not p.accepted and p.acquired_date is None
    assert p.date == dt.date.fromisoformat(p.recorded_utc[:10])


# ---------------------------------------------------------------- filters and order


@pytest.fixture
def filled(tmp_path):
    db = tmp_path / "s.sqlite"
    rows = [
        (1, "12-JAN-2026", "SN-A", "FACSCanto II", "96597"),
        (2, "05-JAN-2026", "SN-A", "FACSCanto II", "96597"),  # recorded later, acquired earlier
        (3, "20-JAN-2026", "SN-B", "CytoFLEX", "96597"),
        (4, "02-FEB-2026", "SN-A", "FACSCanto II", "LOT2"),
    ]
    for n, date, serial, inst, lot in rows:
        record_calibration(db, make_calibration(n, date=date, serial=serial, instrument=inst, lot=lot), source=f"t{n}")
    return db


def _ids(points):
    return [p.source[1:] for p in points]


def test_series_is_ordered_by_acquisition_date(filled):
    assert _ids(calibration_series(filled)) == ["2", "1", "3", "4"]


def test_filter_by_serial_instrument_since_and_lot(filled):
    assert _ids(calibration_series(filled, serial="SN-A")) == ["2", "1", "4"]
    assert _ids(calibration_series(filled, instrument="cytoflex")) == ["3"]  # model, case-insensitive
    assert _ids(calibration_series(filled, since=dt.date(2026, 1, 12))) == ["1", "3", "4"]  # inclusive
    assert _ids(calibration_series(filled, lot_id="LOT2")) == ["4"]
    assert _ids(calibration_series(filled, serial="SN-A", since=dt.date(2026, 1, 6), lot_id="96597")) == ["1"]
    assert calibration_series(filled, serial="SN-Z") == []
    # every point carries its own levels, not another calibration's
    assert all(len(p.levels) == 4 for p in calibration_series(filled, serial="SN-A"))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("20-NOV-2026", dt.date(2026, 11, 20)),
        ("5-jan-2026", dt.date(2026, 1, 5)),
        ("05-JAN-26", dt.date(2026, 1, 5)),
        ("05-JAN-99", dt.date(1999, 1, 5)),
        ("2026-01-05", dt.date(2026, 1, 5)),
        ("31-FEB-2026", None),
        ("01/02/2026", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_fcs_date(text, expected):
    assert parse_fcs_date(text) == expected
