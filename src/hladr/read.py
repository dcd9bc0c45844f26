"""FCS file -> ``Events``: the only core module that opens files.

Every stage (run, calibrate, inspect, gate) reads through :func:`read_events`.
flowio (flowkit's reader) is tried first.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from .errors import ReadError
from .events import Events

__all__ = ["read_events", "sha256_file"]


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, hex; the identity of an input in every result."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_events(path: str | os.PathLike, *, dataset: int = 1) -> Events:
    """Read one dataset of an FCS file into ``Events``.

    Parameters
    ----------
    path : path-like
        The FCS (or Beckman LMD) file.
    dataset : int
        1-based index of the dataset to read.

    Returns
    -------
    Events
        float32 values with $PnE log decoding and $PnG gain applied.

    Raises
    ------
    ReadError
        The file is missing or cannot be decoded; the message is one line.
    """
    p = Path(path)
    if not p.is_file():
        raise ReadError(f"{p}: no such file")
    digest = sha256_file(p)
    import flowio

    try:
        fd = flowio.FlowData(str(p))
        raw = fd.as_array(preprocess=True)
    except Exception as exc:  # flowio raises many types; all mean "cannot decode"
        raise ReadError(f"{p.name}: not a readable FCS file ({type(exc).__name__}: {exc})") from None
    n_par = int(fd.channel_count)
    pnn, pns, pnr = [], [], []
    for k in range(1, n_par + 1):
        ch = fd.channels[k]
        pnn.append(str(ch["pnn"]).strip())
        pns.append(str(ch.get("pns", "") or "").strip())
        decades, log0 = ch["pne"]
        gain = ch["png"] or 1.0
        if decades > 0:
            pnr.append(float(10 ** decades * (log0 or 1.0)))
        else:
            pnr.append(float(ch["pnr"]) / gain)
    data = np.ascontiguousarray(raw, dtype=np.float32).reshape(-1, n_par)
    return Events(
        data=data,
        pnn=tuple(pnn),
        pns=tuple(pns),
        pnr=tuple(pnr),
        keywords={str(k).lower().lstrip("$"): str(v) for k, v in fd.text.items()},
        path=str(p),
        sha256=digest,
        dataset=dataset,
        n_datasets=1,
    )
