"""The report as a PDF for the paper archive: the run's page(s), then one page per sample.

Written by :mod:`hladr.report.pdfdoc` (A4 portrait, the PDF's built-in Helvetica, so that the text
can be searched and copied). Each sample's picture is the PNG the HTML shows, placed on its page
as it is: it is drawn once, on whichever process drew it for the HTML, and the PDF only lays out pages.
"""

from __future__ import annotations

from .model import ReportRun
from .page import A4 as _A4
from .page import Page as _Page
from .pdfdoc import PdfDoc
from .words import check_rows, flag_lines, gate_kind, number, qc_counts, result_sentence, review_order, run_facts

__all__ = ["render_pdf"]

_ROWS_PER_PAGE = 38


_QC_COLOUR = {"fail": "#a00000", "warn": "#7a5a00", "pass": "#115511"}


def _run_pages(doc: PdfDoc, run: ReportRun, cal_png: bytes | None) -> list:
    recs = [s.record for s in run.samples]
    counts = qc_counts(recs)
    p = _Page(doc)
    p.text("HLA-DR run report", size=16, bold=True)
    p.gap(0.05)
    for label, value in run_facts(run):
        p.columns([label, value], [0.6, 2.4], size=8.5)
    p.gap()
    p.text(f"{len(recs)} samples: pass {counts['pass']}, warn {counts['warn']}, fail {counts['fail']}", size=11,
           bold=True)
    p.gap()
    cal = run.calibration or {}
    p.text("Calibration: " + ("accepted" if cal.get("accepted") else "NOT accepted")
           + "".join(f"; {r}" for r in cal.get("reasons") or []), size=10, bold=True)
    if cal_png:
        p.image(cal_png, 7.1)
    xs = [0.6, 1.3, 2.6, 3.3, 4.3, 5.1, 5.9]
    p.columns(["level", "PE/bead", "events", "MFI", "rCV", "residual", "used"], xs, bold=True)
    for lv in cal.get("levels") or []:
        rcv, res = lv.get("rcv_pct"), lv.get("residual_pct")
        p.columns([str(lv.get("name")), number(lv.get("pe_per_bead")), f"{lv.get('events', 0):,}",
                   number(lv.get("mfi")), "—" if rcv is None else f"{rcv:.1f} %",
                   "—" if res is None else f"{res:+.1f} %", "yes" if lv.get("used") else "no"], xs)
    p.gap()
    pages = [p]
    xs = [0.6, 1.9, 2.9, 3.9, 4.9, 6.1, 6.8]
    head = ["sample", "monocytes", "HLA-DR AB/C", "ferritin", "phenotype", "QC", "no."]
    p.text("Summary (failures and warnings first)", size=10, bold=True)
    p.columns(head, xs, bold=True)
    for k in review_order(recs):
        if p.y > _A4[1] - 0.7:
            p = _Page(doc)
            pages.append(p)
            p.text("Summary, continued", size=10, bold=True)
            p.columns(head, xs, bold=True)
        r = recs[k]
        manual = " (manual)" if gate_kind(r).startswith("manual") else ""
        p.columns([str(r.get("sample_id"))[:22] + manual, number(r.get("monocyte_count")), number(r.get("hladr_abc")),
                   f"{r.get('ferritin_text', '')} {r.get('ferritin_unit', '')}".strip()[:16],
                   str(r.get("phenotype")), str(r.get("qc")), str(k + 1)], xs,
                  color=_QC_COLOUR.get(r.get("qc"), "black"))
    return pages


def _sample_page(doc: PdfDoc, run: ReportRun, k: int, s, png: bytes | None) -> _Page:
    r = s.record
    p = _Page(doc)
    p.text(f"{r.get('sample_id')}   QC {r.get('qc')}", size=15, bold=True, color=_QC_COLOUR.get(r.get("qc"), "black"))
    who = ", ".join(x for x in (f"subject {r['subject_id']}" if r.get("subject_id") else "",
                                f"visit {r['visit']}" if r.get("visit") else "", f"file {r.get('file')}") if x)
    p.text(f"no. {k + 1} of {len(run.samples)} in the run; {who}", size=8.5)
    p.gap(0.05)
    p.text(result_sentence(r), size=10, width=95)
    p.text(f"Gates: {gate_kind(r)}", size=9)
    p.gap(0.05)
    if png:
        p.image(png, 7.1)
    else:
        p.text("No figure: the tube's events could not be used.", size=9)
    rows = check_rows(r)
    if rows:
        xs = [0.6, 4.0, 5.0, 6.6]
        p.columns(["self-check", "value", "limit", ""], xs, bold=True)
        for row in rows:
            p.columns(list(row), xs)
        p.gap(0.08)
    p.text("Flags", size=9, bold=True)
    lines = flag_lines(r)
    for sev, code, msg in lines:
        p.text(f"{sev}  {code}: {msg}", size=8, width=120, color=_QC_COLOUR.get(sev, "#333333"))
    if not lines:
        p.text("none", size=8)
    p.gap(0.08)
    p.text(f"File SHA-256 {r.get('sha256') or '—'}; calibration {r.get('calibration_id') or '—'}; "
           f"rule set {r.get('ruleset')}; hladr {r.get('software_version')}", size=7, width=140, color="#444444")
    return p


def warm_up() -> None:
    """Lay out and write one throw-away page (kept for the report's drawing process; the writer loads nothing)."""
    render_pdf(ReportRun(run_id="", samples=(), calibration={}), [], None)


def render_pdf(run: ReportRun, sample_pngs: list[bytes | None], calibration_png: bytes | None) -> bytes:
    """The PDF: the run's page(s) (header, counts, calibration, summary), then one page per sample; the
    PNGs placed as they are (:mod:`hladr.report.pdfdoc`), so the same run gives the same bytes."""
    doc = PdfDoc(title=f"hladr run report {run.run_id}", creator="hladr")
    _run_pages(doc, run, calibration_png)
    for k, (s, png) in enumerate(zip(run.samples, sample_pngs, strict=True)):
        _sample_page(doc, run, k, s, png)
    return doc.tobytes()
