"""Sample results in the store: a run's results kept in versions, each with its provenance, never overwritten.

A result is kept as ``content_json``, the canonical JSON (:func:`hladr.store._json.canonical_json`)
of its **content**: the sample's record (the fields of ``results.json``), the tube's
acquisition settings (instrument, serial, $DATE, voltages and gains), a reference to the
calibration (id, lot, bead files' SHA-256), the versions of hladr and the libraries it ran
with, and, for an amendment, the version it amends and what it changed. The gate definition
is in the record (``gate``: the automated gate's fitted parameters, or the template's
SHA-256), as are the rule set (``id@version``) and the configuration's SHA-256.
``result_id`` is the SHA-256 of ``content_json``: the same inputs and settings give the same
result id, so re-running a run stores nothing twice.

Every write is one ``BEGIN IMMEDIATE`` transaction that adds the rows and their audit entry
together (:func:`begin_run`, :func:`keep_result`, :func:`finish_run`): a run stopped at any
moment leaves each result it kept whole and no part of the one it was keeping. A sample
(its ``sample_id``) has versions 1, 2, ...; its current result is the highest version. A
result that differs from the sample's current one is a new version only with a reason
(``hladr run --reason``); another tube with the same sample id in the same run (flagged
``duplicate_sample_id``) becomes the next version with that said as its reason.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from .. import __version__
from ..results import SampleResult
from ._json import canonical_json
from .audit import append_entry
from .schema import utc_now, write_store

__all__ = ["KEPT_OUT", "LIBRARIES", "Kept", "software_versions", "analysis_content", "content_columns",
           "summary_of", "begin_run", "keep_result", "finish_run", "current_version", "insert_version"]

# fields of a SampleResult that are not part of the kept record: figure data (the report's),
# stage timings (differ from run to run) and the acquisition settings (kept as the content's "tube")
KEPT_OUT = ("figure", "timings_ms", "acquisition")
# the libraries whose versions are kept with every result (each may change a number)
LIBRARIES = ("numpy", "scipy", "scikit-learn", "numba", "flowio", "flowkit")


def software_versions() -> dict[str, str | None]:
    """hladr, Python and :data:`LIBRARIES` as installed (``None`` for one that is not)."""
    out: dict[str, str | None] = {"hladr": __version__, "python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _calibration_ref(calibration: Mapping | None) -> dict | None:
    """What a result keeps of its run's calibration record: id, acceptance, lot and bead files (SHA-256)."""
    if not calibration:
        return None
    lot = calibration.get("lot")
    return {"id": calibration.get("id"), "accepted": calibration.get("accepted"),
            "lot": lot.get("id") if isinstance(lot, Mapping) else None, "bead_files": calibration.get("inputs")}


def analysis_content(result: SampleResult, *, calibration: Mapping | None, software: Mapping) -> dict:
    """The content of a result of ``hladr run`` (see the module docstring): plain JSON values only."""
    record = {k: v for k, v in result.to_dict().items() if k not in KEPT_OUT}
    content = {"kind": "analysis", "sample": record, "tube": result.acquisition or None,
               "calibration": _calibration_ref(calibration), "software": dict(software), "based_on": None}
    return _plain(content)


def _plain(obj: object) -> dict:
    """``obj`` as the JSON values it is kept as (numpy numbers as Python numbers, tuples as lists)."""
    return json.loads(canonical_json(obj))


def content_columns(content: Mapping) -> dict:
    """The columns of a ``results`` row that repeat its content (for queries; :mod:`.verify` checks them)."""
    s = content["sample"]
    return {
        "subject_id": s.get("subject_id") or "", "visit": s.get("visit") or "", "file": s.get("file") or "",
        "sha256": s.get("sha256"), "qc": s["qc"], "phenotype": s["phenotype"],
        "monocyte_count": s.get("monocyte_count"), "hladr_abc": s.get("hladr_abc"),
        "ferritin_ng_ml": s.get("ferritin_ng_ml"), "ferritin_text": s.get("ferritin_text") or "",
        "ferritin_unit": s.get("ferritin_unit") or "", "calibration_id": s.get("calibration_id"),
        "ruleset": s.get("ruleset") or "",
        "gate_sha256": hashlib.sha256(canonical_json(s.get("gate") or {}).encode()).hexdigest(),
        "config_sha256": s.get("config_sha256") or "", "software_version": s.get("software_version") or "",
    }


def summary_of(result_id: str, version: int, content: Mapping) -> dict:
    """What the audit trail says of a version: its id and the values a reader of the result sees."""
    s = content["sample"]
    return {"result_id": result_id, "version": version, "file": s.get("file"), "sha256": s.get("sha256"),
            "qc": s["qc"], "phenotype": s["phenotype"], "hladr_abc": s.get("hladr_abc"),
            "ferritin_text": s.get("ferritin_text") or "", "ferritin_unit": s.get("ferritin_unit") or "",
            "ferritin_ng_ml": s.get("ferritin_ng_ml"), "calibration_id": s.get("calibration_id"),
            "ruleset": s.get("ruleset")}


@dataclass(frozen=True)
class Kept:
    """What :func:`keep_result` did with one result: stored as ``version`` (``new``), found already
    stored (``new=False``), or not kept (``refused`` says why: a new version needs a reason)."""

    sample_id: str
    result_id: str
    version: int | None
    new: bool
    refused: str | None = None


# --------------------------------------------------------------------------- runs


def begin_run(db: str | os.PathLike, *, run_id: str, started_utc: str, run_dir: str, user: str,
              reason: str | None, config: Mapping, calibration: Mapping, software: Mapping) -> int:
    """Record that run ``run_id`` started (its row and a ``run_started`` entry); its row id.

    ``calibration`` is the run's calibration record (calibration.json without the run id;
    that of a failed bead tube too); it is linked to the stored calibration of the same id.
    """
    def fn(con: sqlite3.Connection) -> int:
        cal_id = calibration.get("id")
        cal_row = con.execute("SELECT id FROM calibrations WHERE calibration_id = ?", (cal_id,)).fetchone()
        cur = con.execute(
            "INSERT INTO runs (run_id, started_utc, run_dir, user, reason, hladr_version, software_json, config_json, "
            "calibration_row, calibration_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, started_utc, run_dir, user, reason, __version__, canonical_json(software), canonical_json(config),
             cal_row[0] if cal_row else None, canonical_json(calibration)))
        append_entry(con, utc=utc_now(), user=user, action="run_started", run_id=run_id, reason=reason,
                     new={"run_dir": run_dir, "started_utc": started_utc, "calibration_id": cal_id,
                          "config": config, "software": software})
        return int(cur.lastrowid)  # type: ignore[arg-type]

    return write_store(db, "record the run in the results store", fn)


def finish_run(db: str | os.PathLike, *, run_row: int, run_id: str, user: str, kept: list[Kept]) -> None:
    """Record that the run ended: its row completed once, and a ``run_finished`` entry with the counts."""
    def fn(con: sqlite3.Connection) -> None:
        now = utc_now()
        con.execute("UPDATE runs SET finished_utc = ?, n_results = ? WHERE id = ?", (now, len(kept), run_row))
        append_entry(con, utc=now, user=user, action="run_finished", run_id=run_id, new={
            "results": len(kept), "new": sum(k.new for k in kept),
            "already_stored": sum(not k.new and k.refused is None for k in kept),
            "not_kept": sum(k.refused is not None for k in kept)})

    write_store(db, "record the end of the run in the results store", fn)


# --------------------------------------------------------------------------- results


def keep_result(db: str | os.PathLike, *, run_row: int, run_id: str, position: int, content: Mapping, user: str,
                reason: str | None) -> Kept:
    """Keep one result of run ``run_id`` (``position``: its place in the run), in one transaction.

    The same content already stored (the same ``result_id``) is linked to the run, not
    stored again. Otherwise it becomes version 1 of a new sample, or the next version of
    the sample's result: with ``reason``, or, when the current version is another tube of
    the same run, with that as the reason; without either it is not kept (``refused``).
    """
    text = canonical_json(content)
    result_id = hashlib.sha256(text.encode("utf-8")).hexdigest()
    sample_id = content["sample"]["sample_id"]

    def fn(con: sqlite3.Connection) -> Kept:
        row = con.execute("SELECT id, version FROM results WHERE result_id = ?", (result_id,)).fetchone()
        if row is not None:
            con.execute("INSERT INTO run_results (run_row, position, result_row, new) VALUES (?, ?, ?, 0)",
                        (run_row, position, row[0]))
            return Kept(sample_id, result_id, row[1], False)
        current = current_version(con, sample_id)
        why = None
        if current is not None:
            if current["run_row"] == run_row and current["kind"] == "analysis":
                why = (f"another tube with sample id {sample_id} in run {run_id} (flag duplicate_sample_id): "
                       "review which one holds")
            elif reason and reason.strip():
                why = reason.strip()
            else:
                return Kept(sample_id, result_id, None, False, refused=(
                    f"sample {sample_id} already has version {current['version']} from other inputs or settings "
                    f"(result {current['result_id'][:12]}); a new version needs a reason (--reason)"))
        new_row, version = insert_version(con, content=content, text=text, result_id=result_id, kind="analysis",
                                          run_row=run_row, based_on=None, user=user, reason=why, current=current,
                                          run_id=run_id)
        con.execute("INSERT INTO run_results (run_row, position, result_row, new) VALUES (?, ?, ?, 1)",
                    (run_row, position, new_row))
        return Kept(sample_id, result_id, version, True)

    return write_store(db, f"keep the result of sample {sample_id} in the results store", fn)


def current_version(con: sqlite3.Connection, sample_id: str) -> dict | None:
    """The sample's current (highest) version: row id, version, result id, kind, run row, content."""
    row = con.execute(
        "SELECT r.id, r.version, r.result_id, r.kind, r.run_row, r.content_json FROM results r "
        "JOIN samples s ON s.id = r.sample_row WHERE s.sample_id = ? ORDER BY r.version DESC LIMIT 1",
        (sample_id,)).fetchone()
    if row is None:
        return None
    return {"id": row[0], "version": row[1], "result_id": row[2], "kind": row[3], "run_row": row[4],
            "content": json.loads(row[5])}


def insert_version(con: sqlite3.Connection, *, content: Mapping, text: str, result_id: str, kind: str,
                   run_row: int | None, based_on: int | None, user: str, reason: str | None,
                   current: Mapping | None, run_id: str | None) -> tuple[int, int]:
    """Add the next version of the sample's result and its audit entry (inside the caller's transaction).

    Returns (row id, version). The sample and the tube rows are made the first time they are seen.
    """
    s = content["sample"]
    sample_id = s["sample_id"]
    now = utc_now()
    sample = con.execute("SELECT id FROM samples WHERE sample_id = ?", (sample_id,)).fetchone()
    sample_row = sample[0] if sample else con.execute(
        "INSERT INTO samples (sample_id, recorded_utc) VALUES (?, ?)", (sample_id, now)).lastrowid
    tube_row = _tube_row(con, s, content.get("tube"), now)
    cal = con.execute("SELECT id FROM calibrations WHERE calibration_id = ?", (s.get("calibration_id"),)).fetchone()
    version = (current["version"] + 1) if current else 1
    cols = content_columns(content)
    values = {"result_id": result_id, "sample_row": sample_row, "version": version, "kind": kind,
              "based_on": based_on, "run_row": run_row, "tube_row": tube_row,
              "calibration_row": cal[0] if cal else None, "recorded_utc": now, "user": user, "reason": reason,
              **cols, "content_json": text}
    cur = con.execute(f"INSERT INTO results ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                      list(values.values()))
    old = summary_of(current["result_id"], current["version"], current["content"]) if current else None
    append_entry(con, utc=now, user=user, action="result_amended" if kind == "amendment" else "result_stored",
                 sample_id=sample_id, run_id=run_id, result_id=result_id, old=old,
                 new=summary_of(result_id, version, content), reason=reason)
    return int(cur.lastrowid), version  # type: ignore[arg-type]


def _tube_row(con: sqlite3.Connection, sample: Mapping, tube: Mapping | None, now: str) -> int | None:
    """The ``tubes`` row of the file's SHA-256 (made the first time); ``None`` for a file never read."""
    sha = sample.get("sha256")
    if not sha:
        return None
    row = con.execute("SELECT id FROM tubes WHERE sha256 = ?", (sha,)).fetchone()
    if row is not None:
        return int(row[0])
    tube = tube or {}
    cur = con.execute(
        "INSERT INTO tubes (sha256, file, instrument, serial, acquired_date_text, voltages_json, acquisition_json, "
        "recorded_utc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (sha, sample.get("file") or "", tube.get("instrument"), tube.get("serial"), tube.get("date"),
         canonical_json(tube.get("voltages") or {}), canonical_json(tube), now))
    return int(cur.lastrowid)  # type: ignore[arg-type]
