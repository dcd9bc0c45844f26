"""The minimal PDF writer: a PNG placed as it is comes out with the same pixels, any PNG is taken, the text
is searchable, and the same pages give the same bytes."""

from __future__ import annotations

import io

import numpy as np
import pypdf
import pytest
from PIL import Image

from hladr.report.page import Page
from hladr.report.pdfdoc import PdfDoc, png_as_rgb


def _png(arr: np.ndarray, mode: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="png")
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_an_image_placed_in_the_pdf_has_the_pngs_pixels(mode):
    rng = np.random.default_rng(len(mode))
    shape = (37, 53, len(mode)) if mode != "L" else (37, 53)
    arr = rng.integers(0, 256, size=shape, dtype=np.uint8)
    png = _png(arr, mode)
    doc = PdfDoc(title="t")
    p = Page(doc)
    p.text("sample ÄB (x) \\ done", size=10)
    p.image(png, 3.0)
    p.image(png, 2.0)  # the same PNG twice: stored once
    pdf = doc.tobytes()
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    page = reader.pages[0]
    assert "sample ÄB (x) \\ done" in page.extract_text()
    images = page.images
    assert len(images) == 1 or images[0].data == images[1].data
    got = np.asarray(images[0].image.convert("RGB"))
    want = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    np.testing.assert_array_equal(got, want)
    assert pdf.count(b"/Subtype /Image") == 1
    assert doc.tobytes() == pdf  # the same pages, the same bytes


def test_an_rgb_png_goes_in_as_it_is():
    png = _png(np.zeros((4, 4, 3), dtype=np.uint8), "RGB")
    assert png_as_rgb(png) is png
    rgba = _png(np.zeros((4, 4, 4), dtype=np.uint8), "RGBA")
    assert png_as_rgb(rgba) != rgba and Image.open(io.BytesIO(png_as_rgb(rgba))).mode == "RGB"


def test_not_a_png_is_refused():
    with pytest.raises(ValueError, match="not a PNG"):
        png_as_rgb(b"GIF89a")
