"""``hladr audit verify``: the audit chain walked from its first entry, and every kept result held to it.

:func:`verify_audit` names the first thing that breaks, in this order: an audit entry
that was changed (its fields no longer give its hash), removed (the sequence has a gap,
or the next entry does not follow its predecessor's hash) or moved; then a stored result
whose content no longer gives its ``result_id``, whose columns disagree with its content,
or that has no audit entry saying who stored it, when and why (the removal of the last
entries of the chain, which the chain alone cannot show); then a run without its
``run_started`` entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass

from .audit import FIELDS, GENESIS, AuditEntry, entry_digest, entry_of
from .results import content_columns
from .schema import read_store

__all__ = ["AuditCheck", "verify_audit"]


@dataclass(frozen=True)
class AuditCheck:
    """What :func:`verify_audit` found: ``broken`` is ``None`` when the chain and the results agree."""

    entries: int
    results: int
    runs: int
    broken: str | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def _chain(rows: list[tuple]) -> tuple[str | None, dict[str, AuditEntry], set[str]]:
    """The first break of the chain (or None), the entries that stored each result, and the runs started."""
    prev, expected = GENESIS, 1
    stored: dict[str, AuditEntry] = {}
    started: set[str] = set()
    for row in rows:
        e = entry_of(row)
        if e.seq != expected:
            if e.seq > expected:
                return f"entry {expected} is missing: entry {e.seq} follows entry {expected - 1}", stored, started
            return f"entry {e.seq} is out of order (expected entry {expected})", stored, started
        if entry_digest(dict(zip(FIELDS, row[:len(FIELDS)], strict=True))) != e.entry_sha256:
            return (f"entry {e.seq} ({e.action} at {e.utc}) was changed after it was written: its fields do not "
                    "give its hash"), stored, started
        if e.prev_sha256 != prev:
            return (f"entry {e.seq} ({e.action} at {e.utc}) does not follow entry {e.seq - 1}: an entry before it "
                    "was changed or removed"), stored, started
        prev, expected = e.entry_sha256, e.seq + 1
        if e.result_id and e.action in ("result_stored", "result_amended"):
            stored[e.result_id] = e
        if e.action == "run_started" and e.run_id:
            started.add(e.run_id)
    return None, stored, started


def _result_problem(row: tuple, names: list[str], stored: dict[str, AuditEntry]) -> str | None:
    """What is wrong with one ``results`` row, or None."""
    r = dict(zip(names, row, strict=True))
    where = f"result {r['result_id'][:12]} (sample {r['sample_id']}, version {r['version']})"
    if hashlib.sha256(r["content_json"].encode("utf-8")).hexdigest() != r["result_id"]:
        return f"{where}: its content was changed after it was stored (it no longer gives its result id)"
    try:
        content = json.loads(r["content_json"])
        cols = content_columns(content)
    except (ValueError, KeyError, TypeError):
        return f"{where}: its content is not a result record"
    if content["sample"].get("sample_id") != r["sample_id"]:
        return f"{where}: stored under another sample than its content names"
    for name, value in cols.items():
        if r[name] != value:
            return f"{where}: column {name} ({r[name]!r}) differs from its content ({value!r})"
    e = stored.get(r["result_id"])
    if e is None:
        return f"{where}: no audit entry records it (entries were removed)"
    new = e.new if isinstance(e.new, dict) else {}
    if (e.user, e.utc, e.reason, e.sample_id, new.get("version")) != (
            r["user"], r["recorded_utc"], r["reason"], r["sample_id"], r["version"]):
        return f"{where}: who, when, why or the version differ from its audit entry {e.seq}"
    return None


def verify_audit(db: str | os.PathLike | None) -> AuditCheck:
    """Check the audit chain and every stored result and run against it; see the module docstring."""

    def check(con: sqlite3.Connection) -> AuditCheck:
        rows = con.execute(f"SELECT {', '.join(FIELDS)}, entry_sha256 FROM audit_log ORDER BY seq").fetchall()
        broken, stored, started = _chain(rows)
        n_results = con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        n_runs = con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        if broken is None:
            cur = con.execute(
                "SELECT r.*, s.sample_id FROM results r JOIN samples s ON s.id = r.sample_row ORDER BY r.id")
            names = [d[0] for d in cur.description]
            broken = next((p for p in (_result_problem(row, names, stored) for row in cur) if p), None)
        if broken is None:
            for (run_id,) in con.execute("SELECT run_id FROM runs ORDER BY id"):
                if run_id not in started:
                    broken = f"run {run_id} has no run_started entry in the audit trail (entries were removed)"
                    break
        return AuditCheck(len(rows), n_results, n_runs, broken)

    return read_store(db, "verify the audit trail", check)
