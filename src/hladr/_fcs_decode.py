"""Where DATA is and how it is encoded; DATA -> float arrays with NumPy.

Private to :mod:`hladr.read`. :func:`resolve_layout` decides, from HEADER and
TEXT alone and before anything is allocated, which bytes hold the events and
how; :func:`decode_events` turns them into the final (N, D) float32 events with
$TIMESTEP, $PnE and $PnG applied as flowio does. (:func:`decode_data` gives the
(N, D) float64 raw channel values and :func:`scale_events` scales such an array;
both are kept for comparisons.) Every decoder is vectorised (``np.frombuffer``
with endian/structured dtypes, ``np.unpackbits`` for packed words): no Python
loop runs per event. Quirk codes are listed in :mod:`hladr._fcs_parse`.

Memory: ``buf`` is the whole file (a memoryview, see :mod:`hladr.read`) and the
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

from ._fcs_parse import HEADER_LEN, Buffer, Channel, RawDataset, _clip, kw_opt_int
from ._parallel import map_slices, thread_count
from .errors import ReadError

__all__ = [
    "Layout",
    "resolve_layout",
    "decodes_in_place",
    "decode_events",
    "decode_data",
    "high_bits_set",
    "Scaling",
    "channel_scaling",
    "scale_events",
]

MAX_PAR = 10_000
MAX_TOT = 2**32  # more events than any cytometer writes in one tube
MAX_INT_BITS = 64
MAX_ASCII_WIDTH = 256
LARGE_FILE = 99_999_999  # FCS 3.x: HEADER offsets above this are written as 0
_BLOCK_BYTES = 1 << 21  # decode_events converts DATA in blocks of about this many float32 bytes
_MIN_VALUES_PER_THREAD = 1 << 21  # with threads=None, a thread converts at least this many values


@dataclass(frozen=True)
class Layout:
    """How the DATA segment of one dataset is laid out.

    ``storage`` is ``"bytes"`` (each value in ``word_bytes`` bytes), ``"packed"``
    (values of ``bits`` bits back to back), ``"ascii_fixed"`` (``bits``
    characters per value) or ``"ascii_delimited"``. ``start`` is absolute;
    ``nbytes`` is what the events occupy. ``flowio_offsets`` says flowio 1.4
    would look at exactly these bytes.
    """

    n_events: int
    n_par: int
    datatype: str
    endian: str
    byte_perm: tuple[int, ...] | None
    storage: str
    bits: tuple[int, ...]
    word_bytes: tuple[int, ...]
    start: int
    nbytes: int
    quirks: tuple[str, ...]
    flowio_offsets: bool
    channel_types: tuple[str, ...] = ()

    @property
    def mixed_types(self) -> bool:
        """FCS 3.2 $PnDATATYPE: integer and float channels in one event."""
        return len(set(self.channel_types)) > 1


@dataclass(frozen=True)
class _Declared:
    """What TEXT says about the encoding, before looking at DATA."""

    n_par: int
    datatype: str
    endian: str
    byte_perm: tuple[int, ...] | None
    bits: tuple[int, ...]
    ascii_delimited: bool
    tot: int | None
    quirks: tuple[str, ...]
    channel_types: tuple[str, ...]


def _byteorder(kw: Mapping[str, str], name: str) -> tuple[str, tuple[int, ...] | None, list[str]]:
    raw = kw.get("byteord")
    if raw is None or not raw.strip():
        return "<", None, ["byteord_missing_assumed_little"]
    try:
        order = [int(p) for p in raw.replace(" ", "").split(",")]
    except ValueError:
        raise ReadError(f"{name}: $BYTEORD is not a byte order ({_clip(raw)})") from None
    k = len(order)
    if k > 8 or sorted(order) != list(range(1, k + 1)):
        raise ReadError(f"{name}: $BYTEORD is not a byte order ({_clip(raw)})")
    if order == sorted(order):
        return "<", None, []
    if order == sorted(order, reverse=True):
        return ">", None, []
    return "<", tuple(order), ["byteord_mixed"]


def _declared(kw: Mapping[str, str], name: str) -> _Declared:
    quirks: list[str] = []
    n_par = kw_opt_int(kw, "par")
    if n_par is None:
        raise ReadError(f"{name}: $PAR (number of channels) is missing or not a number")
    if not 1 <= n_par <= MAX_PAR:
        raise ReadError(f"{name}: $PAR={n_par} is not a plausible number of channels")
    mode = kw.get("mode", "L").strip().upper() or "L"
    if mode != "L":
        raise ReadError(f"{name}: $MODE={_clip(mode)} (histogram data) is not list-mode data")
    datatype = kw.get("datatype", "").strip().upper()
    if not datatype:
        datatype = "I"
        quirks.append("no_datatype_assumed_I")
    if datatype not in ("I", "F", "D", "A"):
        raise ReadError(f"{name}: $DATATYPE={_clip(datatype)} is not I, F, D or A")
    endian, perm, q = _byteorder(kw, name)
    quirks += q

    raw_bits = [kw.get(f"p{n}b", "").strip() for n in range(1, n_par + 1)]
    types = [datatype] * n_par
    if datatype != "A":  # FCS 3.2: $PnDATATYPE overrides $DATATYPE per channel
        for n in range(1, n_par + 1):
            t = kw.get(f"p{n}datatype", "").strip().upper() or datatype
            if t not in ("I", "F", "D"):
                raise ReadError(f"{name}: $P{n}DATATYPE={_clip(t)} is not I, F or D")
            types[n - 1] = t
    bits: list[int] = []
    delimited = datatype == "A" and all(b == "*" for b in raw_bits)
    if not delimited:
        limit = MAX_ASCII_WIDTH if datatype == "A" else MAX_INT_BITS
        for n, (b, t) in enumerate(zip(raw_bits, types, strict=True), 1):
            if t in ("F", "D"):
                bits.append(32 if t == "F" else 64)  # $PnB is implied by the type
                continue
            try:
                value = int(b)
            except ValueError:
                raise ReadError(
                    f"{name}: $P{n}B (bits of channel {n}) is missing or not a number ({_clip(b)})"
                ) from None
            if not 1 <= value <= limit:
                raise ReadError(f"{name}: $P{n}B={value} is not a supported width (1-{limit})")
            bits.append(value)

    tot = kw_opt_int(kw, "tot")
    if kw.get("tot") is not None and tot is None:
        raise ReadError(f"{name}: $TOT is not a number ({_clip(kw.get('tot'))})")
    if tot is not None and not 0 <= tot <= MAX_TOT:
        raise ReadError(f"{name}: $TOT={tot} events is not plausible (limit {MAX_TOT})")
    return _Declared(
        n_par, datatype, endian, perm, tuple(bits), delimited, tot, tuple(quirks), tuple(types)
    )


@dataclass(frozen=True)
class _Segments:
    """Candidate DATA segments (absolute, inclusive), best-trusted first."""

    cands: tuple[tuple[str, int, int], ...]
    ends: frozenset[int]  # ends of TEXT/ANALYSIS: DATA usually starts right after one
    flowio_pair: tuple[int | None, int | None] | None
    mismatch: bool
    quirks: tuple[str, ...]


def _segments(buf_len: int, ds: RawDataset, kw: Mapping[str, str]) -> _Segments:
    quirks: list[str] = []
    o = ds.offset
    ends = {ds.text_span[1]}
    if ds.header_analysis[1] is not None and ds.header_analysis[1] > o:
        ends.add(ds.header_analysis[1])
    for key in ("endanalysis", "endstext"):
        value = kw_opt_int(kw, key) or 0
        if value > 0:
            ends.add(o + value)
    tb, te = kw_opt_int(kw, "begindata"), kw_opt_int(kw, "enddata")
    text = ("text", o + tb, o + te) if tb is not None and te is not None and (tb, te) != (0, 0) else None
    hb, he = ds.header_data
    header = None
    if text is not None and he == o and hb in (o, text[1]) and text[2] > LARGE_FILE:
        pass  # a DATA end past 99,999,999 cannot be written in HEADER: 0 there is no disagreement
    elif hb is not None and he is not None and (hb, he) != (o, o):
        header = ("header", hb, he)
    elif (hb is None or he is None) and buf_len <= LARGE_FILE:
        quirks.append("header_data_offsets_blank")
    cands: list[tuple[str, int, int]] = []
    # FCS 3.x: TEXT offsets are authoritative; FCS 2.0 has only the HEADER ones.
    for c in [text, header] if ds.version >= "3" else [header, text]:
        if c is not None and all(c[1:] != d[1:] for d in cands):
            cands.append(c)
    # The segment flowio 1.4 reads (and only reads when HEADER and TEXT agree).
    flowio_pair = None
    if ds.version == "2.0":
        flowio_pair = (hb, he)
    elif text is not None and (hb, he) == text[1:]:
        flowio_pair = text[1:]
    elif text is not None and hb == o and te is not None and te > LARGE_FILE:
        flowio_pair = text[1:]
    mismatch = text is not None and header is not None and text[1:] != header[1:]
    return _Segments(tuple(cands), frozenset(ends), flowio_pair, mismatch, tuple(quirks))


def _word_bytes(bits: int) -> int:
    return next(w for w in (1, 2, 4, 8) if bits <= 8 * w)


def _interpretations(dec: _Declared) -> list[tuple[str, tuple[int, ...], str | None]]:
    """(storage, bytes per value, quirk) readings of the declared widths, preferred first."""
    bits = dec.bits
    if dec.datatype == "A":
        return [("ascii_fixed", bits, None)]
    if all(t in ("F", "D") for t in dec.channel_types):
        return [("bytes", tuple(b // 8 for b in bits), None)]
    if len(set(dec.channel_types)) > 1:
        words = tuple(b // 8 if b % 8 == 0 else _word_bytes(b) for b in bits)
        return [("bytes", words, None if words == tuple(b // 8 for b in bits) else
                 "pnb_in_wider_words")]  # fmt: skip
    if all(b % 8 == 0 for b in bits):
        out = [("bytes", tuple(b // 8 for b in bits), None)]
        if any(b // 8 not in (1, 2, 4, 8) for b in bits):
            out.append(("bytes", tuple(_word_bytes(b) for b in bits), "pnb_in_wider_words"))
        return out
    # $PnB=10/12: FC500 stores 10-bit values in 16-bit words; others may bit-pack.
    return [
        ("bytes", tuple(_word_bytes(b) for b in bits), "pnb_in_wider_words"),
        ("packed", (), "pnb_bit_packed"),
    ]


def _needed(n: int, storage: str, bits: Sequence[int], word_bytes: Sequence[int]) -> int:
    if storage == "packed":
        return (n * sum(bits) + 7) // 8
    return n * sum(word_bytes)


def resolve_layout(
    buf_len: int,
    ds: RawDataset,
    kw: Mapping[str, str],
    name: str,
    *,
    allow_tot_mismatch: bool = False,
) -> Layout:
    """Decide where DATA is and how it is encoded, before touching it.

    Every candidate DATA segment (TEXT $BEGINDATA/$ENDDATA, HEADER offsets) and
    every reading of the declared widths is scored against the bytes $TOT events
    need: exact, then one byte too long (the common off-by-one), then longer by
    less than one event (padding). A segment with room for more or fewer events
    than $TOT, or declared past the end of the file, is not read: that is how a
    wrong $TOT/$PAR/$PnB or a shifted segment shows, and reading it would give
    wrong numbers. Segments overlapping TEXT are impossible and dropped. Ties go to the segment
    that starts right after TEXT/ANALYSIS (CyAn: the TEXT offset is 46 bytes off
    and splits events), then to TEXT for FCS 3.x and HEADER for FCS 2.0. A
    segment shorter than $TOT events is an error unless ``allow_tot_mismatch``.
    Only integers are computed here, so a file claiming billions of events is
    rejected without allocating anything. ``allow_tot_mismatch`` reads the
    complete events (at most $TOT) of the most trusted segment instead.
    """
    dec = _declared(kw, name)
    seg = _segments(buf_len, ds, kw)
    quirks = [*dec.quirks, *seg.quirks]
    if not seg.cands:
        if dec.tot != 0:
            raise ReadError(f"{name}: neither HEADER nor TEXT gives the DATA segment offsets")
        seg = _Segments(
            (("text", ds.text_span[1] + 1, ds.text_span[1]),), seg.ends, None, False, seg.quirks
        )
    if seg.mismatch:
        quirks.append("header_text_offset_mismatch")
    if dec.ascii_delimited:
        return _ascii_delimited(buf_len, ds, dec, seg, quirks, name)
    return _binary(buf_len, ds, dec, seg, quirks, name, allow_tot_mismatch)


def _overlaps_text(ds: RawDataset, start: int, length: int) -> bool:
    text0, text1 = ds.text_span
    return length > 0 and start <= text1 and start + length - 1 >= text0


def _binary(
    buf_len: int,
    ds: RawDataset,
    dec: _Declared,
    seg: _Segments,
    quirks: list[str],
    name: str,
    allow_tot_mismatch: bool,
) -> Layout:
    best = None  # (key, start, end, storage, wbytes, iquirk, quirk, n_events, need)
    misfits = []  # (rank, avail, start, end, storage, wbytes, iquirk, need): no $TOT events
    interps = _interpretations(dec)
    for rank, (_source, start, end) in enumerate(seg.cands):
        if start < ds.offset + HEADER_LEN or end < start - 1:
            continue
        seg_len = end - start + 1
        avail = max(0, min(seg_len, buf_len - start))
        for irank, (storage, wbytes, iquirk) in enumerate(interps):
            if dec.tot is not None:
                n_ev = dec.tot
            elif storage != "packed" and sum(wbytes) > 0:
                n_ev = avail // sum(wbytes)
            else:
                continue
            need = _needed(n_ev, storage, dec.bits, wbytes)
            if _overlaps_text(ds, start, need):
                continue
            fits = start + need <= buf_len
            if n_ev == 0:
                score, q = 0, None
            elif end >= buf_len and not (end == buf_len and seg_len == need + 1):
                score, q = None, None  # declared end past EOF: truncated or shifted data
            elif seg_len == need:
                score, q = 0, None
            elif seg_len == need + 1:
                score, q = 1, "offset_off_by_one"
            elif _events_in(seg_len, storage, dec.bits, wbytes) == n_ev:
                # trailing bytes that cannot hold another event (padding, a CRC)
                score, q = 3, "data_segment_longer_than_tot"
            else:
                score, q = None, None
            if score is None or not fits:
                misfits.append((rank, irank, avail, start, end, storage, wbytes, iquirk, need))
                continue
            key = (score, 0 if (start - 1) in seg.ends else 1, rank, irank)
            if best is None or key < best[0]:
                best = (key, start, end, storage, wbytes, iquirk, q, n_ev, need)
    if best is None:
        return _no_fit(buf_len, dec, seg, misfits, quirks, name, allow_tot_mismatch)
    _, start, end, storage, wbytes, iquirk, q, n_ev, need = best
    quirks += [x for x in (q, iquirk) if x]
    if dec.tot is None:
        quirks.append("tot_missing_inferred")
    if dec.byte_perm is not None and set(wbytes) != {len(dec.byte_perm)}:
        raise ReadError(
            f"{name}: a {len(dec.byte_perm)}-byte $BYTEORD does not fit "
            f"{'/'.join(str(8 * w) for w in sorted(set(wbytes)))}-bit values"
        )
    return Layout(
        n_events=n_ev,
        n_par=dec.n_par,
        datatype=dec.datatype,
        endian=dec.endian,
        byte_perm=dec.byte_perm,
        storage=storage,
        bits=dec.bits,
        word_bytes=wbytes,
        start=start,
        nbytes=need,
        quirks=tuple(dict.fromkeys(quirks)),
        flowio_offsets=seg.flowio_pair == (start, end) and q is None,
        channel_types=dec.channel_types,
    )


def _events_in(nbytes: int, storage: str, bits: Sequence[int], wbytes: Sequence[int]) -> int:
    if storage == "packed":
        return nbytes * 8 // max(1, sum(bits))
    return nbytes // max(1, sum(wbytes))


def _no_fit(buf_len, dec, seg, misfits, quirks, name, allow_tot_mismatch) -> Layout:  # noqa: ANN001
    """No segment matches $TOT events: say what is wrong, or (on request) read what is there.

    The most trusted segment in its preferred reading explains the problem. With
    ``allow_tot_mismatch`` its complete events are read, at most $TOT of them.
    """
    if not misfits:
        _, start, end = seg.cands[0]
        if end >= buf_len:
            raise ReadError(
                f"{name}: DATA segment ends at byte {end} but the file has {buf_len} bytes "
                "(truncated file?)"
            )
        raise ReadError(f"{name}: DATA segment offsets {start}-{end} are not valid")
    _, _, avail, start, end, storage, wbytes, iquirk, need = min(misfits, key=lambda m: m[:2])
    seg_len = end - start + 1
    room = _events_in(avail, storage, dec.bits, wbytes)
    if allow_tot_mismatch and storage != "packed" and dec.tot is not None:
        n_ev = min(room, dec.tot)
        extra = [iquirk, "events_fewer_than_tot" if n_ev < dec.tot else None]
        extra.append("data_end_beyond_file" if end >= buf_len else "data_segment_longer_than_tot")
        return Layout(
            n_events=n_ev, n_par=dec.n_par, datatype=dec.datatype, endian=dec.endian,
            byte_perm=dec.byte_perm, storage=storage, bits=dec.bits, word_bytes=wbytes,
            start=start, nbytes=n_ev * sum(wbytes),
            quirks=tuple(dict.fromkeys(quirks + [x for x in extra if x])), flowio_offsets=False,
            channel_types=dec.channel_types,
        )  # fmt: skip
    if end >= buf_len:
        raise ReadError(
            f"{name}: DATA segment ends at byte {end} but the file has {buf_len} bytes "
            f"(truncated file? $TOT={dec.tot} events need {need} bytes)"
        )
    if seg_len < need:
        raise ReadError(
            f"{name}: DATA segment has {seg_len} bytes but $TOT={dec.tot} events x {dec.n_par} "
            f"channels need {need} (truncated file or wrong $TOT/$PnB)"
        )
    raise ReadError(
        f"{name}: DATA segment has {seg_len} bytes, room for "
        f"{_events_in(seg_len, storage, dec.bits, wbytes)} events, but $TOT={dec.tot} events x "
        f"{dec.n_par} channels need {need} (wrong $TOT, $PAR or $PnB?)"
    )


def _ascii_delimited(buf_len, ds, dec, seg, quirks, name) -> Layout:  # noqa: ANN001
    """ASCII values separated by blanks/commas: the count is checked after parsing."""
    for _source, start, end in seg.cands:
        if start < ds.offset + HEADER_LEN or end < start - 1:
            continue
        q = list(quirks)
        if end >= buf_len:
            if end != buf_len:
                continue
            end -= 1
            q.append("offset_off_by_one")
        if _overlaps_text(ds, start, end - start + 1):
            continue
        return Layout(
            n_events=-1 if dec.tot is None else dec.tot, n_par=dec.n_par, datatype="A",
            endian=dec.endian, byte_perm=None, storage="ascii_delimited", bits=(),
            word_bytes=(), start=start, nbytes=end - start + 1, quirks=tuple(q),
            flowio_offsets=False,
        )  # fmt: skip
    _, start, end = seg.cands[0]
    raise ReadError(
        f"{name}: DATA segment ends at byte {end} but the file has {buf_len} bytes (truncated file?)"
    )


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
        if not math.isfinite(timestep):
            quirks.append("timestep_malformed_ignored")  # flowio raises here
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
