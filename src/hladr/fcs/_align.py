"""Proofs that DATA was not shifted inside the file: what follows it, and how its bytes line up.

Private to :mod:`hladr.fcs.read`. Bytes inserted into (or removed from) the middle
of DATA leave HEADER, TEXT and $TOT consistent when the file has bytes after
DATA (a CRC, padding, an ANALYSIS segment, another dataset): the layout rules of
:mod:`hladr.fcs._layout` still find exactly $TOT events, but every event after
the break is read misaligned. Two checks see it, both before DATA is decoded:

- :func:`check_tail`: the bytes right after DATA must be what a writer puts
  there. A FCS 3.x CRC field is 8 ASCII hex digits at the end of the file,
  optionally after padding; a cut or insertion in DATA leaves a tail of 1-7
  digits, or other bytes before it. A short tail (under ``SHORT_TAIL`` bytes)
  that is neither padding nor a CRC is the end of DATA pushed out by an
  insertion. A declared ANALYSIS segment must start with the TEXT delimiter
  (all three in the corpus do: Partec CyFlow and PAS, System II): TEXT or DATA
  edited in place moves it away from its offsets.
- :func:`check_alignment`: each byte position within an event has a
  characteristic distribution (the exponent byte of a float, the high byte of a
  16-bit integer whose $PnR leaves its top bits zero, ...). The histograms of
  the high and the low nibble of each of the event's bytes, over the last events, is compared with
  the same over the first events, at the declared alignment and at every other
  rotation. Events read misaligned after a break match the start of DATA better
  at another rotation; the ratio of the two distances is bounded by
  ``ALIGNMENT["max_ratio"]`` (corpus evidence there). The first and the last
  64, 128, ... events are also compared with the events next to them, so that
  a misaligned run at either end shorter than half a block is seen too.

The alignment check runs whatever follows DATA: two shifts can cancel out.
TEXT shortened in place moves DATA before its offsets (blanks after TEXT hide
it) and bytes inserted into DATA restore the file's size; HEADER, TEXT, $TOT
and the size then agree, nothing follows DATA, and only the events before the
insertion are misaligned (fuzzer seed 12, Sample_Well_A02.fcs).

Neither check can see a misaligned run of fewer than about 40 events at
either end, a rotation by whole channels onto channels of the same
distribution, or an insertion of whole events that keeps the tail padding;
those are counted by ``benchmarks/fuzz_reader.py``.
"""

from __future__ import annotations

import binascii
import re

import numpy as np

from ..errors import ReadError
from ._layout import Layout
from ._parse import Buffer, RawDataset, kw_opt_int

__all__ = ["ALIGNMENT", "SHORT_TAIL", "check_tail", "check_alignment", "check_crc", "crc_candidates"]

#: Unexplained bytes after DATA shorter than this are refused (the end of DATA pushed out by an
#: insertion); the corpus's shortest unexplained tail is 74 bytes (FlowIO's offset discrepancy
#: examples, 2 events), the others 948 bytes and more (LMD ANALYSIS, CyAn, MoFlo, a ZIP archive).
SHORT_TAIL = 64

#: Limits of :func:`check_alignment`, from the 43 readable corpus files and mutants of them.
ALIGNMENT: dict[str, float] = {
    # distance(last, first) at the declared alignment / the least distance at any other rotation.
    # All 43 readable corpus files (whether or not bytes follow their DATA) and 9 simulated tubes/bead
    # files: at most 0.96 (test_data_diamond_01.fcs: synthetic sorted data, nothing after DATA), then
    # 0.78 (cyflow_cube_8.fcs), 0.71 (SG_2014-09-26_Duplicate_Names.fcs), simulated tubes
    # up to 0.64; median about 0.35. Mutants with 1-8 bytes cut or inserted inside DATA: median 1.5-20
    # per file; some stay below 1 (one float32 channel rotated onto a like channel, FSC-A onto FSC-H,
    # or a break in the first block: see min_edge): then only the tail check can see them.
    "max_ratio": 1.25,
    # events per block compared: n/8 clipped to this range (16-event blocks of two like channels gave
    # 1.33 on a clean simulated file: too few events for a histogram)
    "min_block": 64,
    "max_block": 2048,
    # fewer events than this: nothing to compare (the tail check still applies)
    "min_events": 256,
    # the first and the last e events, e = this, twice this, ... up to half a block, each compared with the
    # block of events next to it: a shift of DATA's start cancelled by an insertion (or a break near DATA's
    # end hidden by padding) misaligns the events at one end only, and fewer than half a block of them leave
    # the first/last ratio under its limit. Corpus: at most 0.92 (stabilize.fcs, its first 64 events); 48 or
    # more events misaligned at one end of Sample_Well_A02, 3FITC_4PE_004, Accuri C6 or G11: 2.0 to 25
    # (under about 40 events: below the limit).
    "min_edge": 64,
}

_PAD = b" \x00\r\n\t\x1a"
# segments that may follow DATA, recognised by their first bytes (a ZIP archive: cyflow_cube_8.fcs;
# another dataset's HEADER), looked for this many bytes either side of DATA's end
_SIGNATURES = (b"PK\x03\x04", b"FCS2.0    ", b"FCS3.0    ", b"FCS3.1    ", b"FCS3.2    ")
_SIGNATURE_REACH = 16
_CRC = re.compile(rb"[ \x00\r\n\t\x1a]*[0-9A-Fa-f]{8}[ \x00\r\n\t\x1a]*\Z")
_HEX8 = re.compile(rb"[0-9A-Fa-f]{8}\Z")


def _analysis_start(ds: RawDataset) -> int | None:
    """Absolute start of a non-empty ANALYSIS segment declared by TEXT or HEADER, else None."""
    kw = ds.keywords
    begin, end = kw_opt_int(kw, "beginanalysis"), kw_opt_int(kw, "endanalysis")
    if begin and end and end > begin:
        return ds.offset + begin
    h0, h1 = ds.header_analysis
    if h0 is not None and h1 is not None and h1 > h0 > ds.offset:
        return h0
    return None


def check_tail(buf: Buffer, ds: RawDataset, layout: Layout, next_offset: int | None, name: str) -> int:
    """Refuse a dataset whose DATA is followed by bytes that show it was shifted; else the bytes that follow.

    ``next_offset`` is the absolute start of the next dataset (its HEADER), if any;
    the bytes between DATA's end and it (or the end of ``buf``) are the tail.

    Raises
    ------
    ReadError
        The tail is a broken CRC field, a short run of bytes that are neither
        padding nor a CRC, or a declared ANALYSIS segment right after DATA does
        not start with the TEXT delimiter.
    """
    end = layout.start + layout.nbytes
    if layout.nbytes == 0 or end > len(buf) or "events_fewer_than_tot" in layout.quirks:
        return 0  # (a truncated file read on request: its last partial event is what follows)
    stop = next_offset if next_offset is not None and next_offset >= end else len(buf)
    analysis = _analysis_start(ds)
    if analysis is not None and analysis < len(buf):
        delim = bytes(buf[ds.text_span[0] : ds.text_span[0] + 1])
        if bytes(buf[analysis : analysis + 1]) != delim:
            raise ReadError(
                f"{name}: the ANALYSIS segment declared at byte {analysis} does not start with the TEXT "
                "delimiter: the segments were shifted (TEXT or DATA edited in place?); re-export the file"
            )
        if end <= analysis < stop:
            return analysis - end
    tail = bytes(buf[end : min(stop, end + SHORT_TAIL)])
    if not tail.strip(_PAD):
        if ds.version.startswith("3") and _HEX8.match(bytes(buf[max(layout.start, end - 8) : end])) and not tail:
            raise ReadError(
                f"{name}: DATA ends with what looks like the CRC field (8 ASCII hex digits) and nothing "
                "follows it: DATA runs over its end (bytes cut inside DATA?); re-export the file"
            )
        return stop - end
    if _CRC.match(tail):
        if ds.version.startswith("3") and stop - end <= SHORT_TAIL:
            check_crc(buf, ds, end, tail, name)
        return stop - end
    if stop - end >= SHORT_TAIL:
        _check_signature(buf, end, name)
        return stop - end
    raise ReadError(
        f"{name}: {stop - end} bytes after DATA are neither padding nor a CRC field: DATA was shifted "
        "(bytes inserted into or cut from it?) and its events would be read misaligned; re-export the file"
    )


def _check_signature(buf: Buffer, end: int, name: str) -> None:
    """Refuse when a known segment signature lies a few bytes off DATA's end (a cut or an insertion).

    cyflow_cube_8.fcs has a ZIP archive ("PK\\x03\\x04") right after DATA; a byte cut near the end of
    DATA moved it one byte back, and the alignment check does not see the last 20 events.
    """
    near = bytes(buf[max(0, end - _SIGNATURE_REACH) : end + _SIGNATURE_REACH + 8])
    base = max(0, end - _SIGNATURE_REACH)
    for sig in _SIGNATURES:
        at = near.find(sig)
        if at >= 0 and base + at != end:
            raise ReadError(
                f"{name}: the segment after DATA starts {base + at - end:+d} bytes off DATA's end: DATA was "
                "shifted (bytes inserted into or cut from it?); re-export the file"
            )


def crc_candidates(buf: Buffer, offset: int, data_end: int, field_at: int) -> set[int]:
    """CRC-16-CCITT values (polynomial 0x1021, start 0 or 0xFFFF) a writer may have put after DATA.

    Over the dataset's bytes from its HEADER through the last byte of DATA, or
    through the last byte before the field (padding included).
    """
    out = set()
    for stop in {data_end, field_at}:
        for start_value in (0, 0xFFFF):
            out.add(binascii.crc_hqx(buf[offset:stop], start_value))
    return out


def check_crc(buf: Buffer, ds: RawDataset, data_end: int, tail: bytes, name: str) -> None:
    """Refuse a dataset whose non-zero FCS 3.1 CRC field does not match its bytes (``tail`` holds the field).

    FCS 3.x puts a CRC-16-CCITT of the dataset in 8 ASCII characters after
    DATA, "00000000" when not computed (no corpus file computes one). The value
    is accepted read as hexadecimal or as decimal, and in any of the variants
    of :func:`crc_candidates`: a wrong 16-bit CRC matches one of them by chance
    about once in 8,000 files; a flipped bit never does.

    Raises
    ------
    ReadError
        The field is not zero and matches no variant.
    """
    field = tail.strip(_PAD)
    if not field.strip(b"0"):
        return
    readings = {int(field, 16)}
    if field.isdigit():
        readings.add(int(field))
    readings = {v for v in readings if v <= 0xFFFF}
    field_at = data_end + tail.index(field)
    if readings & crc_candidates(buf, ds.offset, data_end, field_at):
        return
    raise ReadError(
        f"{name}: the CRC after DATA does not match the file's bytes (DATA or TEXT changed after the file "
        "was written, or a CRC of a kind hladr does not know); re-export the file"
    )


def _counts(rows: np.ndarray) -> np.ndarray:
    """(E, 32) counts of each high nibble, then each low nibble, at each byte position of (B, E) uint8 events.

    High nibbles alone (16 bins) left 1 in 7 one-channel rotations of a float32 tube undetected."""
    e = rows.shape[1]
    idx = (np.arange(e, dtype=np.intp)[None, :] * 256 + rows).ravel()
    full = np.bincount(idx, minlength=e * 256).reshape(e, 16, 16)  # [position, high nibble, low nibble]
    return np.concatenate([full.sum(axis=2), full.sum(axis=1)], axis=1).astype(np.float64)


def _ratio(ref: np.ndarray, probe: np.ndarray) -> float | None:
    """Distance of the byte profile ``probe`` from ``ref`` ((E, 32) shares) at the declared alignment over the
    least at another rotation; None when another rotation matches exactly (constant bytes: no evidence)."""
    w = ref.shape[0]
    dist = np.empty(w)
    pos = np.arange(w)
    step = max(1, 4096 // w)  # rotations per slice: at most ~4096 x 32 values at once, however wide an event
    for k0 in range(0, w, step):
        k = pos[k0 : k0 + step]
        dist[k] = np.abs(ref[None] - probe[(pos[None, :] + k[:, None]) % w]).sum(axis=(1, 2))
    other = float(dist[1:].min())
    return float(dist[0]) / other if other > 0 else None  # fcs1_cleaned.lmd's empty channels: None


def _prefix_counts(raw: np.ndarray, bounds: list[int]) -> dict[int, np.ndarray]:
    """:func:`_counts` of the first b events of ``raw``, for each b in ``bounds`` (each event counted once)."""
    out, total, done = {}, np.zeros((raw.shape[1], 32)), 0
    for b in sorted(set(bounds)):
        total = total + _counts(raw[done:b])
        out[b], done = total, b
    return out


def alignment_ratios(buf: Buffer, layout: Layout) -> list[tuple[float, str]]:
    """(ratio, the events compared) of each comparison of the module docstring that says something.

    The last block of events with the first; then, for e = ``min_edge``,
    2 x ``min_edge``, ... up to half a block, the first e events with the
    block right after them, and the last e with the block right before them.
    Empty where DATA is not byte-aligned words, is narrower than 2 bytes, or
    holds too few events.
    """
    n, width = layout.n_events, sum(layout.word_bytes)
    if layout.storage != "bytes" or width < 2 or n < ALIGNMENT["min_events"]:
        return []
    if layout.start + n * width > len(buf):
        return []
    raw = np.frombuffer(buf, np.uint8, count=n * width, offset=layout.start).reshape(n, width)
    size = int(np.clip(n // 8, ALIGNMENT["min_block"], ALIGNMENT["max_block"]))
    edges = []
    e = int(ALIGNMENT["min_edge"])
    while 2 * e <= size:  # n >= 8 * size > e + size: the blocks fit
        edges.append(e)
        e *= 2
    bounds = [size, *edges, *(e + size for e in edges)]
    head, tail = _prefix_counts(raw, bounds), _prefix_counts(raw[::-1], bounds)
    found = [(_ratio(head[size] / size, tail[size] / size), "the last events' bytes line up with the first events'")]
    for e in edges:
        first_e = _ratio((head[e + size] - head[e]) / size, head[e] / e)
        last_e = _ratio((tail[e + size] - tail[e]) / size, tail[e] / e)
        found += [
            (first_e, f"the first {e} events' bytes line up with the events after them"),
            (last_e, f"the last {e} events' bytes line up with the events before them"),
        ]
    return [(r, what) for r, what in found if r is not None]


def alignment_ratio(buf: Buffer, layout: Layout) -> float | None:
    """The largest of :func:`alignment_ratios` (what :func:`check_alignment` bounds); None where none says anything."""
    ratios = alignment_ratios(buf, layout)
    return max(r for r, _ in ratios) if ratios else None


def check_alignment(buf: Buffer, layout: Layout, name: str) -> None:
    """Refuse DATA whose events at one end line up with the others only at another byte rotation.

    Run whatever follows DATA (see the module docstring: two shifts can
    cancel out and leave nothing after DATA).

    Raises
    ------
    ReadError
        A ratio of :func:`alignment_ratios` exceeds ``ALIGNMENT["max_ratio"]``.
    """
    ratios = alignment_ratios(buf, layout)
    if not ratios:
        return
    ratio, what = max(ratios)
    if ratio > ALIGNMENT["max_ratio"]:
        raise ReadError(
            f"{name}: {what} only at another offset (alignment ratio {ratio:.2f} > {ALIGNMENT['max_ratio']:g}): "
            "DATA was shifted inside the file (bytes inserted or cut, or TEXT edited in place?); re-export the file"
        )
