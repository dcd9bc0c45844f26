"""The results store: one SQLite file, a versioned schema, append-only rows, a hash-chained audit trail.

Where the store is
    ``--db FILE`` where a command has it; otherwise ``$HLADR_DB``; otherwise
    ``~/.local/share/hladr/hladr.sqlite`` (see :func:`default_db_path`; the shell
    chooses, the core never does). Parent folders are created when a record is
    written; reading never creates a store.

``schema.py``: the file, its migrations and transactions; ``calibrations.py``: calibrations
kept and read back as a series; ``results.py``: a run and its results kept in versions with
their provenance; ``amend.py``: a corrected ferritin as a new version; ``query.py``: results
read back; ``audit.py``: the audit trail and its hash chain; ``verify.py``: the chain checked;
``_wait.py``: waiting (bounded, said once) for a store that another process holds;
``_json.py``: the canonical JSON that is hashed.
"""

from ._json import canonical_json, json_default
from .amend import amend_result, amended_record
from .audit import AuditEntry, audit_entries, current_user
from .calibrations import (
    CalibrationPoint,
    LevelPoint,
    StoredCalibration,
    calibration_series,
    record_calibration,
    store_calibration,
)
from .query import StoredResult, StoredRun, current_results, run_results, sample_versions, stored_run
from .results import Kept, analysis_content, begin_run, finish_run, keep_result, software_versions
from .schema import MIGRATIONS, SCHEMA_VERSION, default_db_path, open_store, schema_version
from .verify import AuditCheck, verify_audit

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
    "canonical_json",
    "Kept",
    "software_versions",
    "analysis_content",
    "begin_run",
    "keep_result",
    "finish_run",
    "amend_result",
    "amended_record",
    "StoredResult",
    "StoredRun",
    "sample_versions",
    "current_results",
    "run_results",
    "stored_run",
    "AuditEntry",
    "AuditCheck",
    "audit_entries",
    "current_user",
    "verify_audit",
]
