"""A page of a PDF written top-down with matplotlib in the PDF's built-in Helvetica (A4 portrait).

Shared by the run report (``pdf.py``) and the validation record (``hladr.validate``): text, rows of
columns and PNG images placed from the top-left corner in inches; :func:`pdf_text` makes any text
safe for the core font (Windows-1252) and for matplotlib (``$``).
"""

from __future__ import annotations

import io
import textwrap

import numpy as np

from ..safe_text import printable

__all__ = ["A4", "Page", "pdf_text"]

A4 = (8.27, 11.69)


_PLAIN = str.maketrans({"≥": ">=", "≤": "<=", "×": "x", "—": "-", "–": "-", "²": "2", "³": "3", "−": "-",
                        "→": "->", "’": "'"})


def pdf_text(text: object) -> str:
    """Text for a page in the PDF's built-in Helvetica (Windows-1252): the report's own symbols spelled
    out, any other character outside it as U+XXXX (a sample id in another script stays exact, if not
    pretty); $ escaped, which matplotlib would take for mathematics."""
    s = printable(text).translate(_PLAIN)
    out = []
    for ch in s:
        try:
            ch.encode("cp1252")
            out.append(ch)
        except UnicodeEncodeError:
            out.append(f"U+{ord(ch):04X}")
    return "".join(out).replace("$", r"\$")


class Page:
    """A page written top-down in inches from the top-left corner."""

    def __init__(self, plt) -> None:
        self.fig = plt.figure(figsize=A4)
        self.y = 0.6

    def text(self, s: str, *, size: float = 9, bold: bool = False, x: float = 0.6, width: int = 110,
             color: str = "black", family: str | None = None) -> None:
        for line in textwrap.wrap(s, width=width) or [""]:
            self.fig.text(x / A4[0], 1 - self.y / A4[1], pdf_text(line), fontsize=size, va="top",
                          weight="bold" if bold else "medium", color=color, family=family)
            self.y += size / 72 * 1.35

    def columns(self, cells: list[str], xs: list[float], *, size: float = 8, bold: bool = False,
                color: str = "black") -> None:
        for cell, x in zip(cells, xs, strict=False):
            self.fig.text(x / A4[0], 1 - self.y / A4[1], pdf_text(cell), fontsize=size, va="top",
                          weight="bold" if bold else "medium", color=color)
        self.y += size / 72 * 1.4

    def image(self, png: bytes, width_in: float) -> None:
        from PIL import Image  # matplotlib's own PNG reader; uint8 keeps the PDF backend off its float path

        with Image.open(io.BytesIO(png)) as im:
            img = np.asarray(im.convert("RGB"))
        h_in = width_in * img.shape[0] / img.shape[1]
        ax = self.fig.add_axes(((A4[0] - width_in) / 2 / A4[0], 1 - (self.y + h_in) / A4[1],
                                width_in / A4[0], h_in / A4[1]))
        ax.imshow(img, interpolation="none")
        ax.set_axis_off()
        self.y += h_in + 0.1

    def gap(self, inches: float = 0.12) -> None:
        self.y += inches
