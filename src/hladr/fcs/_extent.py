"""How many bytes of a file its datasets declare, from HEADER and TEXT alone.

Private to :mod:`hladr.fcs.read`, which reads a file into memory whole: a 321 KB
tube padded to 6 GiB (a copy gone wrong, a sparse file) took 12.6 GB of memory.
:func:`declared_extent` follows the $NEXTDATA chain with small positional reads
(HEADER, then TEXT) and returns the end of the last segment any dataset names
(TEXT, STEXT, DATA, ANALYSIS, in HEADER or TEXT), so that the reader allocates
by what is declared, not by the file's size. Whatever it cannot parse makes it
answer "the whole file": the reader's own parser then reports the problem.
"""

from __future__ import annotations

import os

from ..errors import ReadError
from ._parse import HEADER_LEN, MAX_DATASETS, kw_opt_int
from ._text import parse_text

__all__ = ["declared_extent", "EXTENT_SLACK"]

# Bytes read beyond the declared extent: the layout rules look a little past the declared
# ends (off-by-one $ENDDATA, TEXT edited in place by up to 64 KiB), and a few more MiB of a
# file are cheap; only what lies beyond this is left unread.
EXTENT_SLACK = 1 << 20
_MAX_TEXT = 1 << 26  # a TEXT segment larger than this is not parsed here (the whole file is read)
_END_KEYS = ("enddata", "endanalysis", "endstext")


def _field(head: bytes, i: int) -> int | None:
    text = head[10 + 8 * i : 18 + 8 * i].strip()
    return int(text) if text.isdigit() else None


def declared_extent(fd: int, size: int) -> int:
    """Bytes from the file's start to the end of the last segment its datasets declare (at most ``size``).

    ``fd`` is an open file descriptor (read with ``os.pread``); returns ``size``
    whenever a HEADER or TEXT cannot be parsed.
    """
    offset, extent = 0, 0
    for _ in range(MAX_DATASETS):
        head = os.pread(fd, HEADER_LEN, offset)
        fields = [_field(head, i) for i in range(6)] if len(head) == HEADER_LEN else []
        if not fields or fields[0] is None or fields[1] is None or fields[1] < fields[0]:
            return size
        t0, t1 = offset + fields[0], offset + fields[1]
        if t1 - t0 > _MAX_TEXT or t1 >= size:
            return size
        try:
            kw, _ = parse_text(os.pread(fd, t1 - t0 + 1, t0), 0, t1 - t0, "")
        except ReadError:
            return size
        ends = [t1, *(offset + v for v in fields[2:] if v is not None)]
        ends += [offset + v for v in (kw_opt_int(kw, k) for k in _END_KEYS) if v is not None]
        extent = max(extent, max(ends) + 1)
        step = kw_opt_int(kw, "nextdata") or 0
        if step <= 0:
            break
        if offset + step >= size:
            return size  # $NEXTDATA past the end of the file (os.pread would overflow on a huge one)
        offset += step
        extent = max(extent, offset + HEADER_LEN)
    return min(extent, size)
