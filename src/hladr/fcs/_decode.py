"""DATA -> float arrays with NumPy.

Private to :mod:`hladr.fcs.read`. Given the :class:`~hladr.fcs._layout.Layout` that
:func:`hladr.fcs._layout.resolve_layout` chose from HEADER and TEXT,
:func:`decode_events` turns the DATA bytes into the final (N, D) float32 events
with $TIMESTEP, $PnE and $PnG applied as flowio does. (:func:`decode_data` gives
the (N, D) float64 raw channel values and :func:`scale_events` scales such an
array; both are kept for comparisons.) The values as written come from
:mod:`hladr.fcs._words` (vectorised: no Python loop runs per event). Quirk codes
are listed in :mod:`hladr.fcs._parse`.

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
from ._layout import Layout
from ._parse import Buffer, Channel
from ._words import ascii_values, int_columns, int_masks, raw_values, uint_columns

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


def high_bits_set(buf: Buffer, layout: Layout, channels: Sequence[Channel]) -> bool:
    """True when some integer word has bits set above what $PnR/$PnB allow."""
    if (layout.datatype != "I" and not layout.mixed_types) or layout.n_events == 0:
        return False
    masks = int_masks(layout, channels)
    cols = int_columns(buf, layout)
    if isinstance(cols, np.ndarray):
        return bool(np.any(cols > np.array(masks, dtype=cols.dtype.newbyteorder("="))))
    return any(
        bool(np.any(c > c.dtype.type(m)))
        for c, m in zip(cols, masks, strict=True)
        if c.dtype.kind == "u"
    )


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
            return scale_events(ascii_values(buf, layout, name), channels, scaling), []
        n, d = layout.n_events, layout.n_par
        if n == 0:
            return np.zeros((0, d), np.float32), []
        if in_place and not decodes_in_place(buf, layout):
            raise ValueError("DATA cannot be decoded in place")
        src = raw_values(buf, layout)
        cols = [src[:, j] for j in range(d)] if isinstance(src, np.ndarray) else src
        is_int = layout.datatype == "I" or layout.mixed_types
        masks = int_masks(layout, channels) if is_int else None
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
        return ascii_values(buf, layout, name), []
    if n == 0:
        return np.zeros((0, d), np.float64), []
    if layout.datatype in ("F", "D") and not layout.mixed_types:
        size = layout.word_bytes[0]
        if layout.byte_perm is not None:
            words = np.asarray(uint_columns(buf, layout))
            return words.view(f"<f{size}").astype(np.float64), []
        dt = np.dtype(f"{layout.endian}f{size}")
        raw = np.frombuffer(buf, dt, count=n * d, offset=layout.start).reshape(n, d)
        return raw.astype(np.float64), []
    masks = int_masks(layout, channels)
    cols = int_columns(buf, layout)
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
