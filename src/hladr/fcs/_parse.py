"""Low-level FCS parsing: HEADER, the dataset chain, channel keywords.

Private to :mod:`hladr.fcs.read` (TEXT keywords are split in :mod:`hladr.fcs._text`,
DATA layout is in :mod:`hladr.fcs._layout`, decoding in :mod:`hladr.fcs._decode`,
spillover keywords in :mod:`hladr.fcs._spillover`).
Every function takes the whole file as a bytes-like ``Buffer`` (``bytes``, or the
``memoryview`` of the one buffer :mod:`hladr.fcs.read` reads the file into; only the
small HEADER/TEXT slices are copied) plus the file name used in error messages,
and either returns plain data or raises :class:`~hladr.errors.ReadError` with one
line that starts with the file name. Nothing here opens files, prints or warns.

The parser is deliberately tolerant of the export quirks real instruments have
(each tolerated deviation is recorded as a short quirk code) and strict about
anything that would otherwise produce wrong numbers: a DATA segment is only
decoded when its byte count agrees with ``$TOT`` and the channel layout.

Quirk codes (stable, machine-readable):

``offset_off_by_one``
    $ENDDATA (or the HEADER end) points one byte past the DATA segment
    (MACSQuant, Partec PAS, Accuri C6, Beckman FC500).
``header_text_offset_mismatch``
    HEADER and TEXT give different DATA offsets; the one whose byte count matches
    $TOT x event size and that does not overlap TEXT was used (CyAn, Accuri C6).
``header_data_offsets_blank``
    HEADER DATA offsets are blank although the file is small; TEXT offsets used.
``data_segment_longer_than_tot``
    DATA holds more bytes than $TOT events need (less than one more event, or
    any amount with ``allow_tot_mismatch``); the extra bytes were ignored.
``data_end_beyond_file``
    Only with ``allow_tot_mismatch``: the declared DATA end lies past the file end.
``no_datatype_assumed_I``
    $DATATYPE missing (Partec CyFlow); integer data assumed.
``byteord_missing_assumed_little`` / ``byteord_mixed``
    $BYTEORD missing or a non-monotonic permutation (e.g. 3,4,1,2).
``pnb_in_wider_words``
    $PnB is not a whole number of bytes and each value sits in a wider word
    (Beckman FC500: $PnB=10 in 16-bit words).
``pnb_bit_packed``
    $PnB is not a whole number of bytes and the values are bit-packed.
``pnr_bitmask_applied``
    Integer words had bits above $PnR set (Beckman System II, D10-D15); masked.
``lmd_fcs3_dataset_chosen``
    Beckman LMD: the FCS 3.0 dataset was read instead of the FCS 2.0 one.
``lmd_dfc_from_fcs2_dataset``
    Beckman LMD: the $DFCiTOj compensation of the FCS 2.0 dataset was attached.
``nextdata_invalid_ignored``
    $NEXTDATA points nowhere sensible; the chain was cut there.
``text_odd_token_count`` / ``text_empty_values``
    TEXT has a dangling keyword or FCS 2.0-style empty values.
``text_keyword_whitespace``
    Keywords padded with blanks (Partec CyFlow: flowio then misses $DATATYPE).
``stext_ignored``
    Supplemental TEXT offsets are invalid (e.g. overlap the primary TEXT).
``timestep_malformed_ignored``
    $TIMESTEP is not a positive number; the time channel was not scaled.
``tot_missing_inferred``
    $TOT missing (allowed in FCS 2.0); the event count was derived from DATA.
``pnn_missing`` / ``duplicate_channel_names``
    A $PnN is missing (the channel is named ``Pn``) or names repeat.
``events_fewer_than_tot``
    Only with ``allow_tot_mismatch``: DATA holds fewer events than $TOT.
``text_overran_header_offsets``
    TEXT ran past the end HEADER gives (edited in place); DATA was found moved by
    as much, holding exactly $TOT plausible events (see :mod:`hladr.fcs._verify`).
``flowio_error_fallback``
    flowio failed on a file that looked standard; our decoder read it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import ReadError
from ..safe_text import printable
from ._text import parse_text

__all__ = [
    "Buffer",
    "HEADER_LEN",
    "RawDataset",
    "Channel",
    "scan_datasets",
    "dataset_at",
    "choose_default_dataset",
    "lmd_companion_keywords",
    "channel_table",
    "kw_opt_int",
]

HEADER_LEN = 58
# $PnG accepted: the corpus holds gains from 0.01 to 78,125 (amplifier gains of Cytek and MoFlo
# files); outside this, a gain is an edit or an error, not a setting.
GAIN_LIMITS = (1e-6, 1e6)
# The whole file: ``bytes`` or a memoryview of a uint8 buffer (sliced, then copied with bytes()).
Buffer = bytes | bytearray | memoryview
MAX_DATASETS = 256
_FCS_MAGIC = re.compile(rb"FCS\d\.\d")
_LAYOUT_KEYS = re.compile(
    r"^(@?p\d+[a-z]+|par|tot|datatype|byteord|mode|nextdata|begin\w*|end\w*|"
    r"spillover|spill|comp|dfc\d+to\d+)$"
)
DFC_KEY = re.compile(r"^dfc(\d+)to(\d+)$")


def quote_value(value: object, n: int = 40) -> str:
    """A keyword value made safe for a one-line message: cut to ``n`` characters, control characters as ``?``.

    Only keyword values of a file that parsed as FCS are quoted (its own metadata); the
    bytes of a file that is not FCS, or of a HEADER, are described, never quoted.
    """
    text = " ".join(str(value).split())
    return "'" + printable(text if len(text) <= n else text[: n - 3] + "...") + "'"


# --------------------------------------------------------------------------- HEADER/TEXT


@dataclass(frozen=True)
class RawDataset:
    """HEADER and TEXT of one dataset, before any interpretation of DATA.

    Offsets are absolute byte positions in the file; ``None`` where the HEADER
    field is blank or unreadable.
    """

    index: int
    offset: int
    version: str
    header_data: tuple[int | None, int | None]
    header_analysis: tuple[int | None, int | None]
    text_span: tuple[int, int]
    keywords: dict[str, str]
    quirks: tuple[str, ...]


def _header_int(field: bytes) -> int | None:
    text = field.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _parse_one(buf: Buffer, offset: int, index: int, name: str) -> RawDataset:
    size = len(buf)
    head = bytes(buf[offset : offset + HEADER_LEN])
    if not _FCS_MAGIC.match(head):
        where = "" if offset == 0 else f" at byte {offset}"
        # the bytes are not quoted: a file that is not FCS may hold anything (a password file, a key)
        raise ReadError(f"{name}: not an FCS file (no 'FCSx.y' HEADER{where})")
    if len(head) < HEADER_LEN:
        raise ReadError(f"{name}: HEADER is cut off ({size} bytes; an FCS HEADER needs 58)")
    version = head[3:6].decode("ascii")
    fields = [_header_int(head[i : i + 8]) for i in range(10, 58, 8)]
    t0, t1 = fields[0], fields[1]
    if t0 is None or t1 is None or t0 < HEADER_LEN or t1 < t0:
        raise ReadError(
            f"{name}: HEADER gives no valid TEXT segment offsets ("  # described: the bytes are not quoted
            + ("they are not numbers" if t0 is None or t1 is None else f"TEXT {t0}-{t1} is not after the HEADER")
            + ")"
        )
    a0, a1 = offset + t0, offset + t1
    if a1 >= size:
        raise ReadError(
            f"{name}: TEXT segment ends at byte {a1} but the file has {size} bytes (truncated file?)"
        )
    kw, quirks = parse_text(buf, a0, a1, name)
    # FCS 3.x supplemental TEXT: merged, primary keywords win.
    s0, s1 = kw_opt_int(kw, "beginstext"), kw_opt_int(kw, "endstext")
    if s0 and s1 and s1 > s0:
        b0, b1 = offset + s0, offset + s1
        if b0 <= a1 and b1 >= a0:
            pass  # points into the primary TEXT (Accuri writes that): nothing new
        elif b1 < size:
            try:
                extra, _ = parse_text(buf, b0, b1, name)
            except ReadError:
                quirks.append("stext_ignored")
            else:
                for key, value in extra.items():
                    kw.setdefault(key, value)
        else:
            quirks.append("stext_ignored")

    def _abs(v: int | None) -> int | None:
        return None if v is None else offset + v

    return RawDataset(
        index=index,
        offset=offset,
        version=version,
        header_data=(
            None if fields[2] is None else _abs(fields[2]),
            None if fields[3] is None else _abs(fields[3]),
        ),
        header_analysis=(_abs(fields[4]), _abs(fields[5])),
        text_span=(a0, a1),
        keywords=kw,
        quirks=tuple(quirks),
    )


def scan_datasets(buf: Buffer, name: str) -> list[RawDataset]:
    """Parse HEADER and TEXT of every dataset in the file, following $NEXTDATA.

    $NEXTDATA is relative to the start of the current dataset (FCS 2.0/3.0). A
    chain that points backwards, outside the file or at something that is not an
    FCS HEADER is cut there (quirk ``nextdata_invalid_ignored`` on the last
    dataset read); the first dataset must parse, later ones may fail that way.
    """
    datasets = [_parse_one(buf, 0, 1, name)]
    while len(datasets) < MAX_DATASETS:
        cur = datasets[-1]
        raw = cur.keywords.get("nextdata", "0").strip() or "0"
        try:
            step = int(raw)
        except ValueError:
            step = -1
        if step == 0:
            break
        nxt = cur.offset + step
        ok = step > 0 and nxt + HEADER_LEN <= len(buf)
        if ok:
            try:
                datasets.append(_parse_one(buf, nxt, len(datasets) + 1, name))
                continue
            except ReadError:
                pass
        datasets[-1] = _with_quirk(cur, "nextdata_invalid_ignored")
        break
    return datasets


def dataset_at(buf: Buffer, offset: int, name: str) -> RawDataset | None:
    """The dataset whose HEADER and TEXT parse at ``offset``, or None (not a dataset there)."""
    try:
        return _parse_one(buf, offset, 0, name)
    except ReadError:
        return None


def _with_quirk(ds: RawDataset, quirk: str) -> RawDataset:
    return RawDataset(
        ds.index, ds.offset, ds.version, ds.header_data, ds.header_analysis,
        ds.text_span, ds.keywords, (*ds.quirks, quirk),
    )  # fmt: skip


def choose_default_dataset(datasets: Sequence[RawDataset]) -> tuple[int, list[str]]:
    """The dataset read when the caller does not name one (1-based) and its quirks.

    The first dataset, except for Beckman Coulter LMD files: they hold an FCS 2.0
    dataset (often 10-bit log channels) followed by an FCS 3.0 dataset with the
    full-resolution linear data of the same events; the FCS 3.0 one is read.
    """
    if len(datasets) > 1 and datasets[0].version.startswith("2"):
        for ds in datasets[1:]:
            if ds.version.startswith("3"):
                return ds.index, ["lmd_fcs3_dataset_chosen"]
    return 1, []


def lmd_companion_keywords(first: RawDataset, chosen: RawDataset) -> tuple[dict[str, str], list[str]]:
    """Keywords of an LMD's FCS 3.0 dataset completed from its FCS 2.0 companion.

    The FCS 3.0 dataset of a Beckman LMD carries only layout keywords; $CYT,
    $DATE, $BTIM, operator and sample keywords live in the FCS 2.0 dataset, and
    so does the $DFCiTOj compensation (indexed by detector FLi, which the FCS 3.0
    channel names FL1..FL10 follow). Layout keywords are never copied.
    """
    kw = dict(chosen.keywords)
    quirks: list[str] = []
    for key, value in first.keywords.items():
        if key not in kw and not _LAYOUT_KEYS.match(key):
            kw[key] = value
    has_spill = any(k in kw for k in ("spillover", "spill", "comp"))
    dfc = {k: v for k, v in first.keywords.items() if DFC_KEY.match(k)}
    if dfc and not has_spill:
        kw.update(dfc)
        quirks.append("lmd_dfc_from_fcs2_dataset")
    return kw, quirks


# --------------------------------------------------------------------------- keywords


def kw_opt_int(kw: Mapping[str, str], key: str) -> int | None:
    raw = kw.get(key)
    if raw is None:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        return None


def _kw_float(kw: Mapping[str, str], key: str, name: str) -> float | None:
    raw = kw.get(key)
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        raise ReadError(f"{name}: ${key.upper()} is not a number ({quote_value(raw)})") from None
    if not math.isfinite(value):
        raise ReadError(f"{name}: ${key.upper()} is not a finite number ({quote_value(raw)})")
    return value


@dataclass(frozen=True)
class Channel:
    """Per-channel keywords as parsed (``pnr`` in file units, before gain)."""

    pnn: str
    pns: str
    pnb: str
    pnr: float
    decades: float
    log0: float
    png: float
    pnv: str
    pne: str


def _parse_pne(raw: str | None, key: str, name: str) -> tuple[float, float]:
    if raw is None or not raw.strip():
        return 0.0, 0.0
    parts = raw.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        decades, log0 = (float(p) for p in parts)
    except ValueError:
        raise ReadError(
            f"{name}: ${key.upper()} must be 'decades,offset' ({quote_value(raw)})"
        ) from None
    if not (math.isfinite(decades) and math.isfinite(log0)) or decades > 20:
        raise ReadError(f"{name}: ${key.upper()} is out of range ({quote_value(raw)})")
    if decades > 0 and log0 == 0:
        log0 = 1.0  # the FCS standard: f2 = 0 means 1
    return decades, log0


def channel_table(kw: Mapping[str, str], n_par: int, name: str) -> tuple[list[Channel], list[str]]:
    """Channel keywords ($PnN, $PnS, $PnB, $PnR, $PnE, $PnG, $PnV) of ``n_par`` channels."""
    channels: list[Channel] = []
    quirks: list[str] = []
    for n in range(1, n_par + 1):
        pnn = kw.get(f"p{n}n")
        if pnn is None or not pnn.strip():
            pnn = f"P{n}"
            if "pnn_missing" not in quirks:
                quirks.append("pnn_missing")
        pnr_raw = kw.get(f"p{n}r")
        if pnr_raw is None:
            raise ReadError(f"{name}: $P{n}R (range of channel {n}) is missing")
        pnr = _kw_float(kw, f"p{n}r", name)
        assert pnr is not None
        if pnr <= 0:
            raise ReadError(f"{name}: $P{n}R must be positive ({quote_value(pnr_raw)})")
        decades, log0 = _parse_pne(kw.get(f"p{n}e"), f"p{n}e", name)
        png = _kw_float(kw, f"p{n}g", name)
        if png is not None and png != 0 and not GAIN_LIMITS[0] <= png <= GAIN_LIMITS[1]:
            # the gain divides every value of the channel: a negative or absurd one would give
            # negative or vanishing intensities without a word (0 means "no gain", as for flowio)
            raise ReadError(
                f"{name}: $P{n}G={quote_value(kw[f'p{n}g'])} is not a plausible gain "
                f"({GAIN_LIMITS[0]:g} to {GAIN_LIMITS[1]:g}); re-export the file"
            )
        channels.append(
            Channel(
                pnn=pnn.strip(),
                pns=kw.get(f"p{n}s", "").strip(),
                pnb=kw.get(f"p{n}b", "").strip(),
                pnr=pnr,
                decades=decades,
                log0=log0,
                png=1.0 if png is None else png,
                pnv=kw.get(f"p{n}v", "").strip(),
                pne=kw.get(f"p{n}e", "").strip(),
            )
        )
    names = [c.pnn for c in channels]
    if len(set(names)) != len(names):
        quirks.append("duplicate_channel_names")
    return channels, quirks
