"""Waiting for a results store that another process holds locked: bounded, said once, then one clear error.

SQLite lets one writer at a time. A store held by another writer (a long
``hladr run`` of another instrument, a backup, a database browser left in a
transaction) made hladr fail after 30 s with ``sqlite3.OperationalError:
database is locked`` and a traceback. Now :func:`patiently` retries the whole
operation (each is one transaction, so a retry repeats nothing half-done), logs
"waiting for the results store FILE, locked by another process" once, and after
``$HLADR_STORE_WAIT`` seconds in all (default 60) raises :class:`StoreBusyError`.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..errors import ConfigError, StoreBusyError, StoreError

__all__ = ["WAIT_ENV", "DEFAULT_WAIT_S", "store_wait_s", "is_locked", "patiently"]

log = logging.getLogger("hladr.store")

T = TypeVar("T")
WAIT_ENV = "HLADR_STORE_WAIT"
DEFAULT_WAIT_S = 60.0
_FIRST_TRY_S, _LATER_TRY_S = 0.5, 2.0  # SQLite's own busy wait within one attempt


def store_wait_s() -> float:
    """Seconds to wait in all for a locked store: ``$HLADR_STORE_WAIT``, else 60."""
    text = os.environ.get(WAIT_ENV, "").strip()
    if not text:
        return DEFAULT_WAIT_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"${WAIT_ENV}={text!r}: give the seconds to wait for a locked results store, e.g. 60")
    return value


def is_locked(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's "database is locked" / "busy" (another connection holds the lock)."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def patiently(path: Path, op: Callable[[float], T], *, doing: str) -> T:
    """``op(timeout_s)`` until it does not find the store locked, for at most :func:`store_wait_s` in all.

    ``op`` opens its own connection with SQLite's busy timeout ``timeout_s`` and
    runs one transaction. ``doing`` completes "could not ..." in the messages.

    Raises
    ------
    StoreBusyError
        Still locked after the wait.
    StoreError
        Any other SQLite operational error (disk I/O, read-only file, ...).
    """
    wait = store_wait_s()
    deadline = time.monotonic() + wait
    attempt_s, told = _FIRST_TRY_S, False
    while True:
        try:
            return op(max(0.01, min(attempt_s, deadline - time.monotonic())))
        except sqlite3.OperationalError as exc:
            if not is_locked(exc):
                raise StoreError(f"{path}: could not {doing} ({exc})") from None
            if time.monotonic() >= deadline:
                raise StoreBusyError(
                    f"{path}: the results store is locked by another process (waited {wait:g} s), could not "
                    f"{doing}; try again when that process is done, or set ${WAIT_ENV} to wait longer (seconds)"
                ) from None
            if not told:
                log.warning("waiting for the results store %s, locked by another process (up to %g s)", path, wait)
                told = True
            attempt_s = _LATER_TRY_S
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
