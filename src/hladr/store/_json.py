"""JSON of the store's records: what ``json.dumps`` cannot write by itself, and the one text that is hashed."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from ..safe_text import dumps_strict

__all__ = ["json_default", "canonical_json"]


def json_default(o: object) -> object:
    """``json.dumps(default=...)`` for numpy values, dates and paths in records."""
    if hasattr(o, "item"):  # numpy scalars
        return o.item()  # type: ignore[union-attr]
    if hasattr(o, "tolist"):  # numpy arrays
        return o.tolist()  # type: ignore[union-attr]
    if isinstance(o, _dt.date | _dt.datetime):
        return o.isoformat()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def canonical_json(obj: object) -> str:
    """The one JSON text of a record that is hashed: sorted keys, no spaces, UTF-8 as is, strict
    (a number that is not finite is ``null``), so the same record always gives the same SHA-256."""
    return dumps_strict(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=json_default)
