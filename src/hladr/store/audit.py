"""The audit trail: who did what to which result, when and why, each entry chained to the one before.

``audit_log`` is append-only (triggers refuse UPDATE and DELETE). Every entry holds who (the
OS user or ``--user``), when (UTC), the action, the sample, run and result it concerns, what
was there before and what is there now (``old_json`` -> ``new_json``), why (``reason``), and
``prev_sha256``, the previous entry's ``entry_sha256``. ``entry_sha256`` is the SHA-256 of
the entry's fields with ``prev_sha256`` (:func:`entry_digest`), so changing, removing or
reordering an entry breaks the chain from there on, even for someone who bypassed the
triggers. :func:`append_entry` adds one inside the caller's transaction (the entry commits
with the change it records, or neither does); :func:`audit_entries` reads them back;
:func:`hladr.store.verify.verify_audit` walks the chain.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from ._json import canonical_json
from .schema import read_store

__all__ = ["GENESIS", "FIELDS", "AuditEntry", "current_user", "entry_digest", "append_entry", "entry_of",
           "audit_entries"]

GENESIS = "0" * 64  # prev_sha256 of the first entry
FIELDS = ("seq", "utc", "user", "action", "sample_id", "run_id", "result_id", "old_json", "new_json", "reason",
           "prev_sha256")


def current_user() -> str:
    """The OS user running hladr (``uid:N`` where the system names none), for the audit trail."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no $USER and no passwd entry (some containers)
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


@dataclass(frozen=True)
class AuditEntry:
    """One entry of the audit trail, as stored (``old``/``new`` parsed from their JSON)."""

    seq: int
    utc: str
    user: str
    action: str
    sample_id: str | None
    run_id: str | None
    result_id: str | None
    old: object
    new: object
    reason: str | None
    prev_sha256: str
    entry_sha256: str


def entry_digest(fields: Mapping[str, object]) -> str:
    """``entry_sha256`` of an entry: SHA-256 of the canonical JSON of its fields, ``prev_sha256`` included."""
    return hashlib.sha256(canonical_json([fields.get(k) for k in FIELDS]).encode("utf-8")).hexdigest()


def append_entry(con: sqlite3.Connection, *, utc: str, user: str, action: str, sample_id: str | None = None,
                 run_id: str | None = None, result_id: str | None = None, old: object = None, new: object = None,
                 reason: str | None = None) -> str:
    """Add one entry at the end of the chain, inside the caller's ``BEGIN IMMEDIATE`` transaction; its hash."""
    last = con.execute("SELECT seq, entry_sha256 FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    fields = {
        "seq": (last[0] + 1) if last else 1, "utc": utc, "user": user, "action": action, "sample_id": sample_id,
        "run_id": run_id, "result_id": result_id,
        "old_json": None if old is None else canonical_json(old),
        "new_json": None if new is None else canonical_json(new),
        "reason": reason, "prev_sha256": last[1] if last else GENESIS,
    }
    digest = entry_digest(fields)
    con.execute(f"INSERT INTO audit_log ({', '.join(FIELDS)}, entry_sha256) VALUES ({', '.join('?' * 12)})",
                [*(fields[k] for k in FIELDS), digest])
    return digest


def entry_of(row: sqlite3.Row | tuple) -> AuditEntry:
    seq, utc, user, action, sample_id, run_id, result_id, old, new, reason, prev, digest = row
    return AuditEntry(seq, utc, user, action, sample_id, run_id, result_id, _loads(old), _loads(new), reason, prev,
                      digest)


def _loads(text: str | None) -> object:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text  # a damaged entry is shown as it is; verify_audit names it


def audit_entries(db: str | os.PathLike | None, *, sample_id: str | None = None) -> list[AuditEntry]:
    """The audit trail in order, or the entries about one sample id."""
    sql = f"SELECT {', '.join(FIELDS)}, entry_sha256 FROM audit_log"
    params: tuple = ()
    if sample_id is not None:
        sql, params = sql + " WHERE sample_id = ?", (sample_id,)
    return read_store(db, "read the audit trail", lambda con: [entry_of(r) for r in con.execute(sql + " ORDER BY seq",
                                                                                          params)])
