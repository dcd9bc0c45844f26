"""A template's static arrays kept in the template cache, and read back bit for bit.

A fresh process would spend ~70 ms of pure Python in ``static_arrays`` (mostly the band tables of
polygons), so what it returns is also kept, when the template was loaded with a cache folder
(``GateTemplate.cache_dir``), in that folder (``_cache.py``: ``<key>.static.npz``), for each gate
by a digest of the gate: per dimension a float64 row (code,
flags, mean, lim, rej, acc, params, ellipsoid row), then the band table (raw edges, info, zones;
classes in a uint8 array), packed into a few arrays that round-trip bit for bit. The file also
holds a digest of the code that computes the arrays (:func:`_code_digest`), so a cache written by
other code is ignored. :func:`statics` is what ``_compile.py`` asks.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import _cache, _static, _transform_params
from . import _kernels as K
from ._static import Static, static_arrays
from ._template import TemplateGate

__all__ = ["statics"]

_ROW = 9 + K.XF_PARAMS  # a dimension's row before its ellipsoid row
_TABLE = (((K.BANDS + 1,), (3,), (K.BANDS, 2 * K.MAX_ZONES)), (K.BANDS, 2 * K.MAX_ZONES + 1))
_TABLE_F = sum(math.prod(s) for s in _TABLE[0])
_TABLE_C = math.prod(_TABLE[1])


@functools.cache
def _code_digest() -> np.ndarray:
    """SHA-256 of the code that computes the static arrays: a cache written by other code is ignored.

    That code is ``_static.py``, this module (the packing), ``_transform_params.py`` and ``_kernels.py``
    (``gml_transform``, the parameter slots, ``BANDS``, ``MAX_ZONES``, the ``CELL_*`` classes, ``_polygon_ref``).
    """
    h = hashlib.sha256()
    try:
        for f in (_static.__file__, __file__, _transform_params.__file__, K.__file__):
            h.update(Path(f).read_bytes())
    except (OSError, TypeError):
        h.update(b"unknown")
    return np.frombuffer(h.digest(), dtype=np.uint8)


def _gate_key(g: TemplateGate) -> str:
    """Digest of everything a gate holds (its repr is exact: floats print round-trip)."""
    return hashlib.sha256(repr(g).encode()).hexdigest()[:32]


def _pack(statics: dict[str, Static]) -> dict[str, np.ndarray]:
    """``static_arrays`` results by gate key as the arrays of a ``.static.npz`` (see ``_unpack``)."""
    meta, floats, classes = [], [], []
    for st, table in statics.values():
        rows = [[code, flags, mean, *lim, *rej, *acc, *p, *icov] for code, p, lim, flags, rej, acc, mean, icov in st]
        d = np.array(rows, dtype=np.float64).reshape(len(rows), -1) if rows else np.zeros((0, _ROW))
        meta.append((d.shape[0], d.shape[1], table is not None))
        floats += [d.ravel()] + ([np.ravel(a) for a in table[:3]] if table is not None else [])
        classes += [np.ravel(table[3])] if table is not None else []
    return {"code": _code_digest(), "keys": np.array(list(statics), dtype="<U32"),
            "meta": np.array(meta, dtype=np.int64).reshape(-1, 3),
            "f": np.concatenate(floats + [np.zeros(0)]).astype(np.float64),
            "c": np.concatenate(classes + [np.zeros(0, dtype=np.uint8)]).astype(np.uint8)}


def _unpack(arrays: dict[str, np.ndarray]) -> dict[str, Static]:
    """``static_arrays`` results by gate key from ``_pack``'s arrays; {} when they do not fit together."""
    keys, meta, f, c = (arrays.get(k) for k in ("keys", "meta", "f", "c"))
    if not (np.array_equal(arrays.get("code"), _code_digest()) and keys is not None and keys.ndim == 1
            and meta is not None and meta.shape == (len(keys), 3) and meta.dtype == np.int64
            and f is not None and f.dtype == np.float64 and c is not None and c.dtype == np.uint8):
        return {}
    n_f = int((meta[:, 0] * meta[:, 1]).sum() + _TABLE_F * meta[:, 2].sum())
    if (n_f != f.shape[0] or _TABLE_C * int(meta[:, 2].sum()) != c.shape[0] or np.any(meta[:, :2] < 0)
            or not np.all((meta[:, 2] == 0) | (meta[:, 2] == 1))):
        return {}
    out: dict[str, Static] = {}
    i = j = 0
    for key, (n, width, has_table) in zip(keys.tolist(), meta.tolist(), strict=True):
        if width not in (_ROW, _ROW + n):
            return {}
        d = f[i:i + n * width].reshape(n, width)
        i += n * width
        params = d[:, 9:_ROW].copy()
        params.flags.writeable = False
        st = []
        for r, p in zip(d.tolist(), params, strict=True):
            code, flags, mean, lim0, lim1, rej0, rej1, acc0, acc1 = r[:9]
            st.append((int(code), p, (lim0, lim1), int(flags), (rej0, rej1), (acc0, acc1), mean, tuple(r[_ROW:])))
        table = None
        if has_table:
            parts = []
            for shape in _TABLE[0]:
                parts.append(f[i:i + math.prod(shape)].reshape(shape))
                i += math.prod(shape)
            table = (*parts, c[j:j + _TABLE_C].reshape(_TABLE[1]))
            j += _TABLE_C
        out[key] = (st, table)
    return out


@functools.lru_cache(maxsize=64)
def _stored_statics(folder: str | None, sha: str) -> dict[str, Static]:
    """``static_arrays`` results by gate key cached in ``folder`` for template ``sha`` ({} when none, or no
    folder); updated in place, so it also keeps this process's results when nothing is kept on disk."""
    arrays = _cache.read_arrays(Path(folder), sha, "static") if folder is not None else None
    try:
        return _unpack(arrays) if arrays is not None else {}
    except (ValueError, TypeError, IndexError):  # arrays that do not fit together: recompute
        return {}


def statics(folder: str | None, sha: str, gates: Sequence[TemplateGate]) -> dict[TemplateGate, Static]:
    """``static_arrays`` of each gate, read from the cache folder when there; computed (and cached) otherwise.

    ``folder`` is the template's cache folder (None: nothing read from or written to disk).
    """
    stored = _stored_statics(folder, sha) if sha else {}
    out, new = {}, False
    for g in gates:
        key = _gate_key(g)
        hit = stored.get(key)
        if hit is None or len(hit[0]) != len(g.dimensions):
            hit = stored[key] = static_arrays(g)
            new = True
        out[g] = hit
    if new and sha and folder is not None:
        _cache.write_arrays(Path(folder), sha, "static", _pack(dict(stored)))
    return out

