"""An FCS TEXT segment -> its keywords.

Private to :mod:`hladr.fcs.read` (through :mod:`hladr.fcs._parse`, which finds the
segment, and :mod:`hladr.fcs._verify` and :mod:`hladr.fcs._extent`, which read one
again). :func:`parse_text` splits the segment at its delimiter (a doubled delimiter is
a literal one in FCS 3.x; FCS 2.0 writers leave values empty, which reads as an escaped
delimiter, so such a TEXT is split again without escapes) and pairs keywords with
values. Quirk codes (``text_odd_token_count``, ``text_empty_values``,
``text_keyword_whitespace``) are listed in :mod:`hladr.fcs._parse`.
"""

from __future__ import annotations

import re

from ..errors import ReadError

__all__ = ["parse_text"]


def _split_text(text: str, delim: str, *, escapes: bool) -> list[str]:
    """Split a TEXT segment body (after the first delimiter) into tokens.

    With ``escapes`` a doubled delimiter is a literal delimiter (FCS 3.x); an odd
    run of delimiters ends the token after its literal pairs.
    """
    if not escapes:
        tokens = text.split(delim)
        if tokens and not tokens[-1].strip("\x00 \r\n\t"):
            tokens.pop()
        return tokens
    parts = re.split(f"({re.escape(delim)}+)", text)
    tokens: list[str] = []
    cur: list[str] = []
    for i, piece in enumerate(parts):
        if i % 2 == 0:
            cur.append(piece)
            continue
        cur.append(delim * (len(piece) // 2))
        if len(piece) % 2:
            tokens.append("".join(cur))
            cur = []
    tail = "".join(cur)
    if tail.strip("\x00 \r\n\t"):
        tokens.append(tail)  # no closing delimiter
    return tokens


def _pairs(tokens: list[str]) -> tuple[dict[str, str], list[str]]:
    quirks = ["text_odd_token_count"] if len(tokens) % 2 else []
    kw: dict[str, str] = {}
    for key, value in zip(tokens[0::2], tokens[1::2], strict=False):
        stripped = key.strip()
        if stripped != key and "text_keyword_whitespace" not in quirks:
            quirks.append("text_keyword_whitespace")  # Partec CyFlow pads "$DATATYPE"
        key = stripped.lower()
        if key.startswith("$"):
            key = key[1:]
        if key:
            kw[key] = value
    return kw, quirks


def parse_text(
    buf: bytes | bytearray | memoryview, start: int, end: int, name: str
) -> tuple[dict[str, str], list[str]]:
    """Keywords of the TEXT segment ``buf[start:end + 1]`` (``buf``: the whole file, a ``_parse.Buffer``).

    Keys are lower case without the leading ``$`` (flowio's convention); values
    are kept as written. Bytes are decoded as UTF-8, or Latin-1 when that fails
    (FCS 2.0 and Mac OS files).
    """
    raw = bytes(buf[start : end + 1])
    if len(raw) < 2:
        raise ReadError(f"{name}: TEXT segment at bytes {start}-{end} is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    delim = text[0]
    if delim.isalnum() or delim in " \x00":
        raise ReadError(
            f"{name}: TEXT segment does not start with a delimiter (it starts with a letter, digit, blank or NUL); "
            "not an FCS file or wrong HEADER offsets"
        )
    kw, quirks = _pairs(_split_text(text[1:], delim, escapes=True))
    if any(delim in k for k in kw):
        # FCS 2.0 writers may leave values empty ("/$P1S//"), which reads as an
        # escaped delimiter under FCS 3 rules; re-split without escapes.
        kw2, quirks2 = _pairs(_split_text(text[1:], delim, escapes=False))
        if sum(k.startswith("p") for k in kw2) > sum(k.startswith("p") for k in kw):
            kw, quirks = kw2, [*quirks2, "text_empty_values"]
    if "text_odd_token_count" in quirks and any(not any(c.isalpha() for c in k) for k in kw):
        # A keyword left without its value shifts every later pair: values ("1024", "0.01") become
        # keywords. The corpus's odd TEXTs (data1.fcs) end with one valueless keyword: all keys have letters.
        raise ReadError(
            f"{name}: TEXT has an odd number of keywords and values, and values where keywords should be "
            "(a delimiter damaged?): its keywords cannot be paired; re-export the file"
        )
    return kw, quirks
