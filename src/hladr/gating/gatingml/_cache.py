"""On-disk cache of Gating-ML templates: its keys, and safe reads and writes in a folder the caller names.

A template is parsed with flowkit (whose import alone takes ~1.5 s) and compiled
into static arrays (~70 ms of pure Python) only the first time it is seen; both
results can be kept in a cache folder, in files named by the template's SHA-256,
the hladr version and ``_CACHE_FORMAT``: ``<key>.json`` (the parsed gates,
written and read by ``_parse``) and ``<key>.static.npz`` (the static arrays of
its gates, by ``_static_cache``). The folder is chosen by the shell (``hladr
run`` and ``hladr gate``: ``$HLADR_CACHE/templates`` or
``~/.cache/hladr/templates``, see ``cli.template_cache_dir``) and passed to
``load_template(path, cache_dir=...)``; the core never picks a place, and
without a folder nothing is kept on disk. Writes are atomic
(``_atomic.write_atomic``) and never fail a run; a missing or unreadable file
just means computing again.

This module only stores bytes and arrays, so both of its users can depend on it
without depending on each other.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np

from ... import __version__
from ..._atomic import write_atomic

__all__ = ["cache_key", "write_cache_file", "read_arrays", "write_arrays"]

log = logging.getLogger(__name__)
_CACHE_FORMAT = 2  # bump when the cached dataclasses (``_template``) change shape or what is refused changes


def cache_key(sha: str) -> str:
    """The name of template ``sha``'s cache files, less their suffix."""
    return f"{sha}-{__version__}-v{_CACHE_FORMAT}"


def write_cache_file(folder: Path, name: str, data: bytes) -> None:
    """Write ``data`` to ``folder / name`` atomically; a read-only cache never fails a run."""
    try:
        write_atomic(folder / name, data)
    except OSError as exc:  # a read-only home is no reason to fail a run
        log.info("template cache not written: %s", exc)


def read_arrays(folder: Path, sha: str, kind: str) -> dict[str, np.ndarray] | None:
    """Arrays cached in ``folder`` as ``<key>.<kind>.npz`` for template ``sha``; None when absent or unreadable."""
    try:
        with open(folder / f"{cache_key(sha)}.{kind}.npz", "rb") as f, np.load(f, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception:  # noqa: BLE001 - missing, truncated, corrupt (zipfile, format, pickle): recompute
        return None


def write_arrays(folder: Path, sha: str, kind: str, arrays: dict[str, np.ndarray]) -> None:
    """Cache ``arrays`` in ``folder`` as ``<key>.<kind>.npz`` for template ``sha`` (atomically; never fails a run)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_cache_file(folder, f"{cache_key(sha)}.{kind}.npz", buf.getvalue())
