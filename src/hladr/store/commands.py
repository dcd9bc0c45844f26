"""``hladr results list|show|amend``, ``hladr audit verify|show``: read or amend the store, print, give the status.

The ``format_*`` functions are pure (records in, text out); the commands read the store,
print their text (every value from the store goes through :func:`hladr.safe_text.printable`:
a sample id or a reason is user input) and return the status of SPEC.md section 5.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence

from ..errors import ConfigError
from ..safe_text import printable, printable_lines
from .amend import amend_result
from .audit import AuditEntry, audit_entries
from .query import StoredResult, current_results, run_results, sample_versions, stored_run
from .verify import verify_audit

__all__ = ["format_result_table", "format_versions", "format_entries", "results_list", "results_show",
           "results_amend", "audit_verify", "audit_show"]


def _abc(x: float | None) -> str:
    return "" if x is None else f"{x:,.0f}"


def _ferritin(text: str, unit: str) -> str:
    return (text + (f" {unit}" if unit else "")) if text else "-"


def format_result_table(results: Sequence[StoredResult]) -> str:
    """One line per result: sample, version, result id (12 hex digits), run, when kept, by whom, and its values."""
    head = ("sample", "version", "result", "run", "kept (UTC)", "by", "qc", "phenotype", "HLA-DR AB/C", "ferritin")
    rows = [head] + [(r.sample_id, str(r.version) + ("" if r.current else " (not current)"), r.result_id[:12],
                      (r.run_id or "-") + (" (amended)" if r.kind == "amendment" else ""), r.recorded_utc, r.user,
                      r.qc, r.phenotype, _abc(r.hladr_abc), _ferritin(r.ferritin_text, r.ferritin_unit))
                     for r in results]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _provenance(r: StoredResult) -> list[str]:
    c, s = r.content, r.record
    lines = [f"  file {s.get('file')}  sha256 {s.get('sha256') or '-'}"]
    tube = c.get("tube") or {}
    if tube:
        volts = ", ".join(f"{k} {v}" for k, v in (tube.get("voltages") or {}).items()) or "none stated"
        lines.append(f"  tube: {tube.get('instrument') or '?'} serial {tube.get('serial') or '?'}, "
                     f"acquired {tube.get('date') or '?'}; voltages {volts}")
    cal = c.get("calibration") or {}
    if cal:
        beads = ", ".join(f"{b.get('file')} sha256 {b.get('sha256')}" for b in cal.get("bead_files") or ())
        lines.append(f"  calibration {cal.get('id') or '(none: bead tube not fitted)'}, lot {cal.get('lot')}; {beads}")
    gate = s.get("gate") or {}
    if "template_sha256" in gate:
        lines.append(f"  gates: template {gate.get('template')} sha256 {gate.get('template_sha256')}")
    else:
        lines.append(f"  gates: automated, fitted to this tube ({len(gate)} parameters kept)")
    soft = c.get("software") or {}
    libs = ", ".join(f"{k} {v}" for k, v in soft.items() if k != "hladr" and v)
    lines.append(f"  rule set {s.get('ruleset')}; hladr {soft.get('hladr')} ({libs})")
    return lines


def format_versions(versions: Sequence[StoredResult]) -> str:
    """Every version of one sample, oldest first, with its provenance and why it was made."""
    first = versions[0]
    out = [f"sample {first.sample_id}: {len(versions)} version{'s' * (len(versions) != 1)}, "
           f"current: version {first.latest_version}"]
    for r in versions:
        made = f"run {r.run_id}" if r.kind == "analysis" else f"amendment of version {r.version - 1}"
        out.append("")
        out.append(f"version {r.version}  result {r.result_id}  {made}  kept {r.recorded_utc} by {r.user}"
                   + ("  (current)" if r.current else ""))
        if r.reason:
            out.append(f"  reason: {r.reason}")
        out.append(f"  qc {r.qc}  phenotype {r.phenotype}  HLA-DR {_abc(r.hladr_abc) or '-'} AB/C  "
                   f"ferritin {_ferritin(r.ferritin_text, r.ferritin_unit)}")
        flags = ";".join(str(f.get("code")) for f in r.record.get("flags") or ())
        if flags:
            out.append(f"  flags {flags}")
        out.extend(_provenance(r))
    return "\n".join(out)


def _change(e: AuditEntry) -> str:
    old, new = e.old if isinstance(e.old, dict) else {}, e.new if isinstance(e.new, dict) else {}
    if e.action.startswith("result_"):
        parts = [f"version {new.get('version')} ({str(new.get('result_id'))[:12]})"]
        for key in ("ferritin_text", "ferritin_unit", "phenotype", "qc", "hladr_abc", "calibration_id", "sha256"):
            if old and old.get(key) != new.get(key):
                parts.append(f"{key} {old.get(key)!r} -> {new.get(key)!r}")
        if not old:
            parts.append(f"{new.get('phenotype')}, qc {new.get('qc')}")
        return "; ".join(parts)
    if e.action == "run_finished":
        return ", ".join(f"{k} {v}" for k, v in new.items())
    if e.action == "run_started":
        return f"{new.get('run_dir')}, calibration {new.get('calibration_id')}"
    return ""


def format_entries(entries: Sequence[AuditEntry]) -> str:
    """One line per audit entry: number, when, who, what, about which sample or run, old -> new, why."""
    lines = []
    for e in entries:
        about = f"sample {e.sample_id}" if e.sample_id else f"run {e.run_id}" if e.run_id else ""
        line = f"{e.seq:>5}  {e.utc}  {e.user}  {e.action}  {about}  {_change(e)}".rstrip()
        if e.reason:
            line += f"  reason: {e.reason}"
        lines.append(line)
    return "\n".join(lines)


def results_list(db: str | os.PathLike, *, run: str | None = None, since: _dt.date | None = None) -> int:
    """``hladr results list``: the current results (or one run's, or those kept since a day)."""
    if run is not None:
        stored_run(db, run)  # an unknown run is an error, not an empty list
        results = run_results(db, run)
    else:
        results = current_results(db, since=since)
    if not results:
        print(printable(f"no results in {db}" + (f" kept since {since.isoformat()}" if since else "")))
        return 0
    print(printable_lines(format_result_table(results)))
    return 0


def results_show(db: str | os.PathLike, sample_id: str) -> int:
    """``hladr results show``: every version of one sample."""
    versions = sample_versions(db, sample_id)
    if not versions:
        raise ConfigError(f"no sample {sample_id} in the results store {db}")
    print(printable_lines(format_versions(versions)))
    return 0


def results_amend(db: str | os.PathLike, sample_id: str, *, ferritin: str, ferritin_unit: str | None, reason: str,
                  user: str) -> int:
    """``hladr results amend``: a corrected ferritin as the sample's next version."""
    old, kept = amend_result(db, sample_id, ferritin_text=ferritin, ferritin_unit=ferritin_unit, reason=reason,
                             user=user)
    new = sample_versions(db, sample_id)[-1]
    print(printable(
        f"sample {sample_id}: version {kept.version} kept (result {kept.result_id[:12]}): ferritin "
        f"{_ferritin(old.get('ferritin_text') or '', old.get('ferritin_unit') or '')} -> "
        f"{_ferritin(new.ferritin_text, new.ferritin_unit)}, phenotype {old.get('phenotype')} -> {new.phenotype}, "
        f"qc {old.get('qc')} -> {new.qc}; reason: {reason.strip()}"))
    return 0


def audit_verify(db: str | os.PathLike) -> int:
    """``hladr audit verify``: 0 when the chain and every result agree, 1 naming the first break."""
    check = verify_audit(db)
    counts = f"{check.entries} entries, {check.results} results, {check.runs} runs"
    if check.ok:
        print(printable(f"audit trail intact: {counts} in {db}"))
        return 0
    print(printable(f"audit trail BROKEN at {check.broken} ({counts} in {db})"))
    return 1


def audit_show(db: str | os.PathLike, sample_id: str | None = None) -> int:
    """``hladr audit show``: the audit trail, or its entries about one sample."""
    entries = audit_entries(db, sample_id=sample_id)
    if not entries:
        print(printable(f"no audit entries{f' about sample {sample_id}' if sample_id else ''} in {db}"))
        return 0
    print(printable_lines(format_entries(entries)))
    return 0
