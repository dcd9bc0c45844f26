"""A store made by the release before issue 14 (schema version 1) is migrated and loses nothing."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from hladr.store import MIGRATIONS, SCHEMA_VERSION, calibration_series, open_store, schema_version

OLD_STORE = Path(__file__).resolve().parents[1] / "data" / "store_schema1.sqlite"
OLD_IDS = ["169978ab23d9ccd6", "e03d664422d91a44", "4042a7a84282622a"]


@pytest.fixture
def old_store(tmp_path) -> Path:
    db = tmp_path / "hladr.sqlite"
    shutil.copyfile(OLD_STORE, db)
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == 1  # as released
    finally:
        con.close()
    return db


def _rows(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_an_old_store_is_migrated_in_place(old_store):
    before = _rows(old_store, "SELECT * FROM calibrations ORDER BY id")
    levels = _rows(old_store, "SELECT * FROM calibration_levels ORDER BY calibration_row_id, position")
    assert schema_version(old_store) == SCHEMA_VERSION == 2
    assert _rows(old_store, "SELECT * FROM calibrations ORDER BY id") == before  # nothing changed or lost
    assert _rows(old_store, "SELECT * FROM calibration_levels ORDER BY calibration_row_id, position") == levels
    versions = _rows(old_store, "SELECT version, description FROM schema_version ORDER BY version")
    assert [v for v, _ in versions] == [m[0] for m in MIGRATIONS]
    tables = {r[0] for r in _rows(old_store, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "tubes", "samples", "results", "run_results", "audit_log"} <= tables
    assert _rows(old_store, "PRAGMA integrity_check") == [("ok",)]
    assert _rows(old_store, "PRAGMA foreign_key_check") == []
    assert [p.calibration_id for p in calibration_series(old_store)] == OLD_IDS


def test_migrating_twice_or_concurrently_applies_each_migration_once(old_store):
    for _ in range(2):
        open_store(old_store).close()
    assert _rows(old_store, "SELECT COUNT(*) FROM schema_version") == [(len(MIGRATIONS),)]


def test_a_run_is_kept_in_a_migrated_store(old_store, run_a, tmp_path):
    from hladr.cli import main
    from hladr.store import current_results, verify_audit

    assert main(["run", str(run_a), "--out", str(tmp_path / "out"), "--quiet", "--db", str(old_store)]) in (0, 1)
    assert len(current_results(old_store)) == 3
    ids = [p.calibration_id for p in calibration_series(old_store)]
    assert len(ids) == 4 and set(OLD_IDS) < set(ids)  # the old ones and the run's
    check = verify_audit(old_store)  # the old calibrations predate the trail; what came after is in it
    assert check.ok and check.results == 3 and check.runs == 1
    assert _rows(old_store, "PRAGMA integrity_check") == [("ok",)]
