"""Loading an FCS file into one buffer, and its SHA-256: the reader's file I/O.

Private to :mod:`hladr.fcs.read`, which parses and decodes what :func:`load`
returns. Moved out of read.py so that the I/O (threads, ``preadv``, the
background digest, memory bounded by the declared extent) is apart from the
FCS rules.

The file is read once, into one NumPy buffer (``readinto``, no ``bytes``
copy). Its SHA-256 is computed from that buffer first, except for files of
8 MiB or more (``_BACKGROUND_HASH_BYTES``): a background thread reads and hashes
those on its own (``hashlib.file_digest``, 256 KiB at a time, from the page
cache the main read fills), so that hashing (~18 ms for a 1M-event tube, a third
of the work per tube) overlaps decoding and gating on the second core instead
of preceding them. ``Events.sha256`` waits for it when read. The thread and
the main read each check the file's identity (device, inode, size, mtime) at
their start and end; any difference makes the digest raise ``ReadError`` ("the
file changed while it was being read"), so a digest never describes bytes
other than the ones decoded. Our parser
(:mod:`hladr.fcs._parse`, with :mod:`hladr.fcs._layout` for where DATA is) then
reads HEADER and TEXT from it, to list the datasets and to check sizes before
anything else is allocated; our decoder
(:func:`hladr.fcs._decode.decode_events`) converts DATA from zero-copy views of
it. For float32 and 32-bit integer DATA that is nearly the whole file (all but
1 MiB) the float32 events are written over DATA itself (byte swap, masks and
scaling included) and keep the buffer; otherwise they are one new array and
the buffer is dropped when the call returns. Either way, reading allocates
about the file size once, besides the events. With ``threads`` above one (the
default when no background digest holds the other core, e.g. ``sha256=False``)
a large file is read in slices of bytes (``os.preadv``) and decoded in slices
of rows by several threads at once (:mod:`hladr._parallel`).

Memory follows what the datasets declare, not the file's size: for a file
larger than its declared extent (:func:`hladr.fcs._extent.declared_extent`,
following $NEXTDATA) plus 1 MiB, only that much is read, and the digest thread
hashes the whole file, streaming.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .._parallel import map_slices, thread_count
from ..errors import ReadError
from ..safe_text import printable
from . import _extent as fx

__all__ = ["BackgroundDigest", "load", "one_line", "sha256_file", "threads_beside"]

_BACKGROUND_HASH_BYTES = 8 << 20  # files this large are hashed in a background thread (see the docstring)
_MIN_READ_BYTES_PER_THREAD = 8 << 20  # with threads=None, a reading thread reads at least this much
_HEAD_BYTES = 1 << 16  # read first, to find where DATA starts (HEADER and TEXT fit in it)
_ALIGN = 64
_BEGINDATA = re.compile(rb"\$BEGINDATA[^0-9A-Za-z$]\s*(\d{1,20})", re.IGNORECASE)


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, hex; the identity of an input in every result."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()  # as the background digest reads it


def one_line(text: object, limit: int = 200) -> str:
    """``text`` on one line, control characters shown as ``?``, at most ``limit`` characters."""
    line = printable(" ".join(str(text).split()))
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _data_start_hint(head: bytes) -> int:
    """Where DATA probably starts (TEXT $BEGINDATA, else HEADER), from the file's first bytes; 0 if unknown.

    Only used to align the read buffer, so that DATA can become the event
    matrix (:func:`hladr.fcs._decode.decodes_in_place`); a wrong hint costs a copy.
    """
    m = _BEGINDATA.search(head)
    if m:
        return int(m.group(1))
    field = head[26:34].strip()
    return int(field) if field.isdigit() else 0


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


class BackgroundDigest:
    """SHA-256 of a file, computed by a thread that reads the file on its own (see the module docstring).

    ``result()`` waits, then checks that the file was the same (device, inode,
    size, mtime) when the main read opened it, when the thread opened it, and
    when each finished; the main read reports its end with ``main_read_done``.
    """

    def __init__(self, path: Path, opened: os.stat_result) -> None:
        self._name = path.name
        self._opened = _identity(opened)
        self._main_end: tuple[int, int, int, int] | None = None
        self._future: Future = Future()
        threading.Thread(target=self._work, args=(path,), name="hladr-sha256", daemon=True).start()

    def _work(self, path: Path) -> None:
        try:
            with open(path, "rb") as fh:
                start = _identity(os.fstat(fh.fileno()))
                digest = hashlib.file_digest(fh, "sha256").hexdigest()  # releases the GIL while hashing
                end = _identity(os.fstat(fh.fileno()))
            self._future.set_result((digest, start, end))
        except BaseException as exc:  # handed to whoever asks for the digest
            self._future.set_exception(exc)

    def main_read_done(self, st: os.stat_result) -> None:
        self._main_end = _identity(st)

    def result(self) -> str:
        try:
            digest, start, end = self._future.result()
        except OSError as exc:
            raise ReadError(f"{self._name}: cannot be hashed ({one_line(exc.strerror or exc)})") from None
        if not self._opened == start == end == self._main_end:
            raise ReadError(f"{self._name}: the file changed while it was being read; read it again")
        return digest


def _read_fully(fd: int, view: memoryview, offset: int) -> int:
    """Bytes read into ``view`` from ``offset`` (fewer only where the file ends first)."""
    got = 0
    while got < len(view):
        k = os.preadv(fd, [view[got:]], offset + got)  # one call returns at most ~2 GB
        if not k:
            break
        got += k
    return got


def threads_beside(digest: BackgroundDigest | None, threads: int | None) -> int | None:
    """Threads for reading and decoding: one while a background digest runs (it has the other core, and
    more threads only contend with it; measured), else ``threads`` as given."""
    return 1 if digest is not None and threads is None else threads


def _read_body(fh: BinaryIO, view: memoryview, offset: int, threads: int | None) -> int:
    """Fill ``view`` from byte ``offset`` of the file; the number of bytes read from there without a gap.

    A large file is read in slices by several threads at once (``os.preadv``
    releases the GIL): copying from the page cache is bound by one core's
    memory copy, and a 1M-event tube reads in about half the time on two.
    """
    size = len(view)
    parts = thread_count(size, threads, _MIN_READ_BYTES_PER_THREAD) if hasattr(os, "preadv") else 1
    if parts == 1:
        got = 0
        while got < size:
            k = fh.readinto(view[got:])  # a single read returns at most ~2 GB
            if not k:
                break  # the file shrank since fstat
            got += k
        return got
    fd = fh.fileno()
    got = 0
    for lo, hi, k in map_slices(lambda lo, hi: _read_fully(fd, view[lo:hi], offset + lo), size, parts):
        got += k
        if k < hi - lo:
            break  # the file shrank since fstat: only the bytes before the first gap count
    return got


def load(
    path: str | os.PathLike, *, digest_wanted: bool = True, threads: int | None = None
) -> tuple[Path, memoryview, BackgroundDigest | None]:
    """The whole file in one writable uint8 buffer, read once with ``readinto`` (no ``bytes`` copy).

    Parsing, hashing and decoding all work on this buffer (decoding through
    zero-copy views, or in place), so reading a file allocates it about once.
    The buffer is placed so that (probably) DATA starts on a 64-byte boundary.
    Files of ``_BACKGROUND_HASH_BYTES`` or more also get their digest started in
    a background thread (third value; None for smaller files).
    """
    p = Path(path)
    if not p.exists():
        raise ReadError(f"{p}: no such file")
    if not p.is_file():
        raise ReadError(f"{p}: is not a file")
    digest = None
    try:
        with open(p, "rb", buffering=0) as fh:
            opened = os.fstat(fh.fileno())
            size = opened.st_size
            # memory by what the datasets declare, not by the file's size (a tube padded to 6 GiB)
            wanted = size
            if size > _HEAD_BYTES + fx.EXTENT_SLACK:
                wanted = min(size, fx.declared_extent(fh.fileno(), size) + fx.EXTENT_SLACK)
            if digest_wanted and (size >= _BACKGROUND_HASH_BYTES or wanted < size):
                digest = BackgroundDigest(p, opened)  # hashes the whole file, whatever is read
            size = wanted
            head = fh.read(min(size, _HEAD_BYTES))
            size = max(size, len(head))
            raw = np.empty(size + _ALIGN, np.uint8)
            pad = -(raw.ctypes.data + _data_start_hint(head)) % _ALIGN
            buf = raw[pad : pad + size]
            buf[: len(head)] = np.frombuffer(head, np.uint8)
            view = memoryview(buf)
            got = len(head) + _read_body(fh, view[len(head) :], len(head), threads_beside(digest, threads))
            fh.seek(got)
            # the file grew since fstat: read it to the end (unless only its declared part is read)
            more = fh.read() if got == size and size == opened.st_size else b""
            if digest is not None:
                digest.main_read_done(os.fstat(fh.fileno()))
    except OSError as exc:
        raise ReadError(f"{p}: cannot be read ({one_line(exc.strerror or exc)})") from None
    if got < size:
        return p, view[:got], digest
    if more:
        return p, memoryview(np.concatenate([buf, np.frombuffer(more, np.uint8)])), digest
    return p, view, digest
