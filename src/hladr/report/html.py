"""The report as one self-contained HTML page: images embedded, CSS inline, no script, no network.

It opens from a USB stick on a hospital PC: a run header with the pass / warn / fail counts,
the summary with failures and warnings first (each row links to its sample), the calibration,
then each sample's gating sequence, AB/C histogram, self-check and result in words.
"""

from __future__ import annotations

import base64
import html

from ..safe_text import printable
from .model import ReportRun
from .words import _num, check_rows, flag_lines, gate_kind, number, qc_counts, result_sentence, review_order, run_facts

__all__ = ["render_html"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Arial,sans-serif;margin:1.5em auto;max-width:1100px;
color:#111;line-height:1.35;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em} h2{border-bottom:2px solid #333;padding-bottom:.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:.4em 0} td,th{border:1px solid #bbb;padding:3px 8px;font-size:14px;
vertical-align:top;text-align:left} th{background:#eee} td.num{text-align:right;font-variant-numeric:tabular-nums}
.facts td:first-child{font-weight:600;background:#f6f6f6}
.qc{display:inline-block;padding:1px 8px;border-radius:3px;font-weight:700;font-size:13px}
.qc-pass{background:#d6ecd2;color:#114411} .qc-warn{background:#ffe9a8;color:#5a4300}
.qc-fail{background:#f6c9c9;color:#7a0000}
tr.fail td{background:#fdeaea} tr.warn td{background:#fff7dc}
.counts span{margin-right:1.2em;font-size:1.1em}
section.sample{border:1px solid #ccc;border-radius:4px;padding:.4em 1em 1em;margin:1.2em 0;page-break-inside:avoid}
section.sample h3{margin:.3em 0} .result{font-size:1.05em;background:#f4f7fb;border-left:4px solid #0072B2;
padding:.4em .7em} img{max-width:100%;height:auto;display:block;margin:.5em 0}
.sev-fail{color:#a00000;font-weight:700} .sev-warn{color:#7a5a00;font-weight:700} .sev-info{color:#555}
code{font-size:12px} .small{font-size:12px;color:#444}
.manual{font-size:11px;border:1px solid #0072B2;color:#0072B2;border-radius:3px;padding:0 4px}
"""


def _e(text: object) -> str:
    """HTML-escaped, without control or format characters (ANSI, bidi, NUL)."""
    return html.escape(printable(text))


def _img(png: bytes | None, alt: str) -> str:
    if not png:
        return ""
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _qc(q: str) -> str:
    return f'<span class="qc qc-{_e(q)}">{_e(q)}</span>'


def _calibration_html(run: ReportRun, png: bytes | None) -> str:
    cal = run.calibration or {}
    if not cal:
        return "<p>No calibration.</p>"
    rows = []
    for lv in cal.get("levels") or []:
        rcv = lv.get("rcv_pct")
        res = lv.get("residual_pct")
        rows.append(
            f"<tr><td>{_e(lv.get('name'))}</td><td class=num>{number(lv.get('pe_per_bead'))}</td>"
            f"<td class=num>{lv.get('events', 0):,}</td><td class=num>{number(lv.get('mfi'))}</td>"
            f"<td class=num>{'—' if rcv is None else f'{rcv:.1f} %'}</td>"
            f"<td class=num>{'—' if res is None else f'{res:+.1f} %'}</td>"
            f"<td>{'yes' if lv.get('used') else 'no' + (' (saturated)' if lv.get('saturated') else '')}</td></tr>")
    fit = cal.get("fit") or {}
    verdict = "accepted" if cal.get("accepted") else "NOT accepted"
    fit_line = (f"log10 PE = {_num(fit.get('intercept'), '.4f')} + {_num(fit.get('slope'), '.4f')} · log10 MFI; "
                f"R² = {_num(fit.get('r2'), '.4f')}" if fit else "no fit")
    reasons = "".join(f"<li>{_e(x)}</li>" for x in cal.get("reasons") or [])
    lot = cal.get("lot") or {}
    inputs = ", ".join(f"{_e(i.get('file'))}" for i in cal.get("inputs") or [])
    if not fit:
        return (f"<p>{_qc('fail')} <b>{verdict}</b>. No calibration fit.</p>"
                + (f"<ul>{reasons}</ul>" if reasons else "") + (_img(png, "bead calibration") if png else ""))
    return (f"<p>{_qc('pass' if cal.get('accepted') else 'fail')} <b>{verdict}</b>: {_e(fit_line)}. "
            f"Lot {_e(lot.get('id', '—'))}; bead tube {inputs or '—'}; calibration id "
            f"<code>{_e(cal.get('id', '—'))}</code>.</p>"
            + _img(png, "bead calibration") +
            "<table><tr><th>level</th><th>PE per bead (certificate)</th><th>events</th><th>median PE (MFI)</th>"
            "<th>rCV</th><th>residual</th><th>in the fit</th></tr>" + "".join(rows) + "</table>"
            + (f"<ul>{reasons}</ul>" if reasons else ""))


def _summary(run: ReportRun) -> str:
    recs = [s.record for s in run.samples]
    rows = []
    for k in review_order(recs):
        r = recs[k]
        cls = r.get("qc") if r.get("qc") in ("fail", "warn") else ""
        why = "; ".join(m for sev, _, m in flag_lines(r) if sev in ("fail", "warn"))
        manual = " <span class=manual>manual gates</span>" if gate_kind(r).startswith("manual") else ""
        rows.append(
            f'<tr class="{cls}"><td><a href="#s{k + 1}">{_e(r.get("sample_id"))}</a>{manual}</td>'
            f'<td>{_e(r.get("file"))}</td>'
            f"<td class=num>{number(r.get('monocyte_count'))}</td><td class=num>{number(r.get('hladr_abc'))}</td>"
            f"<td>{_e(r.get('ferritin_text'))} {_e(r.get('ferritin_unit'))}</td><td>{_e(r.get('phenotype'))}</td>"
            f"<td>{_qc(r.get('qc', ''))}</td><td>{_e(why)}</td></tr>")
    return ("<table class=summary><tr><th>sample</th><th>file</th><th>monocytes</th><th>HLA-DR AB/C</th>"
            "<th>ferritin</th><th>phenotype</th><th>QC</th><th>why</th></tr>" + "".join(rows) + "</table>")


def _sample_html(k: int, s, png: bytes | None) -> str:
    r = s.record
    flags = "".join(f'<li><span class="sev-{_e(sev)}">{_e(sev)}</span> <code>{_e(code)}</code>: {_e(msg)}</li>'
                    for sev, code, msg in flag_lines(r))
    checks = check_rows(r)
    check_html = ("<table><tr><th>self-check</th><th>value</th><th>limit</th><th></th></tr>" + "".join(
        f"<tr><td>{_e(a)}</td><td class=num>{_e(b)}</td><td>{_e(c)}</td><td>{_e(d)}</td></tr>" for a, b, c, d in checks)
        + "</table>") if checks else ""
    figure = (_img(png, f"gating of {r.get('sample_id')}")
              or "<p><i>No figure: the tube's events could not be used.</i></p>")
    who = " · ".join(x for x in (f"subject {_e(r['subject_id'])}" if r.get("subject_id") else "",
                                  f"visit {_e(r['visit'])}" if r.get("visit") else "",
                                  f"file {_e(r.get('file'))}") if x)
    return (f'<section class="sample" id="s{k + 1}"><h3>{_e(r.get("sample_id"))} {_qc(r.get("qc", ""))}</h3>'
            f'<p class=small>{who}</p><p class="result">{_e(result_sentence(r))}</p>'
            f"<p>Gates: <b>{_e(gate_kind(r))}</b>"
            f"{' <span class=manual>manual gates</span>' if gate_kind(r).startswith('manual') else ''}.</p>{figure}"
            f"{check_html}<p>Flags:</p><ul>{flags or '<li>none</li>'}</ul>"
            f'<p class=small>File SHA-256 <code>{_e(r.get("sha256") or "—")}</code>; calibration '
            f'<code>{_e(r.get("calibration_id") or "—")}</code>; rule set {_e(r.get("ruleset"))}; '
            f'hladr {_e(r.get("software_version"))}</p></section>')


def render_html(run: ReportRun, sample_pngs: list[bytes | None], calibration_png: bytes | None,
                missing: list[str] = ()) -> str:
    """The page; ``sample_pngs`` in the samples' order."""
    counts = qc_counts([s.record for s in run.samples])
    facts = "".join(f"<tr><td>{_e(a)}</td><td>{_e(b)}</td></tr>" for a, b in run_facts(run))
    notes = list(run.notes) + list(missing)
    note_html = "".join(f"<li>{_e(n)}</li>" for n in notes) or "<li>none</li>"
    samples = "".join(_sample_html(k, s, png) for k, (s, png) in enumerate(zip(run.samples, sample_pngs, strict=True)))
    meta = f'\n<meta name="hladr-run-id" content="{_e(run.run_id)}">' if run.run_id else ""
    run_line = f"\n<p>Run id: <code>{_e(run.run_id)}</code></p>" if run.run_id else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hladr run report {_e(run.run_id)}</title>{meta}
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_CSS}</style></head><body>
<h1>HLA-DR run report</h1>{run_line}
<table class=facts>{facts}</table>
<p class=counts><span>{len(run.samples)} samples:</span><span id=n-pass>{_qc('pass')} {counts['pass']}</span>
<span id=n-warn>{_qc('warn')} {counts['warn']}</span><span id=n-fail>{_qc('fail')} {counts['fail']}</span></p>
<h2>Summary</h2>
{_summary(run)}
<h2>Calibration</h2>
{_calibration_html(run, calibration_png)}
<h2>Samples</h2>
<p class=small>Each sample: its gating sequence (grey: the events of the parent step, darker where denser;
coloured: the events the step kept; dashed: the gate's limits where it has straight ones; the automated monocyte
gate is drawn in CD14, SSC, FSC and CD45 together, so its kept events here are a projection), then the monocytes'
HLA-DR with its median (black) and the 5,000, 8,000 and 15,000 AB/C reference lines (dashed).</p>
{samples}
<h2>Notes</h2><ul>{note_html}</ul>
<p class=small>hladr {_e(run.facts.get('hladr_version', ''))}. This page needs no network and no script.</p>
</body></html>
"""
