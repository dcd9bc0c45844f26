"""The shell of ``hladr calibrate FILE`` and ``hladr gate FILE``: one tube, no run.

:func:`calibrate_file` fits one bead tube against a lot, prints the fit
(:func:`format_calibration`: lot, PE channel and instrument, the fitted line and
R², one row per bead level, the verdict with its reasons), writes the
calibration record with ``--out`` and keeps it in the results store with
``--db``. It returns 0 when the calibration is accepted and 1 when it is
rejected; a tube that gives no fit at all raises
:class:`~hladr.errors.CalibrationError`.

:func:`gate_file` gates the monocytes of one sample tube alone: the automatic
gate on the compensated events, or a Gating-ML template with ``--gates`` (whose
gate path is reported as the SPEC's four steps, every gate's own count beside
them). It prints the counts, the channels found and the flags, as text or as
one JSON object, and returns 0, or 1 when the automatic gate fails.

These commands live apart from :mod:`hladr.batch.daily` because they are not part of
the run: they read no worklist, analyse no samples and write none of the run's
outputs; they look at one file. What they share with the run -- choosing the bead
lot (:func:`hladr.beads.lots.resolve_lot`) and keeping a calibration in the store
(:func:`hladr.store.store_calibration`) -- lives where both import it.
"""

from __future__ import annotations

from pathlib import Path

from ._atomic import write_atomic
from .batch.output_set import check_output_file, writable_path
from .beads.lots import resolve_lot
from .beads.record import Calibration, calibrate_beads
from .channels import find_panel
from .compensate import compensate
from .errors import CalibrationError
from .fcs.read import read_events, spillover_of
from .gating.automated import fit_monocyte_gate
from .gating.gatingml.engine import apply_monocyte_template, load_template
from .gating.monocyte_gate import GateFailure
from .safe_text import dumps_strict, printable, printable_lines
from .store import json_default, store_calibration

__all__ = ["calibrate_file", "format_calibration", "gate_file"]


def calibrate_file(
    beads: str, *, lot_id: str | None, lot_file: str | None, out: str | None, db: str | None = None
) -> int:
    """``hladr calibrate``: fit one bead tube, print the fit, write the record, keep it in the store.

    ``out`` and ``db`` are checked before the fit (a path that cannot be written is exit 2, not a
    traceback after the work); the record is written before the store is tried, so a store that
    stays locked (``StoreBusyError``, exit 2) loses nothing.
    """
    if out:
        check_output_file(out)
    if db:
        writable_path(db, what="--db")
    lot, _ = resolve_lot(lot_id=lot_id, lot_file=lot_file)
    fit = calibrate_beads(beads, lot)
    if not isinstance(fit, Calibration):
        raise CalibrationError(f"{Path(beads).name}: {fit.reason}")
    print(printable_lines(format_calibration(fit)))
    if out:
        write_atomic(out, dumps_strict(fit.to_dict(), indent=2, default=json_default) + "\n")
    if db:
        print(printable(store_calibration(db, fit, source=f"hladr calibrate {Path(beads).resolve()}").note(db)))
    return 0 if fit.accepted else 1


def _cell(x: float | None, fmt: str) -> str:
    return format(x, fmt) if x is not None else "-"


def format_calibration(cal: Calibration) -> str:
    """Text summary of a calibration: lot, channel, instrument, the line, one row per level, the verdict."""
    c = cal.curve
    lines = [
        f"lot {cal.lot.id}  PE channel {c.pe_channel}  instrument {cal.settings.instrument or '?'}",
        f"fit: log10(PE/bead) = {c.intercept:.4f} + {c.slope:.4f} * log10(MFI)   R² = {c.r2:.5f}",
        f"{'level':<9} {'events':>7} {'median MFI':>11} {'rCV %':>6} {'cert. PE':>9} {'fitted PE':>10} "
        f"{'resid %':>8}  used",
    ]
    for lv in c.levels:
        lines.append(
            f"{lv.name:<9} {lv.events:>7} {_cell(lv.mfi, '11.1f'):>11} {_cell(lv.rcv_pct, '6.1f'):>6} "
            f"{lv.pe_per_bead:>9.0f} {_cell(lv.fitted_pe, '10.0f'):>10} {_cell(lv.residual_pct, '+8.2f'):>8}"
            f"  {'yes' if lv.used else 'no'}{' (saturated)' if lv.saturated else ''}"
        )
    verdict = "ACCEPTED" if cal.accepted else "REJECTED"
    lines.append(f"verdict: {verdict}" + ("".join(f"\n  - {r}" for r in cal.reasons)))
    return "\n".join(lines)


def _spec_counts(res, n_events: int) -> dict:
    """A template's gate path as the SPEC's four steps: the first two gates on the path are
    reported as cells and singlets, the monocyte gate's parent as leukocytes (when the path is
    long enough), the monocyte gate as monocytes; every gate's own count is in ``template_gates``."""
    path = list(res.gate_path)
    c = res.counts
    cells = c[path[0]] if len(path) >= 2 else n_events
    singlets = c[path[1]] if len(path) >= 3 else cells
    leuk = c[path[-2]] if len(path) >= 4 else None
    return {"cells": cells, "singlets": singlets, "leukocytes": leuk, "monocytes": res.n_monocytes}


def gate_file(path: str, *, as_json: bool, gates_file: str | None,
              template_cache: str | Path | None = None) -> int:
    """``hladr gate``: the monocyte gating of one tube alone.

    ``template_cache``: the folder keeping parsed Gating-ML templates between runs
    (chosen by the CLI); None keeps nothing on disk.
    """
    events = read_events(path)
    panel = find_panel(events, require=("cd14",))
    template_counts = None
    checks: dict = {}
    if gates_file:
        res = apply_monocyte_template(load_template(gates_file, cache_dir=template_cache), events)
        counts, flags, status = _spec_counts(res, events.n_events), list(panel.flags) + ["template_gates"], 0
        template_counts = dict(res.counts)
        gate = None
    else:
        events = compensate(events, spillover_of(events))
        gate = fit_monocyte_gate(events, panel)
        checks = dict(gate.checks)
        if isinstance(gate, GateFailure):
            counts = {"cells": 0, "singlets": 0, "leukocytes": None, "monocytes": 0}
            flags = list(panel.flags) + [gate.code]
            status = 1
        else:
            res = gate.apply(events)
            counts = {k: res.counts[k] for k in ("cells", "singlets", "leukocytes", "monocytes")}
            flags = list(res.flags)
            status = 0
    if as_json:
        doc = {"gates": counts, "channels": panel.to_dict(), "flags": flags}
        if template_counts is not None:
            doc["template_gates"] = template_counts
        if checks:
            doc["checks"] = checks
        print(dumps_strict(doc))
    else:
        print(printable(f"{Path(path).name}: {events.n_events:,} events"))
        for k, v in counts.items():
            print(f"  {k:<11} {'-' if v is None else f'{v:,}':>10}")
        for gid, c in (template_counts or {}).items():
            print(printable(f"  template gate {gid}: {c:,}"))
        print(printable(f"  channels: {panel.to_dict()}"))
        if flags:
            print(f"  flags: {';'.join(flags)}")
        if checks:
            print("  self-check: " + ", ".join(f"{k} {v}" for k, v in checks.items()))
        if isinstance(gate, GateFailure):
            print(printable(f"  gating failed: {gate.reason}"))
    return status
