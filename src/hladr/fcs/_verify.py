"""Proofs that a reading of an FCS dataset is the file's own, or a refusal.

Private to :mod:`hladr.fcs.read`. The layout rules of :mod:`hladr.fcs._layout`
check that a DATA segment holds exactly $TOT events; they cannot see a file
whose TEXT was edited in place without its offsets being updated (a rename tool
lengthening $FIL by 24 bytes): HEADER, $BEGINDATA and $ENDDATA still agree with
each other and with $TOT, but DATA now starts 24 bytes into the old TEXT, and
every event is read misaligned. Two independent checks close that gap:

- :func:`text_overrun`: the TEXT segment must end where HEADER says. When the
  bytes right after it continue the keyword/value text, the TEXT ran past its
  HEADER end by a provable number of bytes (returned, for
  :func:`shifted_dataset` to re-read the dataset with every offset moved by it);
  when TEXT ends in binary bytes, its end is unknown and the file is refused.
- :func:`check_plausible`: the decoded events must look like events: float
  channels finite and within a wide multiple of their range, a time channel
  (nearly) non-decreasing. Misaligned float data fail the first, shifted
  columns (a shift by whole values) the second. Thresholds: ``PLAUSIBILITY``.

What cannot be proved: a mutation that keeps the structure and changes what the
bytes mean ($BYTEORD swapped on integer data, $PnB 16 -> 8 with $TOT doubled,
a flipped bit inside DATA) yields values in range; only the time check, where a
time channel exists, and the range checks of float data can catch it. Those
cases are counted by ``benchmarks/fuzz_reader.py``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..errors import ReadError
from ._parse import RawDataset, kw_opt_int, quote_value
from ._text import parse_text

__all__ = [
    "PLAUSIBILITY", "REPAIR_QUIRKS", "text_overrun", "padding_overrun", "shifted_dataset", "check_plausible",
]

#: Limits of :func:`check_plausible`; each from the real corpus (../shared/realdata) with a margin.
PLAUSIBILITY: dict[str, float] = {
    # float values beyond this multiple of the channel's upper limit ($PnR, or 10^f1*f2 with
    # $PnE) count as impossible; the corpus reaches 353x (a BD width channel, FCS 2.0 export).
    "range_multiple": 1e3,
    # share of a float channel's values that may be NaN/inf or beyond range_multiple: the
    # corpus has at most 0.01 % (itn_02.fcs, log-scaled floats overflowing); misaligned
    # float32 words put about 40 % there.
    "max_impossible_share": 0.01,
    # share of steps back in time a time channel may take (counter wraps, merged acquisitions):
    # the corpus has at most 0.3 % (CyAn); a channel holding another channel's values ~50 %.
    "max_time_backsteps": 0.05,
    # fewer events than this say nothing about the time channel
    "min_time_events": 100,
    # rows looked at (evenly spaced, deterministic): shares need no more, and a 1M-event
    # tube costs ~1 ms
    "sample_rows": 65536,
    # an event-counter channel (by name, see _COUNTER) that steps by exactly +1 over its first
    # this many events must step so throughout (wrapping at its range): CyAn's "Event Count" does
    # at all 5,788 steps; events read misaligned after bytes cut from or inserted into DATA
    # (hidden by CyAn's 2,418 unexplained bytes after DATA) break it
    "counter_head": 64,
}

#: Quirks meaning the file was read by a fallback or a repair of its offsets: the reading is
#: proven (or it would have been refused) but a result from it must be reviewed (not ``pass``).
REPAIR_QUIRKS = frozenset({"flowio_error_fallback", "text_overran_header_offsets"})

_PAD = b" \x00\r\n\t"
_LOOKAHEAD = 1 << 16  # the longest in-place TEXT edit recognised
# bytes TEXT may hold: printable ASCII, tab/CR/LF, and anything above 0x7f (Latin-1, UTF-8)
_TEXT_BYTES = re.compile(rb"[\t\n\r\x20-\x7e\x80-\xff]*")
_PAD_BYTES = (b"", b" ", b"\x00", b"\r", b"\n", b"\t")
_KEYWORD = re.compile(r"^[!-~][ -~]{0,127}$")  # a keyword: printable ASCII, no leading blank
_COUNTER = re.compile(r"event[\s_-]*(count|counter|number|num|no\.?|#)?")
_OFFSET_KEYS = ("begindata", "enddata", "beginanalysis", "endanalysis", "beginstext", "endstext")


def _is_keyword(token: str) -> bool:
    return bool(_KEYWORD.match(token)) and any(c.isalpha() for c in token)


def _continues_text(tail: bytes, delim: bytes, closed: bool) -> bool:
    """Whether ``tail`` (ending with the delimiter) is the rest of a keyword/value stream.

    After a closed TEXT it must be whole ``key delim value delim`` pairs; after a
    cut one, the rest of the last value first, then such pairs.
    """
    tokens = tail[:-1].decode("latin-1").split(delim.decode("latin-1"))
    if not closed:
        tokens = tokens[1:]  # the rest of the value that was cut
    if len(tokens) % 2 or (closed and not tokens):
        return False
    return all(_is_keyword(k) for k in tokens[0::2]) and all(v.strip() for v in tokens[1::2])


def _text_run(ahead: bytes, delim: bytes) -> bytes:
    """The longest prefix of ``ahead`` made of TEXT-like bytes (printable ASCII, tab, CR, LF, the delimiter)."""
    m = re.match(rb"[\t\n\r\x20-\x7e" + re.escape(delim) + rb"]*", ahead)
    return ahead[: m.end()] if m else b""


def text_overrun(buf: bytes | memoryview, ds: RawDataset, name: str) -> int:
    """Bytes by which TEXT continues past the end HEADER gives (0: it ends there).

    After a TEXT that ends with its delimiter, DATA (or padding) must not start
    with ``key delim value delim`` text; after one that does not (cut by a
    lengthening edit), the rest of the cut value and such pairs may follow, or
    padding (Cytek SpectroFlo omits the closing delimiter, then pads).

    Raises
    ------
    ReadError
        TEXT does not end with its delimiter, and what follows is neither
        padding nor the rest of the TEXT (it ends in binary data: HEADER's TEXT
        end points into DATA).
    """
    t0, t1 = ds.text_span
    text = bytes(buf[t0 : t1 + 1])
    delim = text[:1]
    body = text.rstrip(_PAD)
    closed = len(body) > 1 and body.endswith(delim)
    ahead = bytes(buf[t1 + 1 : t1 + 1 + _LOOKAHEAD])
    stretch = _text_run(ahead, delim)
    end = stretch.rfind(delim)
    if end >= 0 and stretch[:1] not in _PAD_BYTES and _continues_text(stretch[: end + 1], delim, closed):
        return end + 1
    if closed:
        return 0
    last = body[1:].rsplit(delim, 1)[-1]
    if _TEXT_BYTES.fullmatch(last) and ahead[:1] in (b"", b" ", b"\x00"):
        return 0
    raise ReadError(
        f"{name}: TEXT segment does not end with its delimiter at byte {t1} and binary data follow: "
        "HEADER's TEXT offsets are wrong (file edited in place?); re-export the file"
    )


def padding_overrun(buf: bytes | memoryview, ds: RawDataset, data_start: int) -> int:
    """Padding bytes that run from the end of TEXT into a DATA segment starting right after it (0: none).

    TEXT ending in padding (G11.fcs pads with blanks and NULs) that was
    lengthened in place pushes that padding past HEADER's end: DATA then
    starts with it: a run of the very byte TEXT ends with. No file of the corpus
    starts DATA so; the length of the run is the shift to prove.
    """
    t1 = ds.text_span[1]
    pad = bytes(buf[t1 : t1 + 1])
    if data_start != t1 + 1 or pad not in (b" ", b"\x00"):
        return 0
    ahead = bytes(buf[t1 + 1 : t1 + 1 + _LOOKAHEAD])
    return len(ahead) - len(ahead.lstrip(pad))  # G11.fcs: blanks end TEXT, DATA starts with NULs: 0


def shifted_dataset(buf: bytes | memoryview, ds: RawDataset, shift: int, name: str) -> RawDataset:
    """``ds`` re-read as if TEXT had been lengthened by ``shift`` bytes in place.

    TEXT is parsed again up to its real end; every segment offset that lies after
    it (HEADER DATA/ANALYSIS, $BEGINDATA, $ENDDATA, $BEGIN/ENDANALYSIS,
    $BEGIN/ENDSTEXT) moves by ``shift``, as the bytes it points to did.
    """
    t0, t1 = ds.text_span
    kw, quirks = parse_text(buf, t0, t1 + shift, name)
    moved = dict(kw)
    for key in _OFFSET_KEYS:
        value = kw_opt_int(kw, key)
        if value is not None and value > t1 - ds.offset:
            moved[key] = str(value + shift)

    def _move(v: int | None) -> int | None:
        return v + shift if v is not None and v > t1 else v

    return replace(
        ds,
        header_data=(_move(ds.header_data[0]), _move(ds.header_data[1])),
        header_analysis=(_move(ds.header_analysis[0]), _move(ds.header_analysis[1])),
        text_span=(t0, t1 + shift),
        keywords=moved,
        quirks=(*ds.quirks, *quirks, "text_overran_header_offsets"),
    )


def check_plausible(
    data: np.ndarray, pnn: Sequence[str], limits: Sequence[float], datatype: str, name: str
) -> None:
    """Refuse events that cannot be a cytometer's (see ``PLAUSIBILITY``); return None otherwise.

    Raises
    ------
    ReadError
        A float channel with too many NaN/inf or impossibly large values, or a
        time channel running backwards: the bytes were not read as written.
    """
    n = data.shape[0]
    if n == 0:
        return
    step = max(1, -(-n // int(PLAUSIBILITY["sample_rows"])))
    rows = data[::step]
    with np.errstate(all="ignore"):
        if datatype in ("F", "D"):
            bound = np.asarray(limits, np.float64) * PLAUSIBILITY["range_multiple"]
            bad = ~(np.abs(rows.astype(np.float64)) <= bound)  # NaN compares False: counted
            share = bad.mean(axis=0)
            j = int(np.argmax(share))
            if share[j] > PLAUSIBILITY["max_impossible_share"]:
                raise ReadError(
                    f"{name}: {share[j]:.0%} of the values of channel {quote_value(pnn[j])} are NaN, infinite or "
                    f"beyond {PLAUSIBILITY['range_multiple']:g}x its range: DATA is not read as "
                    "written (wrong offsets, $BYTEORD or $DATATYPE?)"
                )
        _check_counters(data, pnn, limits, name)
        if n < PLAUSIBILITY["min_time_events"]:
            return
        for j, label in enumerate(pnn):
            if label.replace("$", "").strip().lower() != "time":
                continue
            col = rows[:, j].astype(np.float64)
            back = float(np.mean(np.diff(col) < 0))
            if back > PLAUSIBILITY["max_time_backsteps"]:
                raise ReadError(
                    f"{name}: the time channel {quote_value(label)} runs backwards at {back:.0%} of the events: "
                    "DATA is not read as written (shifted offsets or a wrong layout?)"
                )


def _check_counters(data: np.ndarray, pnn: Sequence[str], limits: Sequence[float], name: str) -> None:
    """Refuse an event counter that counts +1 per event at first and then breaks (see ``PLAUSIBILITY``).

    Only channels named as event counters are looked at (a synthetic channel
    that happens to count, FlowKit's diamond example, is data); a counter that
    does not step by exactly 1 over its first events is not checked either.
    """
    head = int(PLAUSIBILITY["counter_head"])
    if data.shape[0] <= head:
        return
    for j, label in enumerate(pnn):
        if not _COUNTER.fullmatch(label.replace("$", "").strip().lower()):
            continue
        col = data[:, j].astype(np.float64)
        step = np.diff(col)
        if not np.all(step[:head] == 1):
            continue
        # a wrap: from the top of the channel's range back to 0 or 1
        wrap = (col[1:] <= 1) & (col[:-1] >= float(limits[j]) - 2)
        broken = np.flatnonzero((step != 1) & ~wrap)
        if broken.size:
            raise ReadError(
                f"{name}: the event counter {quote_value(label)} counts +1 per event, then jumps at event "
                f"{int(broken[0]) + 2}: the events from there are not read as written (bytes cut from or "
                "inserted into DATA?); re-export the file"
            )
