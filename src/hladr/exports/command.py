"""``hladr export``: read a run, build one format, write one file (atomically, never over another silently).

The run comes from an output folder of ``hladr run`` (its results.json and
calibration.json, which must carry the same run id: a reader that straddled the
switch-in of a new set is told to read again) or from the results store: a run by
its id, or the results kept since a day (:mod:`hladr.exports.stored`). The mapping
file is read and checked before the run, the output path before both, and the file
is written only once the document is complete and has passed its format's own check
(ODM schema, FHIR models): an export either writes a whole, valid file or nothing.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Callable
from pathlib import Path

from .._atomic import write_atomic
from ..batch.output_set import MARKER, OUTPUT_NAMES, check_output_file
from ..errors import ConfigError
from .csv_file import to_csv
from .fhir_bundle import to_fhir
from .mapping import MAPPED_FORMATS, OdmMapping, RedcapMapping, load_mapping
from .odm import to_odm
from .records import RunRecord
from .redcap import to_redcap
from .stored import read_stored_run, read_stored_since

__all__ = ["FORMATS", "read_run_folder", "build_export", "export_run"]

FORMATS = ("csv", "redcap", "odm", "fhir")
MAX_RESULTS_BYTES = 1 << 30  # results.json of a very large run is tens of MB; past 1 GiB it is not one
_SAMPLE_KEYS = ("sample_id", "subject_id", "visit", "file", "qc", "phenotype")


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: not found; RUN must be an output folder of 'hladr run' (it holds {what})")
    if path.stat().st_size > MAX_RESULTS_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_RESULTS_BYTES >> 20} MiB: not an hladr output")

    def no_constant(name: str) -> object:
        raise ValueError(f"{name} is not JSON")

    try:
        doc = json.loads(path.read_bytes().decode("utf-8"), parse_constant=no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: not the JSON hladr writes ({exc})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: not the JSON hladr writes (an object at the top)")
    return doc


def _text(doc: dict, key: str, path: Path) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path}: no {key}: not written by this hladr, or damaged")
    return value


def read_run_folder(folder: str | os.PathLike) -> tuple[RunRecord, list[dict]]:
    """The run record and its sample records from an output folder of ``hladr run``."""
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"{folder}: not a folder; RUN must be an output folder of 'hladr run'")
    results_path, cal_path = root / "results.json", root / "calibration.json"
    doc = _read_json(results_path, "results.json and calibration.json")
    cal = _read_json(cal_path, "results.json and calibration.json")
    run_id = _text(doc, "run_id", results_path)
    if cal.get("run_id") != run_id:
        raise ConfigError(f"{folder}: results.json (run {run_id}) and calibration.json (run {cal.get('run_id')}) "
                          "belong to different runs (a new run was switched in while reading?): export again")
    embedded = doc.get("calibration")
    if isinstance(embedded, dict) and embedded.get("id") != cal.get("id"):
        raise ConfigError(f"{folder}: results.json names calibration {embedded.get('id')}, calibration.json "
                          f"holds {cal.get('id')}")
    samples = doc.get("samples")
    if not isinstance(samples, list) or not all(isinstance(s, dict) for s in samples):
        raise ConfigError(f"{results_path}: 'samples' is not a list of sample records")
    if not samples:
        raise ConfigError(f"{results_path}: the run holds no sample to export")
    for i, s in enumerate(samples):
        missing = [k for k in _SAMPLE_KEYS if k not in s]
        if missing:
            raise ConfigError(f"{results_path}: sample {i + 1} lacks {', '.join(missing)}")
    run = RunRecord(
        run_id=run_id,
        hladr_version=_text(doc, "hladr_version", results_path),
        started_utc=str(doc.get("started_utc") or ""),
        finished_utc=str(doc.get("finished_utc") or ""),
        calibration=cal,
        source=str(folder),
    )
    return run, samples


def build_export(fmt: str, samples: list[dict], run: RunRecord, *, mapping: RedcapMapping | OdmMapping | None,
                 created: _dt.datetime) -> bytes:
    """The bytes of the export file in format ``fmt`` (pure: nothing is read or written)."""
    builders: dict[str, Callable[[], str | bytes]] = {
        "csv": lambda: to_csv(samples, run),
        "redcap": lambda: to_redcap(samples, run, mapping),  # type: ignore[arg-type]
        "odm": lambda: to_odm(samples, run, mapping, created=created),  # type: ignore[arg-type]
        "fhir": lambda: to_fhir(samples, run, created=created),
    }
    data = builders[fmt]()
    return data.encode("utf-8") if isinstance(data, str) else data


def _check_out(out: str | os.PathLike, run_dir: str | os.PathLike | None, force: bool) -> Path:
    path = check_output_file(out)
    if (run_dir is not None and path.parent == Path(os.path.abspath(run_dir))
            and path.name in (*OUTPUT_NAMES, MARKER)):
        raise ConfigError(f"--out {out}: is one of the run's own output files; write the export beside them")
    if not force and (path.exists() or path.is_symlink()):
        raise ConfigError(f"--out {out}: exists; not replaced (add --force to replace it)")
    return path


def export_run(run_dir: str | os.PathLike | None, fmt: str, out: str | os.PathLike, *,
               mapping: str | os.PathLike | None = None, force: bool = False,
               now: _dt.datetime | None = None, db: str | os.PathLike | None = None,
               since: _dt.date | None = None) -> Path:
    """Export a run as ``fmt`` into ``out``; return the file's path.

    ``run_dir``: an output folder of ``hladr run``, or else the id of a run kept in the
    store ``db``; or, with ``run_dir`` None, every sample's current result kept in ``db``
    on or after ``since``.

    ``mapping``: the mapping file, required by ``redcap`` and ``odm`` and refused by
    the others. ``force``: replace an existing ``out`` (atomically); without it an
    existing file is never replaced, even one that appears while the export runs.
    ``now``: the export's time (ODM CreationDateTime, FHIR Bundle.timestamp).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r} (formats: {', '.join(FORMATS)})")
    if fmt in MAPPED_FORMATS and mapping is None:
        raise ConfigError(f"--format {fmt} needs --mapping FILE (see examples/mappings/{fmt}.toml)")
    if fmt not in MAPPED_FORMATS and mapping is not None:
        raise ConfigError(f"--format {fmt} takes no --mapping (only {' and '.join(MAPPED_FORMATS)} do)")
    if (run_dir is None) == (since is None):
        raise ConfigError("export RUN (an output folder of 'hladr run' or a run id in the store) or --since DATE")
    folder = run_dir is not None and Path(run_dir).is_dir()
    path = _check_out(out, run_dir if folder else None, force)
    loaded = load_mapping(mapping, fmt) if mapping is not None else None
    if folder:
        run, samples = read_run_folder(run_dir)  # type: ignore[arg-type]
    elif db is None:
        raise ConfigError(f"{run_dir}: not an output folder, and no results store to find it in (--db FILE)")
    elif since is not None:
        run, samples = read_stored_since(db, since)
    else:
        run, samples = read_stored_run(db, str(run_dir))
    created = now or _dt.datetime.now(_dt.UTC)
    data = build_export(fmt, samples, run, mapping=loaded, created=created)
    try:
        write_atomic(path, data, overwrite=force)
    except FileExistsError:
        raise ConfigError(f"--out {out}: appeared while the export ran; not replaced (add --force)") from None
    return path
