"""DATA bytes -> the values as written, with NumPy: zero-copy views of words, unpacked bits, parsed ASCII.

Private to :mod:`hladr.fcs._decode`. Given the :class:`~hladr.fcs._layout.Layout`
that :func:`hladr.fcs._layout.resolve_layout` chose, :func:`raw_values` returns the
DATA values as the file stores them (floats as floats in the file's byte order,
integers as unsigned words, no masking, no conversion), as views into the file's
buffer wherever the layout allows; :func:`int_masks` says which bits of each integer
word carry the value; :func:`ascii_values` parses ASCII DATA. No Python loop runs per
event (``np.frombuffer`` with endian and structured dtypes, ``np.unpackbits`` for
packed words).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import ReadError
from ._layout import Layout
from ._parse import Buffer, Channel

__all__ = ["int_masks", "uint_columns", "int_columns", "ascii_values", "raw_values"]


def int_masks(layout: Layout, channels: Sequence[Channel]) -> list[int]:
    """Mask of the meaningful bits of each integer channel.

    FCS: only the bits needed for $PnR (rounded up to a power of two, as flowio
    does) and $PnB carry the value; instruments use the others for flags and
    addresses (Beckman System II D10-D15, the channel tags of LMD FCS 3.0 words).
    """
    masks = []
    for b, w, ch in zip(layout.bits, layout.word_bytes or layout.bits, channels, strict=True):
        limit = min(int(math.ceil(ch.pnr)), 2**64)
        top = 1 << max(0, (limit - 1).bit_length())  # next power of two >= $PnR
        wbits = 8 * w if layout.storage == "bytes" else b
        masks.append(min(top, 1 << b, 1 << wbits) - 1)
    return masks


def uint_columns(buf: Buffer, layout: Layout) -> np.ndarray | list[np.ndarray]:
    """Unsigned words as one (N, D) array (uniform width) or one array per channel."""
    n, start, e, wb = layout.n_events, layout.start, layout.endian, layout.word_bytes
    if layout.byte_perm is not None:
        # e.g. $BYTEORD 3,4,1,2: put every byte where a little-endian word wants it
        k = len(layout.byte_perm)
        raw = np.frombuffer(buf, np.uint8, count=layout.nbytes, offset=start).reshape(-1, k)
        fixed = np.empty_like(raw)
        fixed[:, [p - 1 for p in layout.byte_perm]] = raw
        buf, start, e = fixed.tobytes(), 0, "<"
    kinds = ["f" if layout.mixed_types and t in ("F", "D") else "u" for t in layout.channel_types]
    kinds = kinds or ["u"] * len(wb)
    if len(set(wb)) == 1 and wb[0] in (1, 2, 4, 8) and set(kinds) == {"u"}:
        dt = np.dtype(f"{e}u{wb[0]}")
        return np.frombuffer(buf, dt, count=n * layout.n_par, offset=start).reshape(n, layout.n_par)
    offsets = [sum(wb[:j]) for j in range(len(wb))]
    rowbytes = sum(wb)
    if all(w in (1, 2, 4, 8) for w in wb):  # mixed widths/types: one structured record per event
        dt = np.dtype(
            {
                "names": [f"c{j}" for j in range(len(wb))],
                "formats": [f"{e}{k}{w}" for k, w in zip(kinds, wb, strict=True)],
                "offsets": offsets,
                "itemsize": rowbytes,
            }
        )
        rec = np.frombuffer(buf, dt, count=n, offset=start)
        return [rec[f"c{j}"] for j in range(len(wb))]
    u8 = np.frombuffer(buf, np.uint8, count=n * rowbytes, offset=start).reshape(n, rowbytes)
    cols = []
    for off, w, k in zip(offsets, wb, kinds, strict=True):
        if w in (1, 2, 4, 8):
            cols.append(np.ascontiguousarray(u8[:, off : off + w]).view(f"{e}{k}{w}").ravel())
            continue
        wide = np.zeros((n, 8), np.uint8)  # 3/5/6/7-byte words (Cytek xP5: 24 bit) -> 8 bytes
        if e == "<":
            wide[:, :w] = u8[:, off : off + w]
        else:
            wide[:, 8 - w :] = u8[:, off : off + w]
        cols.append(wide.view(f"{e}u8").ravel())
    return cols


def _packed_columns(buf: Buffer, layout: Layout) -> list[np.ndarray]:
    """Bit-packed integers: one bit stream, most significant bit first when big-endian."""
    n, bits = layout.n_events, layout.bits
    per = sum(bits)
    order = "big" if layout.endian == ">" else "little"
    u8 = np.frombuffer(buf, np.uint8, count=layout.nbytes, offset=layout.start)
    stream = np.unpackbits(u8, bitorder=order, count=n * per).reshape(n, per)
    cols, off = [], 0
    for b in bits:
        weights = np.left_shift(np.uint64(1), np.arange(b, dtype=np.uint64))
        if order == "big":
            weights = weights[::-1]
        cols.append(stream[:, off : off + b].astype(np.uint64) @ weights)
        off += b
    return cols


def int_columns(buf: Buffer, layout: Layout) -> np.ndarray | list[np.ndarray]:
    return _packed_columns(buf, layout) if layout.storage == "packed" else uint_columns(buf, layout)


def ascii_values(buf: Buffer, layout: Layout, name: str) -> np.ndarray:
    if layout.storage == "ascii_delimited":
        seg = bytes(buf[layout.start : layout.start + layout.nbytes])
        tokens = seg.translate(bytes.maketrans(b",\t\r\n\x00", b"     ")).split()
        n_par, n = layout.n_par, layout.n_events
        if n < 0:
            n = len(tokens) // n_par
        if len(tokens) < n * n_par:
            raise ReadError(
                f"{name}: ASCII DATA holds {len(tokens)} values but $TOT={n} x $PAR={n_par} "
                f"need {n * n_par}"
            )
        try:
            values = np.array(tokens[: n * n_par], dtype=np.float64)
        except ValueError:
            raise ReadError(f"{name}: ASCII DATA contains a value that is not a number") from None
        return values.reshape(n, n_par)
    n, widths = layout.n_events, layout.bits
    rowbytes = sum(widths)
    u8 = np.frombuffer(buf, np.uint8, count=n * rowbytes, offset=layout.start).reshape(n, rowbytes)
    out = np.empty((n, len(widths)), np.float64)
    off = 0
    for j, w in enumerate(widths):
        field = np.ascontiguousarray(u8[:, off : off + w]).view(f"S{w}").ravel()
        try:
            out[:, j] = field.astype(np.float64)
        except ValueError:
            raise ReadError(
                f"{name}: fixed-width ASCII DATA of channel {j + 1} holds a value that is not "
                "a number"
            ) from None
        off += w
    return out


def raw_values(buf: Buffer, layout: Layout) -> np.ndarray | list[np.ndarray]:
    """DATA as written: an (N, D) view of uniform words, or one array per channel.

    Floats come as floats (file byte order), integers as unsigned words; no
    masking and no conversion yet. Views into ``buf`` wherever the layout allows.
    """
    if layout.datatype in ("F", "D") and not layout.mixed_types:
        size = layout.word_bytes[0]
        if layout.byte_perm is not None:
            return np.asarray(uint_columns(buf, layout)).view(f"<f{size}")
        dt = np.dtype(f"{layout.endian}f{size}")
        n, d = layout.n_events, layout.n_par
        return np.frombuffer(buf, dt, count=n * d, offset=layout.start).reshape(n, d)
    return int_columns(buf, layout)

