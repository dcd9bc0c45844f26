"""Seeded mutations of FCS files and the reader's invariant: read right, or refused.

Shared by ``tests/robustness/test_fuzz_reader.py`` (a few hundred cases in CI)
and ``benchmarks/fuzz_reader.py`` (thousands). Every mutation takes the file's
bytes and a ``random.Random`` and returns the mutant, a short label
("kind:detail") and, for mutations that replace one TEXT value (kinds in
``KEYWORD_EDITS``), the keyword value it now declares. :func:`judge` reads a
mutant and classifies the outcome:

- ``right``: the events equal the clean file's (NaN where NaN);
- ``refused``: a one-line ``ReadError`` starting with the file name;
- ``changed``: the reader did what the mutant declares, which differs from the
  clean file. Only when some mutation applied is a keyword edit or a flipped
  DATA byte, and the events equal :func:`declared_events`: the clean file's own
  bytes (the segments as the instrument wrote them) read with the edited keyword
  values, except in at most one event per flipped DATA byte (structural
  mutations applied with them get no allowance: they must change nothing). Renaming a channel
  to "Time", another valid $PnG, $PnE or $PnR (integer bit masks), a flipped
  DATA bit: the file says so and no reader can know better without a checksum.
  A byte flipped inside a keyword renames it (``text_flip_key``: the old keyword
  is gone, the new one holds its value). A truncation inside DATA followed by an append that refills it (``truncate``
  then ``append``, nothing else) replaces DATA's bytes from the cut on without
  moving any: it is judged like flipped bytes, each event holding a replaced
  byte may differ, only if the reader read DATA where the clean file has it.
  So is an insertion and a cut of the same size, both inside DATA, that leave
  every byte outside DATA as it was (the bytes between them are shifted: DATA
  edited in place, which no reader can see without a CRC).
  A keyword edit that also moves DATA (a value lengthened in place) is
  "changed" only if the reader found DATA where it now is;
- ``misread``: anything else that is not the clean file's events: misaligned
  DATA, shifted segments, a wrong event count, or a "changed" candidate that
  differs from its declared reading (or whose declared reading is refused);
- ``traceback``: any other exception (or the reader's "unexpected" safety net);
- ``hang``: no answer within the time limit.
"""

from __future__ import annotations

import os
import random
import re
import signal
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from hladr.errors import ReadError
from hladr.fcs.read import read_fcs

#: Mutations that only replace one TEXT value (whatever that does to the offsets): they also return the
#: keyword they declare, and a reading equal to the clean file read with that keyword is "changed".
KEYWORD_EDITS = frozenset({
    "text_lengthen", "text_lengthen_any", "text_shorten", "layout", "pnb_same_size", "datatype", "byteord",
    "pne", "png", "png_valid", "mode", "timestep", "unused_keyword", "text_flip_value", "text_flip_key",
})  # fmt: skip
TIMEOUT_S = 10
# (mutant, label, keywords it declares: {key as the reader keys it: value}); the last is {} when
# the mutation is structural (DATA cut or inserted, offsets, HEADER, delimiters, truncation).
Mutant = tuple[bytes, str, dict[str, str | None]]


class _Timeout(Exception):
    pass


def _on_alarm(signum, frame):  # noqa: ARG001
    raise _Timeout


def _text(buf: bytes) -> tuple[int, int] | None:
    try:
        t0, t1 = int(buf[10:18]), int(buf[18:26])
    except ValueError:
        return None
    return (t0, t1) if 58 <= t0 < t1 < len(buf) else None


def _values(buf: bytes) -> list[tuple[str, int, int]]:
    """(KEYWORD, value start, value end) of the first dataset's TEXT."""
    span = _text(buf)
    if span is None:
        return []
    t0, t1 = span
    d = re.escape(buf[t0 : t0 + 1])
    out = []
    for m in re.finditer(rb"(?<=" + d + rb")([^" + d + rb"]+)" + d + rb"([^" + d + rb"]*)", buf[t0 : t1 + 1]):
        out.append((m.group(1).decode("latin-1").strip().upper(), t0 + m.start(2), t0 + m.end(2)))
    return out


def _set(buf: bytes, span: tuple[str, int, int], value: bytes) -> bytes:
    _, v0, v1 = span
    return buf[:v0] + value + buf[v1:]


def _edit(buf: bytes, span: tuple[str, int, int], value: bytes, label: str) -> Mutant:
    """``buf`` with one TEXT value replaced, and the keyword it now declares (as the reader keys it)."""
    key = span[0].lower()
    key = key[1:] if key.startswith("$") else key
    return _set(buf, span, value), label, {key: _decode(value)}


def _decode(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _pick(buf: bytes, rng: random.Random, pattern: str) -> tuple[str, int, int] | None:
    spans = [s for s in _values(buf) if re.fullmatch(pattern, s[0])]
    return rng.choice(spans) if spans else None


def _data_start(buf: bytes) -> int:
    field = buf[26:34].strip()
    if field.isdigit() and int(field) > 0:
        return int(field)
    for key, v0, v1 in _values(buf):
        if key == "$BEGINDATA" and buf[v0:v1].strip().isdigit():
            return int(buf[v0:v1])
    return min(len(buf), 4096)


# ----------------------------------------------------------------------------- mutations


def text_lengthen(buf: bytes, rng: random.Random) -> Mutant:
    """A value of a descriptive keyword lengthened in place (a rename tool), offsets untouched."""
    s = _pick(buf, rng, r"\$?(FIL|SRC|SMNO|DATE|CYT|CREATOR|TUBE NAME|EXPERIMENT NAME|\$P\d+S)")
    if s is None:
        return text_lengthen_any(buf, rng)
    k = rng.choice([1, 2, 3, 4, 7, 8, 24, 31, 100])
    return _edit(buf, s, buf[s[1] : s[2]] + b"X" * k, f"text_lengthen:{s[0]}+{k}")


def text_lengthen_any(buf: bytes, rng: random.Random) -> Mutant:
    """Any value lengthened in place (also $PnN: renaming 'Time' changes how it is scaled)."""
    spans = _values(buf)
    if not spans:
        return truncate(buf, rng)
    s = rng.choice(spans)
    k = rng.choice([1, 4, 24])
    return _edit(buf, s, buf[s[1] : s[2]] + b"7" * k, f"text_lengthen_any:{s[0]}+{k}")


def text_shorten(buf: bytes, rng: random.Random) -> Mutant:
    spans = [s for s in _values(buf) if s[2] - s[1] > 1]
    if not spans:
        return truncate(buf, rng)
    s = rng.choice(spans)
    k = rng.randint(1, s[2] - s[1] - 1)
    return _edit(buf, s, buf[s[1] : s[2] - k], f"text_shorten:{s[0]}-{k}")


def offsets_value(buf: bytes, rng: random.Random) -> Mutant:
    """$BEGINDATA/$ENDDATA/$BEGINANALYSIS... rewritten (length may change)."""
    s = _pick(buf, rng, r"\$(BEGIN|END)(DATA|ANALYSIS|STEXT)|\$NEXTDATA")
    if s is None:
        return header_field(buf, rng)
    old = buf[s[1] : s[2]].strip() or b"0"
    v = int(old) if old.isdigit() else 0
    new = rng.choice([v + 1, v - 1, v + 4, v - 4, v * 10, 0, v + 32, len(buf), len(buf) - 1])
    text = str(new).encode()
    if rng.random() < 0.5:  # keep the length (zero-padded), as an editor that knows FCS would
        text = text.rjust(len(old), b"0")[-len(old) :] if len(text) <= len(old) else text
    return _set(buf, s, text), f"offsets_value:{s[0]}={text.decode()}", {}


def header_field(buf: bytes, rng: random.Random) -> Mutant:
    field = rng.randrange(6)
    start = 10 + 8 * field
    old = buf[start : start + 8].strip()
    v = int(old) if old.isdigit() else 0
    new = str(rng.choice([v + 1, max(0, v - 1), v + 24, max(0, v - 24), 0, len(buf), 58])).rjust(8)[:8]
    return buf[:start] + new.encode() + buf[start + 8 :], f"header_field:{field}={new.strip()}", {}


def layout_keyword(buf: bytes, rng: random.Random) -> Mutant:
    """$TOT/$PAR/$PnB/$PnR edited (any length)."""
    s = _pick(buf, rng, r"\$(TOT|PAR|P\d+B|P\d+R)")
    if s is None:
        return truncate(buf, rng)
    old = buf[s[1] : s[2]].strip()
    v = int(old) if old.isdigit() else 1
    new = str(rng.choice([0, 1, v + 1, max(0, v - 1), 2 * v, v // 2, 8, 16, 24, 32, 64])).encode()
    kind = "pnb_same_size" if s[0].endswith("B") and new in (b"32", b"16") and new != old else "layout"
    return _edit(buf, s, new, f"{kind}:{s[0]}={new.decode()}")


def meaning_keyword(buf: bytes, rng: random.Random) -> Mutant:
    """$DATATYPE/$BYTEORD/$PnE/$PnG/$TIMESTEP edited: structure kept, meaning changed."""
    s = _pick(buf, rng, r"\$(DATATYPE|BYTEORD|P\d+E|P\d+G|TIMESTEP|MODE)")
    if s is None:
        return truncate(buf, rng)
    key = s[0]
    if key == "$DATATYPE":
        new, kind = rng.choice([b"I", b"F", b"D", b"A", b"X"]), "datatype"
    elif key == "$BYTEORD":
        new, kind = rng.choice([b"1,2,3,4", b"4,3,2,1", b"1,2", b"2,1", b"3,4,1,2", b"1,2,3"]), "byteord"
    elif key.endswith("E"):
        new, kind = rng.choice([b"0,0", b"4,0", b"4,1", b"-1,0", b"x"]), "pne"
    elif key.endswith("G"):
        new = rng.choice([b"1", b"2", b"-1", b"0", b"1e308", b"abc"])
        kind = "png_valid" if new in (b"1", b"2") else "png"
    elif key == "$MODE":
        new, kind = rng.choice([b"L", b"C", b"U"]), "mode"
    else:
        new, kind = rng.choice([b"0", b"-1", b"abc", b"0.5", b"1e308"]), "timestep"
    return _edit(buf, s, new, f"{kind}:{key}={new.decode()}")


def delimiter(buf: bytes, rng: random.Random) -> Mutant:
    span = _text(buf)
    if span is None:
        return truncate(buf, rng)
    t0, t1 = span
    old = buf[t0 : t0 + 1]
    new = rng.choice([b"|", b"\\", b"/", b"\x0c", b","])
    if rng.random() < 0.5:
        mutated = buf[:t0] + new + buf[t0 + 1 :]  # only the first delimiter
        return mutated, "delimiter:first", {}
    return buf[:t0] + buf[t0 : t1 + 1].replace(old, new) + buf[t1 + 1 :], f"delimiter:all={new!r}", {}


def truncate(buf: bytes, rng: random.Random) -> Mutant:
    cut = rng.choice([rng.randrange(len(buf)), len(buf) - 1, len(buf) - rng.randint(1, 64), 58, 100])
    return buf[: max(0, cut)], f"truncate:{cut}", {}


def append(buf: bytes, rng: random.Random) -> Mutant:
    k = rng.choice([1, 4, 8, 32, 1000])
    fill = rng.choice([b"\x00", b" ", bytes([rng.randrange(256)])])
    return buf + fill * k, f"append:{k}", {}


def data_cut(buf: bytes, rng: random.Random) -> Mutant:
    """Bytes removed from inside DATA (offsets untouched)."""
    start = _data_start(buf)
    if start >= len(buf) - 8:
        return truncate(buf, rng)
    at = rng.randrange(start, len(buf) - 4)
    k = rng.choice([1, 2, 4, 8])
    return buf[:at] + buf[at + k :], f"data_cut:{at}-{k}", {}


def data_insert(buf: bytes, rng: random.Random) -> Mutant:
    start = _data_start(buf)
    at = rng.randrange(min(start, len(buf)), len(buf) + 1)
    k = rng.choice([1, 2, 4, 8])
    return buf[:at] + b"\x00" * k + buf[at:], f"data_insert:{at}+{k}", {}


def data_flip(buf: bytes, rng: random.Random) -> Mutant:
    start = _data_start(buf)
    if start >= len(buf):
        return truncate(buf, rng)
    b = bytearray(buf)
    at = rng.randrange(start, len(buf))
    b[at] ^= 1 << rng.randrange(8)
    return bytes(b), f"data_flip:{at}", {}


def text_flip(buf: bytes, rng: random.Random) -> Mutant:
    span = _text(buf)
    if span is None:
        return truncate(buf, rng)
    b = bytearray(buf)
    at = rng.randrange(span[0], span[1] + 1)
    b[at] = rng.randrange(256)
    inside = [v for v in _values(buf) if v[1] <= at < v[2]]
    if inside and b[at] != buf[span[0]]:  # a byte of one value changed (not into the delimiter)
        v = inside[0]
        return _edit(buf, v, bytes(b[v[1] : v[2]]), f"text_flip_value:{v[0]}@{at}")
    key = [k for k in _keys(buf) if k[1] <= at < k[2]]
    if key and b[at] != buf[span[0]]:  # a byte of one keyword changed: that keyword renamed
        _, k0, k1, v0, v1 = key[0]
        old, new = _reader_key(buf[k0:k1]), _reader_key(bytes(b[k0:k1]))
        declared: dict[str, str | None] = {old: None}
        if new:
            declared[new] = _decode(buf[v0:v1])
        return bytes(b), f"text_flip_key:{_decode(buf[k0:k1])}@{at}", declared
    return bytes(b), f"text_flip:{at}", {}


def _keys(buf: bytes) -> list[tuple[str, int, int, int, int]]:
    """(KEYWORD, key start, key end, value start, value end) of the first dataset's TEXT."""
    span = _text(buf)
    if span is None:
        return []
    t0, t1 = span
    d = re.escape(buf[t0 : t0 + 1])
    return [
        (m.group(1).decode("latin-1"), t0 + m.start(1), t0 + m.end(1), t0 + m.start(2), t0 + m.end(2))
        for m in re.finditer(rb"(?<=" + d + rb")([^" + d + rb"]+)" + d + rb"([^" + d + rb"]*)", buf[t0 : t1 + 1])
    ]


def _reader_key(raw: bytes) -> str:
    """A keyword as the reader keys it: stripped, lower case, without its '$'."""
    key = _decode(raw).strip().lower()
    return key[1:] if key.startswith("$") else key


def unused_keyword(buf: bytes, rng: random.Random) -> Mutant:
    """A keyword no reading depends on, edited without changing its length: must read right."""
    s = _pick(buf, rng, r"\$?(FIL|SRC|DATE|BTIM|ETIM|CYT|CREATOR|\$P\d+S)")
    if s is None or s[2] - s[1] < 1:
        return truncate(buf, rng)
    return _edit(buf, s, b"Z" * (s[2] - s[1]), f"unused_keyword:{s[0]}")


MUTATIONS: list[Callable[[bytes, random.Random], Mutant | tuple[bytes, str]]] = [
    text_lengthen, text_lengthen, text_lengthen_any, text_shorten, offsets_value, offsets_value, header_field,
    layout_keyword, meaning_keyword, delimiter, truncate, append, data_cut, data_insert, data_flip,
    text_flip, unused_keyword,
]  # fmt: skip


def mutate(buf: bytes, rng: random.Random) -> Mutant:
    """One to two seeded mutations; the label joins theirs with ' & ', the keyword edits are merged."""
    labels, edits = [], {}
    for _ in range(1 if rng.random() < 0.8 else 2):
        buf, label, *declared = rng.choice(MUTATIONS)(buf, rng)
        labels.append(label)
        edits.update(declared[0] if declared else {})
    return buf, " & ".join(labels), edits


# ----------------------------------------------------------------------------- judging


def kinds(label: str) -> set[str]:
    return {part.split(":", 1)[0] for part in label.split(" & ")}


def declared_events(source: bytes, edits: dict[str, str | None], name: str) -> np.ndarray | None:
    """The clean file's bytes read with the first TEXT's keywords edited; None if that is refused.

    This is what a mutant that only edits TEXT values declares: the instrument's
    segments, with the mutant's keyword values. The reader's own dataset code is
    used on the clean bytes (our decoder: flowio would parse the unedited TEXT
    from the bytes; ours is tested equal to flowio on the corpus), so a mutant
    read differently (e.g. misaligned after its TEXT changed length) is not
    excused.
    """
    from hladr.fcs import _parse as fp
    from hladr.fcs import read as hr

    buf = memoryview(np.frombuffer(bytearray(source), np.uint8))
    try:
        datasets = list(fp.scan_datasets(buf, name))
        first = datasets[0]
        keywords = {**first.keywords, **edits}
        datasets[0] = replace(first, keywords={k: v for k, v in keywords.items() if v is not None})
        index, quirks = fp.choose_default_dataset(datasets)
        ev, _ = hr._read_dataset(buf, "", datasets, index, quirks, name, name, "hladr", False)
    except ReadError:
        return None
    return ev.data


def judge(
    mutant: bytes, clean: np.ndarray, name: str, workdir: Path, *,
    label: str = "", edits: dict[str, str | None] | None = None, source: bytes | None = None,
) -> tuple[str, str]:
    """(outcome, detail) of reading ``mutant`` (written to ``workdir/name``); see the module docstring.

    ``label`` and ``edits`` are :func:`mutate`'s; ``source`` the clean file's bytes
    (needed to judge a "changed" reading).
    """
    path = workdir / name
    path.write_bytes(mutant)
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(TIMEOUT_S)
    try:
        ev, rep = read_fcs(path, sha256=False)
    except _Timeout:
        return "hang", ""
    except ReadError as exc:
        text = str(exc)
        if getattr(exc, "internal", False) or "\n" in text or not text.startswith(name):
            return "traceback", text
        return "refused", text
    except Exception as exc:  # noqa: BLE001 - anything else is a reader bug
        return "traceback", f"{type(exc).__name__}: {exc}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    data = ev.data
    if data.shape == clean.shape and np.array_equal(data, clean, equal_nan=True):
        return "right", ",".join(ev.quirks)
    detail = f"{data.shape} vs {clean.shape}; quirks {','.join(ev.quirks)}"
    parts = [p.split(":", 1)[0] for p in label.split(" & ")] if label else []
    if source is not None and (
        parts == ["truncate", "append"] or (sorted(parts) == ["data_cut", "data_insert"] and len(mutant) == len(source))
    ):
        return _judge_refilled(data, clean, mutant, source, rep, workdir / f"clean_{name}", detail)
    flips = parts.count("data_flip")
    if source is None or not (edits or flips):
        return "misread", detail
    want = declared_events(source, edits or {}, name) if edits else clean
    if want is None:
        return "misread", detail + "; the declared reading is refused"
    if data.shape != want.shape:
        return "misread", detail + f"; declared {want.shape}"
    differs = ~((data == want) | (np.isnan(data) & np.isnan(want)))
    if int(differs.any(axis=1).sum()) <= flips:
        return "changed", detail
    return "misread", detail + "; differs from the declared reading"


def _judge_refilled(
    data: np.ndarray, clean: np.ndarray, mutant: bytes, source: bytes, rep, clean_path: Path, detail: str  # noqa: ANN001
) -> tuple[str, str]:
    """DATA's bytes replaced in place: "changed" if DATA was read where the clean file has it and only the
    events holding replaced bytes differ.

    A truncation then an append (the bytes from the cut on replaced), or an
    insertion and a cut of the same size both inside DATA (the bytes between
    shifted; everything outside DATA must be unchanged).
    """
    clean_path.write_bytes(source)
    _, crep = read_fcs(clean_path, sha256=False)
    start, nbytes = crep.data_offset, crep.data_bytes
    if (rep.data_offset, rep.data_bytes) != (start, nbytes) or data.shape != clean.shape or len(data) == 0:
        return "misread", detail + "; DATA not read where the clean file has it"
    if len(mutant) == len(source) and (
        mutant[:start] != source[:start] or mutant[start + nbytes :] != source[start + nbytes :]
    ):
        return "misread", detail + "; bytes outside DATA changed"
    width = nbytes // len(data)
    a = np.frombuffer(source, np.uint8, count=nbytes, offset=start)
    b = np.frombuffer(mutant.ljust(start + nbytes, b"\0"), np.uint8, count=nbytes, offset=start)
    replaced = np.zeros(len(data), bool)
    replaced[np.flatnonzero(a != b) // width] = True
    differs = ~((data == clean) | (np.isnan(data) & np.isnan(clean)))
    if not differs.any(axis=1)[~replaced].any():
        return "changed", detail + f"; {int(replaced.sum())} events hold replaced DATA bytes"
    return "misread", detail + "; differs outside the events whose bytes were replaced"


def scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="hladr_fuzz_"))


def clean_events(path: str | os.PathLike) -> np.ndarray:
    return read_fcs(path, sha256=False)[0].data.copy()
