"""The results store: one SQLite file, a versioned schema, append-only rows.

Where the store is
    ``--db FILE`` where a command has it; otherwise ``$HLADR_DB``; otherwise
    ``~/.local/share/hladr/hladr.sqlite`` (see :func:`default_db_path`). Parent
    folders are created when a record is written; reading never creates a store.

``schema.py``: the file, its migrations and transactions; ``calibrations.py``: calibrations
kept and read back as a series; ``_wait.py``: waiting (bounded, said once) for a store that
another process holds.
"""

from .calibrations import (
    CalibrationPoint,
    LevelPoint,
    StoredCalibration,
    calibration_series,
    json_default,
    record_calibration,
    store_calibration,
)
from .schema import MIGRATIONS, SCHEMA_VERSION, default_db_path, open_store, schema_version

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "StoredCalibration",
    "LevelPoint",
    "CalibrationPoint",
    "default_db_path",
    "open_store",
    "schema_version",
    "record_calibration",
    "store_calibration",
    "calibration_series",
    "json_default",
]
