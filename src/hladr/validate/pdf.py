"""The validation record as a PDF for the paper archive (A4, the PDF's built-in Helvetica).

Pages: the verdict, what was validated and every check (IQ, then OQ) with its value, limit and
detail; the tables of figures; last, the sign-off page (performed by, machine, date, signature,
reviewed by). Every page carries the hladr version, the page number and the SHA-256 of the
validation.json it was drawn from, so that a printed page can be matched with its file.
"""

from __future__ import annotations

from ..report.page import A4, Page
from ..report.pdfdoc import PdfDoc
from .html import SIGN_OFF, fact_rows, verdict
from .record import SECTIONS, Table, Validation

__all__ = ["render_pdf"]

_BOTTOM = A4[1] - 0.8  # where a page's text stops (the footer is below)
_GREEN, _RED = "#115511", "#a00000"


class _Pages:
    """Pages written one after another; a new page when the next block does not fit."""

    def __init__(self, doc: PdfDoc, heading: str) -> None:
        self.doc, self.heading, self.pages = doc, heading, []
        self.new()

    def new(self) -> Page:
        p = Page(self.doc)
        if self.pages:
            p.text(self.heading, size=8, color="#444444")
            p.gap(0.05)
        self.pages.append(p)
        return p

    @property
    def page(self) -> Page:
        return self.pages[-1]

    def room(self, inches: float) -> Page:
        if self.page.y + inches > _BOTTOM:
            self.new()
        return self.page


def _checks(pp: _Pages, record: Validation) -> None:
    xs = [0.6, 1.15, 3.35]
    for key, title in SECTIONS.items():
        pp.room(0.8).text(title, size=11, bold=True)
        pp.page.columns(["result", "check", "found / acceptance limit"], xs, size=8, bold=True)
        for c in (c for c in record.checks if c.section == key):
            p = pp.room(0.55)
            colour = _GREEN if c.passed else _RED
            short = c.value if len(c.value) <= 70 else c.value[:66] + " ..."
            p.columns(["pass" if c.passed else "FAIL", c.id, short], xs, size=8, bold=not c.passed, color=colour)
            if short != c.value:
                p.text(c.value, size=7, x=1.15, width=125, color=colour)
            p.text(f"{c.what}; limit: {c.limit}", size=7, x=1.15, width=125, color="#333333")
            if c.detail and not c.passed:
                p.text(c.detail, size=7, x=1.15, width=125, color=_RED)
            p.gap(0.07)
        pp.page.gap(0.1)


def _table(pp: _Pages, t: Table) -> None:
    cells = [list(t.head), *[list(r) for r in t.rows]]
    widths = [max(len(str(row[j])) for row in cells) for j in range(len(t.head))]
    size = 7.5
    char = size / 72 * 0.56  # inches per character of Helvetica (its digits are 0.556 em), about
    total = sum(w + 2 for w in widths) * char
    if total > 7.1:
        size *= 7.1 / total
        char = size / 72 * 0.56
    xs, x = [], 0.6
    for w in widths:
        xs.append(x)
        x += (w + 2) * char
    p = pp.room(0.6 + size / 72 * 1.4 * min(len(t.rows), 6))
    p.text(t.title, size=10, bold=True, width=100)
    p.columns([str(h) for h in t.head], xs, size=size, bold=True)
    for row in t.rows:
        if pp.page.y + size / 72 * 1.4 > _BOTTOM:
            p = pp.new()
            p.text(t.title + " (continued)", size=10, bold=True, width=100)
            p.columns([str(h) for h in t.head], xs, size=size, bold=True)
        failed = any(str(c).startswith("FAIL") or c in ("NO", "NOT AS DECLARED") for c in row)
        pp.page.columns([str(c) for c in row], xs, size=size, color=_RED if failed else "black")
    if t.note:
        pp.page.text(t.note, size=7, width=140, color="#333333")
    pp.page.gap(0.2)


def _sign_off(pp: _Pages, record: Validation) -> None:
    p = pp.room(4.2)
    p.gap(0.1)
    p.text("Sign-off", size=12, bold=True)
    p.text("This record is complete only when signed. The software's verdict: " + verdict(record)
           + ("." if record.passed else ". The installation must not be used to report results until the failed "
                                        "checks are resolved."), size=8.5, width=110)
    p.gap(0.15)
    for label in SIGN_OFF:
        prefill = str(record.facts.get("machine")) if label == "Machine" else ""
        p.columns([label, prefill], [0.6, 3.0], size=9, bold=False)
        p.y += 0.02
        p.line(2.95, 7.6, color="#555555", width=0.6)
        p.y -= 0.02
        p.gap(0.3)


def render_pdf(record: Validation, json_sha256: str) -> bytes:
    """The PDF's bytes (no creation date: the same record gives the same bytes)."""
    f = record.facts
    doc = PdfDoc(title=f"hladr validation record {f.get('hladr_version')}", creator="hladr validate")
    pp = _Pages(doc, f"hladr validation record, hladr {f.get('hladr_version')}, {f.get('mode')} run of "
                     f"{f.get('started')}")
    p = pp.page
    p.text("hladr validation record", size=16, bold=True)
    p.text("Installation qualification (IQ) and operational qualification (OQ) on this installation "
           "(hladr validate)", size=9)
    p.gap(0.1)
    ok = record.passed
    p.text(verdict(record), size=12, bold=True, color=_GREEN if ok else _RED, width=80)
    p.gap(0.08)
    for label, value in fact_rows(record):
        top = p.y
        p.text(label, size=7.5)
        below_label, p.y = p.y, top
        p.text(value, size=7.5, x=2.3, width=105)
        p.y = max(p.y, below_label)
    p.gap(0.15)
    _checks(pp, record)
    for t in record.tables:
        _table(pp, t)
    _sign_off(pp, record)
    n = len(pp.pages)
    for k, page in enumerate(pp.pages, 1):
        page.y = A4[1] - 0.45
        page.text(f"hladr {f.get('hladr_version')} validation record, page {k} of {n}; validation.json "
                  f"SHA-256 {json_sha256}", size=6.5, color="#555555", width=200)
    return doc.tobytes()
