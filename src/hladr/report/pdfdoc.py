"""A minimal PDF writer: A4 pages of text in the PDF's built-in Helvetica, lines, and PNG images.

Why not matplotlib's PDF backend, which drew these pages before: it re-encodes every image it
places (decode, resample, PNG-encode again: ~45 ms a sample page, 4.4 s of a 96-tube run's
report, on one core), and its pages cannot be laid out on several processes and joined. Here a
PNG of 8-bit RGB (what :mod:`hladr.report.draw` writes) goes into the PDF as it is: its IDAT
data is a Flate stream with PNG predictors, which PDF reads natively (ISO 32000-1, 7.4.4.4). Any
other PNG is converted to that first. The text uses the standard Type 1 fonts Helvetica and
Helvetica-Bold with WinAnsiEncoding: searchable, nothing embedded. No creation date: the same
pages give the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

__all__ = ["PdfDoc", "PdfPage", "A4_PT", "png_as_rgb"]

A4_PT = (595.44, 841.68)  # 8.27 x 11.69 in
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_NAMED = {"black": (0.0, 0.0, 0.0), "white": (1.0, 1.0, 1.0)}


def _rgb(colour: str) -> tuple[float, float, float]:
    if colour in _NAMED:
        return _NAMED[colour]
    c = colour.lstrip("#")
    if len(c) != 6:
        raise ValueError(f"colour {colour!r}: give #rrggbb")
    return tuple(int(c[i:i + 2], 16) / 255.0 for i in (0, 2, 4))  # type: ignore[return-value]


def _num(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".") or "0"


def _string(text: str) -> bytes:
    """A PDF literal string of ``text`` in WinAnsiEncoding (characters outside it must be replaced before)."""
    raw = text.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def png_as_rgb(png: bytes) -> bytes:
    """``png`` as an 8-bit RGB, non-interlaced PNG (converted with Pillow when it is not one already)."""
    w, h, depth, colour, interlace, _ = _png_parts(png)
    if depth == 8 and colour == 2 and interlace == 0:
        return png
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        buf = io.BytesIO()
        im.convert("RGB").save(buf, format="png")
    return buf.getvalue()


def _png_parts(png: bytes) -> tuple[int, int, int, int, int, bytes]:
    """(width, height, bit depth, colour type, interlace, IDAT data) of a PNG."""
    if not png.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG")
    pos, idat, ihdr = 8, [], None
    while pos + 8 <= len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        kind = png[pos + 4:pos + 8]
        data = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", data)
        elif kind == b"IDAT":
            idat.append(data)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if ihdr is None or not idat:
        raise ValueError("a PNG without IHDR or IDAT")
    w, h, depth, colour, _, _, interlace = ihdr
    return w, h, depth, colour, interlace, b"".join(idat)


class PdfPage:
    """One page's drawing operations, in points from the page's bottom-left corner."""

    def __init__(self, doc: PdfDoc) -> None:
        self._doc = doc
        self._ops: list[bytes] = []
        self.images: set[str] = set()

    def text(self, x: float, y: float, s: str, *, size: float, bold: bool = False, colour: str = "black") -> None:
        """``s`` with its baseline at (x, y)."""
        r, g, b = _rgb(colour)
        font = "/F2" if bold else "/F1"
        self._ops.append(f"BT {font} {_num(size)} Tf {r:.3f} {g:.3f} {b:.3f} rg {_num(x)} {_num(y)} Td ".encode()
                         + _string(s) + b" Tj ET")

    def line(self, x0: float, y0: float, x1: float, y1: float, *, width: float = 0.6, colour: str = "black") -> None:
        r, g, b = _rgb(colour)
        self._ops.append(f"q {r:.3f} {g:.3f} {b:.3f} RG {_num(width)} w {_num(x0)} {_num(y0)} m {_num(x1)} {_num(y1)} l"
                         f" S Q".encode())

    def image(self, png: bytes, x: float, y: float, w: float) -> float:
        """Place ``png`` with its bottom-left corner at (x, y), ``w`` points wide; returns its height in points."""
        name, (pw, ph) = self._doc.image(png)
        h = w * ph / pw
        self.images.add(name)
        self._ops.append(f"q {_num(w)} 0 0 {_num(h)} {_num(x)} {_num(y)} cm /{name} Do Q".encode())
        return h

    def content(self) -> bytes:
        return b"\n".join(self._ops)


class PdfDoc:
    """The pages of one PDF, written out by :meth:`tobytes`."""

    def __init__(self, title: str = "", creator: str = "hladr") -> None:
        self.title, self.creator = title, creator
        self.pages: list[PdfPage] = []
        self._images: list[tuple[bytes, int, int]] = []  # (IDAT data, width, height)
        self._image_names: dict[bytes, tuple[str, tuple[int, int]]] = {}

    def new_page(self) -> PdfPage:
        page = PdfPage(self)
        self.pages.append(page)
        return page

    def image(self, png: bytes) -> tuple[str, tuple[int, int]]:
        """The image's resource name and pixel size (a PNG placed twice is stored once)."""
        key = hashlib.sha256(png).digest()
        if key not in self._image_names:
            w, h, _, _, _, data = _png_parts(png_as_rgb(png))
            self._images.append((data, w, h))
            self._image_names[key] = (f"Im{len(self._images)}", (w, h))
        return self._image_names[key]

    def tobytes(self) -> bytes:
        objects: list[bytes] = []

        def add(body: bytes) -> int:
            objects.append(body)
            return len(objects)

        def stream(head: str, data: bytes) -> bytes:
            return f"<< {head} /Length {len(data)} >>\nstream\n".encode() + data + b"\nendstream"

        catalog = add(b"")  # filled in below: it names the pages object
        pages_id = add(b"")
        f1 = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
        f2 = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>")
        image_ids = []
        for data, w, h in self._images:
            image_ids.append(add(stream(
                f"/Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceRGB /BitsPerComponent 8 "
                f"/Filter /FlateDecode /DecodeParms << /Predictor 15 /Colors 3 /BitsPerComponent 8 /Columns {w} >>",
                data)))
        kids = []
        for page in self.pages:
            content = add(stream("/Filter /FlateDecode", zlib.compress(page.content(), 6)))
            xobjects = " ".join(f"/{n} {image_ids[int(n[2:]) - 1]} 0 R" for n in sorted(page.images))
            kids.append(add(
                f"<< /Type /Page /Parent {pages_id} 0 R /MediaBox [0 0 {_num(A4_PT[0])} {_num(A4_PT[1])}] "
                f"/Resources << /Font << /F1 {f1} 0 R /F2 {f2} 0 R >> /XObject << {xobjects} >> >> "
                f"/Contents {content} 0 R >>".encode()))
        objects[catalog - 1] = f"<< /Type /Catalog /Pages {pages_id} 0 R >>".encode()
        objects[pages_id - 1] = (f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] "
                                 f"/Count {len(kids)} >>").encode()
        info = add(b"<< /Title " + _string(self.title) + b" /Creator " + _string(self.creator) + b" >>")
        out = io.BytesIO()
        out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for k, body in enumerate(objects, 1):
            offsets.append(out.tell())
            out.write(f"{k} 0 obj\n".encode() + body + b"\nendobj\n")
        xref = out.tell()
        out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
        for off in offsets:
            out.write(f"{off:010d} 00000 n \n".encode())
        out.write(f"trailer\n<< /Size {len(objects) + 1} /Root {catalog} 0 R /Info {info} 0 R >>\n"
                  f"startxref\n{xref}\n%%EOF\n".encode())
        return out.getvalue()
