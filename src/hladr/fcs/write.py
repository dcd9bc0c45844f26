"""Write FCS 3.1 files (list mode) with any $DATATYPE, width and byte order.

Used by the simulator and by the reader's round-trip tests. flowio's
``create_fcs`` writes only little-endian float32, so it cannot produce the integer
and big-endian variants real instruments write; this writer can.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["write_fcs"]

_DELIM = "/"


def _escape(value: str) -> str:
    return str(value).replace(_DELIM, _DELIM * 2)


def _text_segment(keywords: Mapping[str, str]) -> bytes:
    parts = [_DELIM]
    for key, value in keywords.items():
        value = str(value)
        if value == "":
            value = " "  # empty values are not allowed by FCS 3.1
        parts.append(f"{_escape(key)}{_DELIM}{_escape(value)}{_DELIM}")
    return "".join(parts).encode("utf-8")


def write_fcs(
    path: str | os.PathLike,
    data: np.ndarray,
    pnn: Sequence[str],
    *,
    pns: Sequence[str] | None = None,
    pnr: Sequence[float] | None = None,
    datatype: str = "F",
    bits: int | Sequence[int] = 32,
    byteorder: str = "little",
    keywords: Mapping[str, str] | None = None,
) -> None:
    """Write an (N, D) event array as an FCS 3.1 file.

    Parameters
    ----------
    path : path-like
        Output file (overwritten).
    data : (N, D) ndarray
        Values in channel units; integers are rounded and clipped to $PnR - 1.
    pnn, pns : sequence of str
        Channel names ($PnN) and markers ($PnS, optional).
    pnr : sequence of float
        $PnR per channel (default 262144).
    datatype : {"F", "D", "I"}
        $DATATYPE.
    bits : int or sequence of int
        $PnB per channel (8, 16, 32 or 64 for integers; widths must be multiples of 8).
    byteorder : {"little", "big"}
        $BYTEORD 1,2,3,4 or 4,3,2,1.
    keywords : mapping
        Extra TEXT keywords (``$CYT``, ``$SPILLOVER``, ...), written as given.
    """
    data = np.asarray(data)
    n, d = data.shape
    if len(pnn) != d:
        raise ValueError(f"{d} columns but {len(pnn)} channel names")
    widths = [int(bits)] * d if np.isscalar(bits) else [int(b) for b in bits]
    ranges = [262144.0] * d if pnr is None else [float(r) for r in pnr]
    endian = "<" if byteorder == "little" else ">"
    if datatype == "F":
        widths = [32] * d
        rec = np.ascontiguousarray(data, dtype=endian + "f4")
        body = rec.tobytes()
    elif datatype == "D":
        widths = [64] * d
        body = np.ascontiguousarray(data, dtype=endian + "f8").tobytes()
    elif datatype == "I":
        fields = []
        for j, w in enumerate(widths):
            if w not in (8, 16, 32, 64):
                raise ValueError(f"unsupported integer width {w}")
            fields.append((f"c{j}", f"{endian}u{w // 8}"))
        rec = np.zeros(n, dtype=np.dtype(fields))
        for j, w in enumerate(widths):
            top = min(ranges[j], 2.0**w) - 1
            rec[f"c{j}"] = np.clip(np.rint(data[:, j]), 0, top).astype(np.uint64)
        body = rec.tobytes()
    else:
        raise ValueError(f"datatype must be F, D or I, not {datatype!r}")

    kw: dict[str, str] = {
        "$BEGINANALYSIS": "0",
        "$ENDANALYSIS": "0",
        "$BEGINSTEXT": "0",
        "$ENDSTEXT": "0",
        "$BEGINDATA": "0" * 20,
        "$ENDDATA": "0" * 20,
        "$BYTEORD": "1,2,3,4" if byteorder == "little" else "4,3,2,1",
        "$DATATYPE": datatype,
        "$MODE": "L",
        "$NEXTDATA": "0",
        "$PAR": str(d),
        "$TOT": str(n),
    }
    for j in range(d):
        k = j + 1
        kw[f"$P{k}N"] = pnn[j]
        if pns is not None and pns[j]:
            kw[f"$P{k}S"] = pns[j]
        kw[f"$P{k}B"] = str(widths[j])
        kw[f"$P{k}E"] = "0,0"
        kw[f"$P{k}R"] = str(int(ranges[j]))
    for key, value in (keywords or {}).items():
        kw[key] = str(value)

    text_start = 58
    # Two passes: offsets are written with fixed width, so the length is stable.
    text = _text_segment(kw)
    data_start = text_start + len(text)
    data_end = data_start + len(body) - 1
    kw["$BEGINDATA"] = str(data_start).zfill(20)
    kw["$ENDDATA"] = str(data_end).zfill(20)
    text = _text_segment(kw)
    assert text_start + len(text) == data_start
    text_end = data_start - 1

    def _off(v: int) -> str:
        return f"{v:>8d}" if v <= 99_999_999 else f"{0:>8d}"

    header = (
        "FCS3.1    "
        + _off(text_start)
        + _off(text_end)
        + _off(data_start)
        + _off(data_end)
        + _off(0)
        + _off(0)
    ).encode("ascii")
    assert len(header) == 58
    with open(path, "wb") as fh:
        fh.write(header)
        fh.write(text)
        fh.write(body)
