"""Per-event truth files of simulated tubes (``truth_events/<file stem>.npz``).

Each file holds ``labels`` and ``subsets`` as uint8 codes into ``label_table`` and
``subset_table`` (saved alongside), in the FCS file's event order. The zip members
carry fixed timestamps, so the same simulation gives the same bytes.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

from .blood_profiles import SUBSETS

__all__ = ["write_truth_events", "read_truth_events"]


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(a), allow_pickle=False)
    return buf.getvalue()


def write_truth_events(
    path: str | os.PathLike,
    labels: np.ndarray,
    subsets: np.ndarray | None,
    label_table: tuple[str, ...],
    subset_table: tuple[str, ...] = SUBSETS,
) -> Path:
    """Per-event truth as a small .npz: uint8 label codes (+ subset codes) and their tables.

    Written with fixed zip timestamps, so the same seed gives the same bytes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    subsets = subsets if subsets is not None else np.full(len(labels), "")
    sub_table = subset_table
    arrays = {
        "labels": _codes(labels, label_table),
        "label_table": np.array(label_table),
        "subsets": _codes(subsets, sub_table),
        "subset_table": np.array(sub_table),
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, a in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, _npy_bytes(a))
    return path


def _codes(values: np.ndarray, table: tuple[str, ...]) -> np.ndarray:
    lookup = {name: i for i, name in enumerate(table)}
    names, inverse = np.unique(values, return_inverse=True)
    missing = [str(v) for v in names if str(v) not in lookup]
    if missing:
        raise ValueError(f"labels not in the code table: {missing}")
    return np.array([lookup[str(v)] for v in names], dtype=np.uint8)[inverse.ravel()]


def read_truth_events(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Per-event truth written by :func:`simulate_run` (``truth_events/<stem>.npz``).

    Returns ``labels`` and ``subsets`` (str arrays in the file's event order) and
    the raw ``label_codes``, ``label_table``, ``subset_codes``, ``subset_table``.
    """
    with np.load(path, allow_pickle=False) as z:
        codes, table = z["labels"], z["label_table"]
        sub_codes, sub_table = z["subsets"], z["subset_table"]
    return {
        "labels": table[codes], "subsets": sub_table[sub_codes], "label_codes": codes,
        "label_table": table, "subset_codes": sub_codes, "subset_table": sub_table,
    }
