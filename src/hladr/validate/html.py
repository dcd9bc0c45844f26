"""The validation record as one self-contained HTML page: CSS inline, no script, no image, no network.

Layout: the verdict, what was validated (version, seed, rule table, machine), every check with
its value and limit (failed ones first in the summary line), the tables of figures, and the
sign-off block a quality manager fills in on paper.
"""

from __future__ import annotations

import html

from ..safe_text import printable
from .record import SECTIONS, Validation

__all__ = ["render_html", "SIGN_OFF", "fact_rows", "verdict"]

# the sign-off block, in order: (label, prefilled from the record?)
SIGN_OFF = ("Performed by (name)", "Machine", "Date", "Signature", "Reviewed by (name)",
            "Decision (released for use: yes / no)", "Date", "Signature")

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Arial,sans-serif;margin:1.5em auto;max-width:1100px;
color:#111;line-height:1.35;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em} h2{border-bottom:2px solid #333;padding-bottom:.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:.4em 0} td,th{border:1px solid #bbb;padding:3px 8px;font-size:13px;
vertical-align:top;text-align:left} th{background:#eee}
.facts td:first-child{font-weight:600;background:#f6f6f6}
.verdict{font-size:1.3em;font-weight:700;padding:.4em .8em;border-radius:4px;display:inline-block}
.pass{background:#d6ecd2;color:#114411} .fail{background:#f6c9c9;color:#7a0000}
tr.failed td{background:#fdeaea} .small{font-size:12px;color:#444}
.sign td{height:2.2em;min-width:14em} .sign td:first-child{font-weight:600;background:#f6f6f6;min-width:10em}
@media print{section{page-break-inside:avoid}}
"""


def _e(text: object) -> str:
    return html.escape(printable(text))


def fact_rows(record: Validation) -> list[tuple[str, str]]:
    """The facts shown at the top of the record, in words."""
    f = record.facts
    plan = f.get("plan") or {}
    ev = ", ".join(f"{k} {v:,}" for k, v in (plan.get("events_per_tube") or {}).items())
    return [
        ("hladr version", str(f.get("hladr_version"))),
        ("mode", f"{f.get('mode')}: {plan.get('runs_per_profile_and_instrument')} run(s) per profile and instrument, "
                 f"{plan.get('samples_per_run')} samples per run; events per tube: {ev}"),
        ("seed", f"{f.get('seed')} ({f.get('seed_source')})"),
        ("rule set", f"{f.get('ruleset')} from {f.get('rule_table')}"),
        ("rule table SHA-256", str(f.get("rule_table_sha256"))),
        ("Python", str(f.get("python"))),
        ("installed in", str(f.get("package_folder"))),
        ("machine", f"{f.get('machine')} ({f.get('platform')})"),
        ("run by account", str(f.get("user"))),
        ("started / finished (UTC)", f"{f.get('started')} / {f.get('finished')} ({f.get('duration_s')} s)"),
    ]


def verdict(record: Validation) -> str:
    """The record's verdict in one line (a development install accepted by --allow-development is said)."""
    if not record.passed:
        return (f"FAILED: {len(record.failed)} of {len(record.checks)} checks did not meet their limit: "
                + ", ".join(c.id for c in record.failed))
    dev = any(c.id == "iq.files" and c.value == "development install" for c in record.checks)
    return ("PASSED, but on a development install accepted by --allow-development: not an installation "
            "qualification" if dev else "PASSED: every check met its acceptance limit")


def render_html(record: Validation, json_sha256: str) -> str:
    """The page; ``json_sha256`` ties it to the validation.json it was drawn from."""
    ok = record.passed
    parts = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>hladr validation record "
             f"{_e(record.facts.get('hladr_version'))}</title><style>{_CSS}</style></head><body>",
             "<h1>hladr validation record</h1>",
             "<p>Installation qualification (IQ) and operational qualification (OQ) of hladr on this "
             "installation, made by <code>hladr validate</code>.</p>",
             f'<p class="verdict {"pass" if ok else "fail"}">{_e(verdict(record))}</p>',
             '<table class="facts">' + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>"
                                               for k, v in fact_rows(record)) + "</table>"]
    for key, title in SECTIONS.items():
        rows = [c for c in record.checks if c.section == key]
        parts.append(f"<section><h2>{_e(title)}</h2><table><tr><th>check</th><th>what</th><th>found</th>"
                     "<th>acceptance limit</th><th>result</th><th>detail</th></tr>")
        for c in rows:
            parts.append(f'<tr class="{"" if c.passed else "failed"}"><td><code>{_e(c.id)}</code></td>'
                         f"<td>{_e(c.what)}</td><td>{_e(c.value)}</td><td>{_e(c.limit)}</td>"
                         f'<td><span class="verdict {"pass" if c.passed else "fail"}" style="font-size:13px">'
                         f'{"pass" if c.passed else "FAIL"}</span></td><td class="small">{_e(c.detail)}</td></tr>')
        parts.append("</table></section>")
    for t in record.tables:
        parts.append(f"<section><h2>{_e(t.title)}</h2><table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in t.head)
                     + "</tr>" + "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in t.rows)
                     + "</table>" + (f'<p class="small">{_e(t.note)}</p>' if t.note else "") + "</section>")
    parts.append("<section><h2>Sign-off</h2><p>To be completed on paper: the archive copy is validation.pdf.</p>"
                 '<table class="sign">' + "".join(f"<tr><td>{_e(label)}</td><td>{_e(_prefill(label, record))}</td></tr>"
                                                   for label in SIGN_OFF) + "</table>")
    parts.append(f'<p class="small">validation.json SHA-256 {_e(json_sha256)}</p></section></body></html>\n')
    return "".join(parts)


def _prefill(label: str, record: Validation) -> str:
    return f"{record.facts.get('machine')}" if label == "Machine" else ""
