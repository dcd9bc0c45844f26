"""Text that leaves hladr: safe for spreadsheets, terminals, HTML and strict JSON parsers.

Input text (worklist cells, FCS keywords such as ``$SMNO``, file names) is kept
as written in the results; only where it is *shown* is it made harmless:

- :func:`csv_cell` for every text cell of a CSV file hladr writes (OWASP "CSV
  injection": a cell that a spreadsheet would evaluate as a formula gets a
  leading single quote);
- :func:`printable` for everything printed to a terminal and for the HTML
  report's text (control characters, ANSI escape sequences, bidirectional and
  zero-width format characters become ``?``);
- :func:`dumps_strict` for every JSON document (RFC 8259: no ``NaN`` or
  ``Infinity``; a non-finite number becomes ``null`` and its place is reported).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable

__all__ = ["csv_cell", "printable", "printable_lines", "dumps_strict", "to_strict", "FORMULA_TRIGGERS"]

# OWASP CSV injection: a cell starting with one of these is a formula (or becomes one) in Excel,
# LibreOffice or Google Sheets; the full-width forms are read as the ASCII ones by some of them.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")

_SHOWN_AS = "?"


def csv_cell(text: object) -> str:
    """A text cell for a CSV file: prefixed with ``'`` when a spreadsheet would take it for a formula.

    Only *text* cells go through this function (worklist values, FCS keywords,
    file names, messages, column names). Numbers that hladr formats itself
    (``hladr_abc``, counts) are written as they are: hladr never writes a
    negative number into ``results.csv``, and a number is not a formula.
    A user's text cell ``"-5"`` is text and is neutralised (``'-5``).

    Control and format characters become ``?`` as in :func:`printable` (a CSV is
    also read with ``cat`` and by line-based importers; the exact text stays in
    ``results.json``). A leading tab or CR (OWASP) still counts as a trigger, and
    leading spaces are looked through (``" =1+1"``): some spreadsheets strip them.
    """
    s = "" if text is None else str(text)
    head = s.lstrip(" ")
    shown = printable(s)
    if head.startswith(FORMULA_TRIGGERS):
        return "'" + shown
    return shown


def _unsafe(ch: str) -> bool:
    # Cc: C0/C1 controls incl. ESC (ANSI sequences) and DEL; Cf: format characters (bidi overrides,
    # zero-width space/joiners, soft hyphen); Zl/Zp: line and paragraph separators; Cs: lone surrogates
    return unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs")


_ASCII_SAFE = re.compile(r"[ -~]*")


def printable(text: object) -> str:
    """One line for a terminal or an HTML page: each control or format character becomes ``?``.

    ``"\\x1b[31mP001"`` prints as ``"?[31mP001"``: visible, and it cannot recolour
    or move the cursor of the terminal, reorder the line (bidi) or hide characters.
    Newlines and tabs become ``?`` too (a cell never spans table rows).
    """
    s = "" if text is None else str(text)
    if _ASCII_SAFE.fullmatch(s):  # the common case, fast
        return s
    return "".join(_SHOWN_AS if _unsafe(c) else c for c in s)


def printable_lines(text: object) -> str:
    """Like :func:`printable`, for a block of lines: newlines are kept, everything else is replaced."""
    return "\n".join(printable(line) for line in ("" if text is None else str(text)).split("\n"))


def to_strict(obj: object, nulled: list[str] | None = None, _path: str = "$") -> object:
    """A copy of ``obj`` that strict JSON can hold: non-finite floats -> ``None``, numpy -> Python.

    The JSONPath-like place of every replaced value is appended to ``nulled``
    (when given), so that a document can say which numbers were not finite.
    """
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        if nulled is not None:
            nulled.append(_path)
        return None
    if isinstance(obj, dict):
        return {k: to_strict(v, nulled, f"{_path}.{k}") for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_strict(v, nulled, f"{_path}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, str | int | bool) or obj is None:
        return obj
    if hasattr(obj, "tolist"):  # numpy arrays and scalars (scalars have tolist too)
        return to_strict(obj.tolist(), nulled, _path)
    return obj  # dates, paths: the caller's ``default`` turns them into text


def dumps_strict(obj: object, *, default: Callable[[object], object] | None = None,
                 nulled: list[str] | None = None, **kw: object) -> str:
    """``json.dumps`` that never writes ``NaN``/``Infinity`` (a strict parser such as JSON.parse fails on them).

    Non-finite numbers become ``null`` (their places go to ``nulled``); anything
    else that is not JSON goes through ``default`` first and is checked again.
    """

    def _default(o: object) -> object:
        if default is None:
            raise TypeError(f"{type(o).__name__} is not JSON serialisable")
        return to_strict(default(o), nulled, "$(default)")

    return json.dumps(to_strict(obj, nulled), allow_nan=False, default=_default, **kw)  # type: ignore[arg-type]
