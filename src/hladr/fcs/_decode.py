"""DATA -> float arrays with NumPy.

Private to :mod:`hladr.fcs.read`. Given the :class:`~hladr.fcs._layout.Layout` that
:func:`hladr.fcs._layout.resolve_layout` chose from HEADER and TEXT,
:func:`decode_events` turns the DATA bytes into the final (N, D) float32 events
with $TIMESTEP, $PnE and $PnG applied as flowio does. (:func:`decode_data` gives
the (N, D) float64 raw channel values and :func:`scale_events` scales such an
array; both are kept for comparisons.) Every decoder is vectorised
(``np.frombuffer`` with endian/structured dtypes, ``np.unpackbits`` for packed
words): no Python loop runs per event. Quirk codes are listed in
:mod:`hladr.fcs._parse`.

Memory: ``buf`` is the whole file (a memoryview, see :mod:`hladr.fcs.read`) and the
binary decoders read it through zero-copy ``np.frombuffer`` views. For byte-aligned
data :func:`decode_events` allocates only the float32 result, or nothing but
small block temporaries when it writes the events over DATA in place (float32
and 32-bit integer DATA). A 1M x 8 float32 big-endian DATA segment decodes in
about 2 ms (in place: 0 extra bytes; otherwise the 32 MB result); the float64
route (decode, scale, cast) took 12 ms and allocated 64 + 32 MB.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .._parallel import map_slices, thread_count
from ..errors import ReadError
from ._layout import Layout
from ._parse import Buffer, Channel

__all__ = [
    "decodes_in_place",
    "decode_events",
    "decode_data",
    "high_bits_set",
    "Scaling",
    "channel_scaling",
    "scale_events",
]

_BLOCK_BYTES = 1 << 21  # decode_events converts DATA in blocks of about this many float32 bytes
_MIN_VALUES_PER_THREAD = 1 << 21  # with threads=None, a thread converts at least this many values


# --------------------------------------------------------------------------- DATA


def _int_masks(layout: Layout, channels: Sequence[Channel]) -> list[int]:
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


def _uint_columns(buf: Buffer, layout: Layout) -> np.ndarray | list[np.ndarray]:
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


def _int_columns(buf: Buffer, layout: Layout) -> np.ndarray | list[np.ndarray]:
    return _packed_columns(buf, layout) if layout.storage == "packed" else _uint_columns(buf, layout)


def high_bits_set(buf: Buffer, layout: Layout, channels: Sequence[Channel]) -> bool:
    """True when some integer word has bits set above what $PnR/$PnB allow."""
    if (layout.datatype != "I" and not layout.mixed_types) or layout.n_events == 0:
        return False
    masks = _int_masks(layout, channels)
    cols = _int_columns(buf, layout)
    if isinstance(cols, np.ndarray):
        return bool(np.any(cols > np.array(masks, dtype=cols.dtype.newbyteorder("="))))
    return any(
        bool(np.any(c > c.dtype.type(m)))
        for c, m in zip(cols, masks, strict=True)
        if c.dtype.kind == "u"
    )


def _ascii_values(buf: Buffer, layout: Layout, name: str) -> np.ndarray:
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


def _raw_values(buf: Buffer, layout: Layout) -> np.ndarray | list[np.ndarray]:
    """DATA as written: an (N, D) view of uniform words, or one array per channel.

    Floats come as floats (file byte order), integers as unsigned words; no
    masking and no conversion yet. Views into ``buf`` wherever the layout allows.
    """
    if layout.datatype in ("F", "D") and not layout.mixed_types:
        size = layout.word_bytes[0]
        if layout.byte_perm is not None:
            return np.asarray(_uint_columns(buf, layout)).view(f"<f{size}")
        dt = np.dtype(f"{layout.endian}f{size}")
        n, d = layout.n_events, layout.n_par
        return np.frombuffer(buf, dt, count=n * d, offset=layout.start).reshape(n, d)
    return _int_columns(buf, layout)


def decodes_in_place(buf: Buffer, layout: Layout) -> bool:
    """Whether :func:`decode_events` can write the float32 events over DATA itself.

    True for binary F or I data in 4-byte words (one float32 takes the bytes of
    one value) in plain little/big-endian order, when ``buf`` is writable and
    DATA starts on a 4-byte boundary of memory.
    """
    if layout.storage != "bytes" or layout.byte_perm is not None or layout.mixed_types:
        return False
    if layout.datatype not in ("F", "I") or set(layout.word_bytes) != {4} or layout.n_events == 0:
        return False
    view = np.frombuffer(buf, np.uint8, count=layout.nbytes, offset=layout.start)
    return view.flags.writeable and view.ctypes.data % 4 == 0


def decode_events(
    buf: Buffer,
    layout: Layout,
    channels: Sequence[Channel],
    scaling: Scaling,
    name: str,
    *,
    in_place: bool = False,
    threads: int | None = 1,
) -> tuple[np.ndarray, list[str]]:
    """Decode DATA into the final (N, D) float32 events, scaled as flowio scales them.

    The values and quirks are exactly those of ``scale_events(decode_data(...))``,
    without the (N, D) float64 intermediate. With ``in_place`` (only where
    :func:`decodes_in_place`) the events overwrite the DATA bytes of ``buf`` and
    the result is a view of ``buf``: no full-size allocation at all. Otherwise the
    float32 result is the only one (besides the bit-packed and odd-width integer
    decoders, which build their words first).

    Notes
    -----
    DATA is converted in blocks of rows (about 2 MiB of events), so temporaries
    stay small and in cache. Per block, one cast of all channels: float32 (either
    byte order; bit-identical), float64 (one float64 -> float32 rounding, as
    before), integers of at most 32 bits (exact in float64, so a direct cast
    rounds like the float64 route). Then, in float64 and cast: the channels that
    are scaled ($TIMESTEP, $PnE, $PnG, with :func:`scale_events`' very
    expressions), masked to $PnR/$PnB (``pnr_bitmask_applied``; decided on the
    column maxima before anything is written) or stored in 64-bit words (a
    direct cast would round once instead of twice). In place, a block is
    converted completely before it overwrites its own bytes. ASCII data goes the
    float64 route. ``threads`` threads convert slices of rows at once (None: by
    cores and size); the result does not depend on it.
    """
    with np.errstate(all="ignore"):  # signalling NaNs, overflow in 10 ** x: as scale_events
        if layout.datatype == "A":
            return scale_events(_ascii_values(buf, layout, name), channels, scaling), []
        n, d = layout.n_events, layout.n_par
        if n == 0:
            return np.zeros((0, d), np.float32), []
        if in_place and not decodes_in_place(buf, layout):
            raise ValueError("DATA cannot be decoded in place")
        src = _raw_values(buf, layout)
        cols = [src[:, j] for j in range(d)] if isinstance(src, np.ndarray) else src
        is_int = layout.datatype == "I" or layout.mixed_types
        masks = _int_masks(layout, channels) if is_int else None
        if masks is None:
            over = [False] * d
        elif isinstance(src, np.ndarray):  # one pass for all maxima, no (N, D) temporary
            over = [int(hi) > m for hi, m in zip(src.max(axis=0), masks, strict=True)]
        else:
            over = [
                c.dtype.kind == "u" and int(c.max()) > m for c, m in zip(cols, masks, strict=True)
            ]
        wide = [c.dtype.kind == "u" and c.dtype.itemsize > 4 for c in cols]
        special = [over[j] or wide[j] or _is_scaled(j, ch, scaling) for j, ch in enumerate(channels)]
        quirks = ["pnr_bitmask_applied"] if any(over) else []
        if in_place:
            out = np.frombuffer(buf, np.float32, count=n * d, offset=layout.start).reshape(n, d)
            if src.dtype == out.dtype and not any(special):
                return out, quirks  # native float32, nothing to scale: DATA is the result
        else:
            out = np.empty((n, d), np.float32)
        bulk = isinstance(src, np.ndarray) and not all(special)
        rows = max(1, _BLOCK_BYTES // (4 * d))

        def convert(lo: int, hi: int) -> None:
            with np.errstate(all="ignore"):
                for r0 in range(lo, hi, rows):
                    r1 = min(hi, r0 + rows)
                    block = np.empty((r1 - r0, d), np.float32) if in_place else out[r0:r1]
                    if bulk:
                        np.copyto(block, src[r0:r1], casting="unsafe")  # byte swap and cast in one pass
                    for j, col in enumerate(cols):
                        if bulk and not special[j]:
                            continue
                        col = col[r0:r1]
                        if over[j]:
                            col = col.astype(col.dtype.newbyteorder("="))
                            col &= col.dtype.type(masks[j])  # type: ignore[index]
                        if special[j]:
                            col = _scale_column(col.astype(np.float64), j, channels[j], scaling)
                        block[:, j] = col
                    if in_place:
                        out[r0:r1] = block

        # Rows are converted independently, so slices of rows can be converted at once (NumPy releases
        # the GIL while it casts); in place too, since then a row's float32 values take exactly its own bytes.
        map_slices(convert, n, thread_count(n * d, threads, _MIN_VALUES_PER_THREAD))
    return out, quirks


def decode_data(
    buf: Buffer, layout: Layout, channels: Sequence[Channel], name: str
) -> tuple[np.ndarray, list[str]]:
    """Decode DATA into an (N, D) float64 array of raw channel values.

    Integers are masked to the bits $PnR/$PnB allow (quirk
    ``pnr_bitmask_applied`` when that changed a value); floats are converted to
    float64 as written; ASCII is parsed as numbers.
    """
    with np.errstate(all="ignore"):  # signalling NaNs in float data must not warn
        return _decode(buf, layout, channels, name)


def _decode(
    buf: Buffer, layout: Layout, channels: Sequence[Channel], name: str
) -> tuple[np.ndarray, list[str]]:
    n, d = layout.n_events, layout.n_par
    if layout.datatype == "A":
        return _ascii_values(buf, layout, name), []
    if n == 0:
        return np.zeros((0, d), np.float64), []
    if layout.datatype in ("F", "D") and not layout.mixed_types:
        size = layout.word_bytes[0]
        if layout.byte_perm is not None:
            words = np.asarray(_uint_columns(buf, layout))
            return words.view(f"<f{size}").astype(np.float64), []
        dt = np.dtype(f"{layout.endian}f{size}")
        raw = np.frombuffer(buf, dt, count=n * d, offset=layout.start).reshape(n, d)
        return raw.astype(np.float64), []
    masks = _int_masks(layout, channels)
    cols = _int_columns(buf, layout)
    out = np.empty((n, d), np.float64)
    masked = False
    if isinstance(cols, np.ndarray):
        mask_row = np.array(masks, dtype=cols.dtype.newbyteorder("="))
        native = cols.astype(mask_row.dtype, copy=False)
        if np.any(native > mask_row):
            masked = True
            native = native & mask_row
        out[:] = native
    else:
        for j, (col, m) in enumerate(zip(cols, masks, strict=True)):
            if col.dtype.kind == "f":  # a $PnDATATYPE F/D channel
                out[:, j] = col
                continue
            native = col.astype(col.dtype.newbyteorder("="), copy=False)
            mv = native.dtype.type(m)
            if np.any(native > mv):
                masked = True
                native = native & mv
            out[:, j] = native
    return out, (["pnr_bitmask_applied"] if masked else [])


# --------------------------------------------------------------------------- scaling


@dataclass(frozen=True)
class Scaling:
    """How raw channel values become linear values (flowio's preprocessing)."""

    time_index: int | None
    timestep: float
    gains: tuple[float, ...]
    limits: tuple[float, ...]
    quirks: tuple[str, ...]


def _is_time(kw: Mapping[str, str], n: int) -> bool:
    # flowio: the channel whose $PnN (as written, "$" removed) is "time", any case
    return kw.get(f"p{n}n", "").replace("$", "").lower() == "time"


def channel_scaling(channels: Sequence[Channel], kw: Mapping[str, str]) -> Scaling:
    """$TIMESTEP, gains and decoded upper limits, as flowio's ``preprocess=True`` uses them.

    The time channel (the last one named ``Time``, any case) is multiplied by
    $TIMESTEP and never divided by its $PnG. The upper limit of a log channel is
    ``10 ** f1 * f2``, of a linear one $PnR; both divided by the gain like the data.
    """
    quirks: list[str] = []
    time_idx = None
    for j in range(len(channels)):
        if _is_time(kw, j + 1):
            time_idx = j
    timestep = 1.0
    if "timestep" in kw and time_idx is not None:
        raw_ts = kw["timestep"].strip()
        try:
            timestep = float(raw_ts) if raw_ts else 1.0
        except ValueError:
            timestep = math.nan
        if not math.isfinite(timestep) or timestep <= 0:
            # flowio raises on text and multiplies by 0 or -1: a time channel must not stop or run
            # backwards because of a keyword; the channel keeps its raw ticks, and the quirk says so
            quirks.append("timestep_malformed_ignored")
            timestep = 1.0
    gains, limits = [], []
    for j, ch in enumerate(channels):
        gain = 1.0 if _is_time(kw, j + 1) or ch.png == 0 else ch.png
        if ch.decades > 0:
            limit = 10**ch.decades * ch.log0
        else:
            limit = ch.pnr * (timestep if j == time_idx else 1.0)
        gains.append(gain)
        limits.append(float(limit / gain))
    return Scaling(time_idx, timestep, tuple(gains), tuple(limits), tuple(quirks))


def _is_scaled(j: int, ch: Channel, scaling: Scaling) -> bool:
    """Whether :func:`_scale_column` changes column ``j``."""
    timed = j == scaling.time_index and scaling.timestep != 1.0
    return timed or ch.decades > 0 or scaling.gains[j] != 1.0


def _scale_column(values: np.ndarray, j: int, ch: Channel, scaling: Scaling) -> np.ndarray:
    """One float64 column: times $TIMESTEP (time channel), $PnE decoded, divided by its gain."""
    if j == scaling.time_index and scaling.timestep != 1.0:
        values = values * scaling.timestep
    if ch.decades > 0:
        values = (10 ** (ch.decades * values / ch.pnr)) * ch.log0
    if scaling.gains[j] != 1.0:
        values = values / scaling.gains[j]
    return values


def scale_events(raw: np.ndarray, channels: Sequence[Channel], scaling: Scaling) -> np.ndarray:
    """Apply $TIMESTEP, $PnE and $PnG exactly as flowio's ``as_array(preprocess=True)``.

    In float64 and in flowio's order: the time channel times $TIMESTEP; a channel
    with $PnE = f1,f2 and f1 > 0 becomes ``10 ** (f1 * x / PnR) * f2`` (f2 = 0
    read as 1); then a gain other than 0 or 1 divides. ``raw`` is modified in
    place; float32 events are returned.

    Notes
    -----
    flowio applies $PnE to float data too (``itn_02.fcs`` stores log-scaled
    floats with $PnE=4,0); doing the same keeps the values identical.
    """
    with np.errstate(all="ignore"):
        for j, ch in enumerate(channels):
            if _is_scaled(j, ch, scaling):
                raw[:, j] = _scale_column(raw[:, j], j, ch, scaling)
        return raw.astype(np.float32)
