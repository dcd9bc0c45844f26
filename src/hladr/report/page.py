"""A page of a PDF written top-down in the PDF's built-in Helvetica (A4 portrait).

Shared by the run report (``pdf.py``) and the validation record (``hladr.validate``): text, rows of
columns, lines and PNG images placed from the top-left corner in inches, on a page of a
:class:`hladr.report.pdfdoc.PdfDoc`; :func:`pdf_text` makes any text safe for the core font
(Windows-1252).
"""

from __future__ import annotations

import textwrap

from ..safe_text import printable
from .pdfdoc import A4_PT, PdfDoc

__all__ = ["A4", "Page", "pdf_text"]

A4 = (8.27, 11.69)
_ASCENT = 0.75  # of Helvetica's em, above the baseline: a line's top at ``y`` puts its baseline this much lower

_PLAIN = str.maketrans({"≥": ">=", "≤": "<=", "×": "x", "—": "-", "–": "-", "²": "2", "³": "3", "−": "-",
                        "→": "->", "’": "'"})


def pdf_text(text: object) -> str:
    """Text for a page in the PDF's built-in Helvetica (Windows-1252): the report's own symbols spelled
    out, any other character outside it as U+XXXX (a sample id in another script stays exact, if not
    pretty)."""
    s = printable(text).translate(_PLAIN)
    out = []
    for ch in s:
        try:
            ch.encode("cp1252")
            out.append(ch)
        except UnicodeEncodeError:
            out.append(f"U+{ord(ch):04X}")
    return "".join(out)


class Page:
    """A page written top-down in inches from the top-left corner; ``y`` is where the next line's top goes."""

    def __init__(self, doc: PdfDoc) -> None:
        self.page = doc.new_page()
        self.y = 0.6

    def _baseline(self, size: float) -> float:
        return A4_PT[1] - self.y * 72.0 - _ASCENT * size

    def text(self, s: str, *, size: float = 9, bold: bool = False, x: float = 0.6, width: int = 110,
             color: str = "black") -> None:
        for line in textwrap.wrap(s, width=width) or [""]:
            self.page.text(x * 72.0, self._baseline(size), pdf_text(line), size=size, bold=bold, colour=color)
            self.y += size / 72 * 1.35

    def columns(self, cells: list[str], xs: list[float], *, size: float = 8, bold: bool = False,
                color: str = "black") -> None:
        for cell, x in zip(cells, xs, strict=False):
            self.page.text(x * 72.0, self._baseline(size), pdf_text(cell), size=size, bold=bold, colour=color)
        self.y += size / 72 * 1.4

    def line(self, x0: float, x1: float, *, color: str = "#555555", width: float = 0.6) -> None:
        """A horizontal line at the current ``y``, from ``x0`` to ``x1`` inches."""
        y = A4_PT[1] - self.y * 72.0
        self.page.line(x0 * 72.0, y, x1 * 72.0, y, colour=color, width=width)

    def image(self, png: bytes, width_in: float) -> None:
        """``png`` centred, ``width_in`` wide, its top at ``y``."""
        _, (pw, ph) = self.page._doc.image(png)
        h_in = width_in * ph / pw
        self.page.image(png, (A4[0] - width_in) / 2 * 72.0, A4_PT[1] - (self.y + h_in) * 72.0, width_in * 72.0)
        self.y += h_in + 0.1

    def gap(self, inches: float = 0.12) -> None:
        self.y += inches
