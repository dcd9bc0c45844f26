"""Where DATA is and how it is encoded, decided from HEADER and TEXT alone.

Private to :mod:`hladr.fcs.read`. :func:`resolve_layout` reads $PAR, $MODE,
$DATATYPE ($PnDATATYPE), $BYTEORD, $PnB, $TOT and the DATA offsets HEADER and
TEXT give, and returns a :class:`Layout`: which bytes hold the events and how
each value is stored. It picks among the candidate segments and readings of the
declared widths by the bytes $TOT events need, which is where most export
quirks are tolerated (quirk codes are listed in :mod:`hladr.fcs._parse`). Only
integers are computed and DATA is not touched, so a file claiming billions of
events, or a segment past the end of the file, is rejected before anything is
allocated. What TEXT declares about the encoding is read by
:mod:`hladr.fcs._declared`. Turning the bytes a :class:`Layout` names into float
arrays is :mod:`hladr.fcs._decode`'s job; keeping the two apart keeps these rules free of
NumPy and the decoders free of offset arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ReadError
from ._declared import Declared, declared, events_in, interpretations, needed
from ._parse import HEADER_LEN, Buffer, RawDataset, kw_opt_int

__all__ = ["Layout", "resolve_layout"]

LARGE_FILE = 99_999_999  # FCS 3.x: HEADER offsets above this are written as 0


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


def resolve_layout(
    buf_len: int,
    ds: RawDataset,
    kw: Mapping[str, str],
    name: str,
    *,
    allow_tot_mismatch: bool = False,
    buf: Buffer | None = None,
) -> Layout:
    """Decide where DATA is and how it is encoded, before touching it.

    Every candidate DATA segment (TEXT $BEGINDATA/$ENDDATA, HEADER offsets) and
    every reading of the declared widths is scored against the bytes $TOT events
    need: exact, then one byte too long (the common off-by-one), then longer by
    less than one event (padding). A segment with room for more or fewer events
    than $TOT, or declared past the end of the file, is not read: that is how a
    wrong $TOT/$PAR/$PnB or a shifted segment shows, and reading it would give
    wrong numbers. Segments overlapping TEXT are impossible and dropped. When
    HEADER and TEXT disagree, only a segment that starts right after
    TEXT/ANALYSIS/STEXT is read (CyAn: the TEXT offset is 46 bytes off, splits
    events and still fits $TOT); otherwise the file is refused. Ties go to the
    segment that starts right after TEXT/ANALYSIS, then to TEXT for FCS 3.x and
    HEADER for FCS 2.0. A
    segment shorter than $TOT events is an error unless ``allow_tot_mismatch``.
    Only integers are computed here, so a file claiming billions of events is
    rejected without allocating anything. ``allow_tot_mismatch`` reads the
    complete events (at most $TOT) of the most trusted segment instead.
    """
    dec = declared(kw, name)
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
    return _binary(buf_len, ds, dec, seg, quirks, name, allow_tot_mismatch, buf)


def _overlaps_text(ds: RawDataset, start: int, length: int) -> bool:
    text0, text1 = ds.text_span
    return length > 0 and start <= text1 and start + length - 1 >= text0


def _binary(
    buf_len: int,
    ds: RawDataset,
    dec: Declared,
    seg: _Segments,
    quirks: list[str],
    name: str,
    allow_tot_mismatch: bool,
    buf: Buffer | None = None,
) -> Layout:
    best = None  # (key, start, end, storage, wbytes, iquirk, quirk, n_events, need)
    misfits = []  # (rank, avail, start, end, storage, wbytes, iquirk, need): no $TOT events
    interps = interpretations(dec)
    detached = []  # candidates left out: HEADER and TEXT disagree and they do not start after TEXT
    for rank, (_source, start, end) in enumerate(seg.cands):
        if start < ds.offset + HEADER_LEN or end < start - 1:
            continue
        if seg.mismatch and not _follows_segment(buf, seg.ends, start):
            # HEADER and TEXT disagree: the one that holds $TOT events is proven only where it starts
            # right after TEXT (or ANALYSIS/STEXT), padding between allowed, as in all four corpus files
            # that disagree (CyAn, Accuri C6, FlowIO's discrepancy examples). CyAn's TEXT offset is 46
            # bytes into DATA and also fits $TOT: with its HEADER offset damaged it would be read misaligned.
            detached.append((start, end))
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
            need = needed(n_ev, storage, dec.bits, wbytes)
            if _overlaps_text(ds, start, need):
                continue
            fits = start + need <= buf_len
            if n_ev == 0:
                # $TOT=0 is an empty tube only if DATA has no room for an event: a zeroed $TOT
                # over full DATA must not read as "no events" without a word
                one = needed(1, storage, dec.bits, wbytes)
                score, q = (0, None) if seg_len < max(1, one) or dec.tot is None else (None, None)
            elif end >= buf_len and not (end == buf_len and seg_len == need + 1):
                score, q = None, None  # declared end past EOF: truncated or shifted data
            elif seg_len == need:
                score, q = 0, None
            elif seg_len == need + 1:
                score, q = 1, "offset_off_by_one"
            elif events_in(seg_len, storage, dec.bits, wbytes) == n_ev:
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
        if detached and not misfits:
            start, end = detached[0]
            raise ReadError(
                f"{name}: HEADER and TEXT give different DATA offsets and the segment at {start}-{end} does "
                "not start right after TEXT: which one holds the events cannot be proven; re-export the file"
            )
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


def _follows_segment(buf: Buffer | None, ends: frozenset[int], start: int) -> bool:
    """Whether ``start`` is right after a segment end, or after NUL/blank padding that follows one."""
    if (start - 1) in ends:
        return True
    before = [e for e in ends if e < start]
    if buf is None or not before:
        return False
    return not bytes(buf[max(before) + 1 : start]).strip(b" \x00")



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
    room = events_in(avail, storage, dec.bits, wbytes)
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
    if dec.tot == 0:
        raise ReadError(
            f"{name}: $TOT=0 but the DATA segment has {seg_len} bytes, room for "
            f"{events_in(seg_len, storage, dec.bits, wbytes)} events: $TOT is wrong; re-export the file"
        )
    raise ReadError(
        f"{name}: DATA segment has {seg_len} bytes, room for "
        f"{events_in(seg_len, storage, dec.bits, wbytes)} events, but $TOT={dec.tot} events x "
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
