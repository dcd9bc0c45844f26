"""What TEXT declares about DATA's encoding, before any offset is looked at.

Private to :mod:`hladr.fcs._layout`. :func:`declared` reads $PAR, $MODE, $DATATYPE
($PnDATATYPE), $BYTEORD, $PnB and $TOT into a :class:`Declared` record, refusing
values no instrument writes (each refusal a :class:`~hladr.errors.ReadError` of one
line); :func:`interpretations` lists the readings of the declared widths that
:func:`hladr.fcs._layout.resolve_layout` tries against the candidate segments (bytes
per value, or bit-packed values), and :func:`needed` / :func:`events_in` convert
between events and bytes. Only integers are computed here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import ReadError
from ._parse import kw_opt_int, quote_value

__all__ = ["Declared", "declared", "interpretations", "needed", "events_in"]

MAX_PAR = 10_000
MAX_TOT = 2**32  # more events than any cytometer writes in one tube
MAX_INT_BITS = 64
MAX_ASCII_WIDTH = 256


@dataclass(frozen=True)
class Declared:
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
        raise ReadError(f"{name}: $BYTEORD is not a byte order ({quote_value(raw)})") from None
    k = len(order)
    if k > 8 or sorted(order) != list(range(1, k + 1)):
        raise ReadError(f"{name}: $BYTEORD is not a byte order ({quote_value(raw)})")
    if order == sorted(order):
        return "<", None, []
    if order == sorted(order, reverse=True):
        return ">", None, []
    return "<", tuple(order), ["byteord_mixed"]


def declared(kw: Mapping[str, str], name: str) -> Declared:
    quirks: list[str] = []
    n_par = kw_opt_int(kw, "par")
    if n_par is None:
        raise ReadError(f"{name}: $PAR (number of channels) is missing or not a number")
    if not 1 <= n_par <= MAX_PAR:
        raise ReadError(f"{name}: $PAR={n_par} is not a plausible number of channels")
    mode = kw.get("mode", "L").strip().upper() or "L"
    if mode != "L":
        raise ReadError(f"{name}: $MODE={quote_value(mode)} (histogram data) is not list-mode data")
    datatype = kw.get("datatype", "").strip().upper()
    if not datatype:
        datatype = "I"
        quirks.append("no_datatype_assumed_I")
    if datatype not in ("I", "F", "D", "A"):
        raise ReadError(f"{name}: $DATATYPE={quote_value(datatype)} is not I, F, D or A")
    endian, perm, q = _byteorder(kw, name)
    quirks += q

    raw_bits = [kw.get(f"p{n}b", "").strip() for n in range(1, n_par + 1)]
    types = [datatype] * n_par
    if datatype != "A":  # FCS 3.2: $PnDATATYPE overrides $DATATYPE per channel
        for n in range(1, n_par + 1):
            t = kw.get(f"p{n}datatype", "").strip().upper() or datatype
            if t not in ("I", "F", "D"):
                raise ReadError(f"{name}: $P{n}DATATYPE={quote_value(t)} is not I, F or D")
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
                    f"{name}: $P{n}B (bits of channel {n}) is missing or not a number ({quote_value(b)})"
                ) from None
            if not 1 <= value <= limit:
                raise ReadError(f"{name}: $P{n}B={value} is not a supported width (1-{limit})")
            bits.append(value)

    tot = kw_opt_int(kw, "tot")
    if kw.get("tot") is not None and tot is None:
        raise ReadError(f"{name}: $TOT is not a number ({quote_value(kw.get('tot'))})")
    if tot is not None and not 0 <= tot <= MAX_TOT:
        raise ReadError(f"{name}: $TOT={tot} events is not plausible (limit {MAX_TOT})")
    return Declared(
        n_par, datatype, endian, perm, tuple(bits), delimited, tot, tuple(quirks), tuple(types)
    )


def _word_bytes(bits: int) -> int:
    return next(w for w in (1, 2, 4, 8) if bits <= 8 * w)


def interpretations(dec: Declared) -> list[tuple[str, tuple[int, ...], str | None]]:
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


def needed(n: int, storage: str, bits: Sequence[int], word_bytes: Sequence[int]) -> int:
    if storage == "packed":
        return (n * sum(bits) + 7) // 8
    return n * sum(word_bytes)


def events_in(nbytes: int, storage: str, bits: Sequence[int], wbytes: Sequence[int]) -> int:
    if storage == "packed":
        return nbytes * 8 // max(1, sum(bits))
    return nbytes // max(1, sum(wbytes))

