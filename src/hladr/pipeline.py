"""One tube, start to finish: ``analyze_sample(input, calibration, config) -> SampleResult``.

This is a pure function of (tube file, calibration, configuration): it reads the
file, finds the channels, compensates, gates, quantifies and calls the
phenotype, and returns a plain result carrying its provenance (file SHA-256,
calibration, rule-set and software versions). It can run in another process or
on another machine; the batch runner, store, report and exports consume its
result as is. Bad input never raises out of it: the sample gets ``qc="fail"``
with a one-line reason.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from .beads.record import Calibration, acquisition_settings
from .channels import find_panel
from .compensate import can_compensate_in_place, compensate, compensated_channel, spillover_of
from .errors import HladrError
from .events import Events
from .fcs.read import REPAIR_QUIRKS, read_events
from .figures import abc_histogram, figure_data
from .gating.automated import GateFailure, fit_monocyte_gate
from .phenotype import call_phenotype, parse_ferritin
from .quantify import summarise_monocytes
from .results import GATE_FLAGS, QUANT_FLAG_TEXT, Flag, RunConfig, SampleInput, SampleResult

__all__ = ["analyze_sample"]


class _Clock:
    """Wall time of each stage in ms (provenance, and the benchmarks' stage breakdown)."""

    def __init__(self) -> None:
        self._now = time.perf_counter
        self._t = self._now()
        self.laps: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        t = self._now()
        self.laps[stage] = round(self.laps.get(stage, 0.0) + 1000.0 * (t - self._t), 3)
        self._t = t


def _qc_of(flags: list[Flag]) -> str:
    if any(f.severity == "fail" for f in flags):
        return "fail"
    if any(f.severity == "warn" for f in flags):
        return "warn"
    return "pass"


def _default_sample_id(events: Events | None, path: str) -> str:
    if events is not None:
        for key in ("smno", "src", "fil"):
            v = events.keyword(key)
            if v:
                return v
    return Path(path).stem


def analyze_sample(
    inp: SampleInput, calibration: Calibration | None, config: RunConfig | None = None, *,
    threads: int | None = None, template_cache: str | Path | None = None,
) -> SampleResult:
    """Analyse one sample tube: read -> channels -> compensate -> gate -> quantify -> phenotype.

    Parameters
    ----------
    inp : SampleInput
        The tube file and its worklist data (sample id, ferritin, ...).
    calibration : Calibration or None
        The run's bead calibration; without an accepted one HLA-DR is not reported.
    config : RunConfig
        Rule set and gating options.
    threads : int, optional
        Threads for the per-event work of this one tube (default: by cores and
        size; a batch running one tube per core passes 1). Never changes a result.
    template_cache : path, optional
        Folder keeping parsed Gating-ML templates between processes (chosen by the
        shell); None keeps nothing on disk. Never changes a result.

    Returns
    -------
    SampleResult
        Never raises for bad input: a failure is ``qc="fail"`` with a flag.
    """
    config = config or RunConfig()
    rules = config.rules()
    flags: list[Flag] = []
    events: Events | None = None
    sha = None
    panel = None
    gate_counts: dict = {}
    gate_params: dict = {}
    summary = None
    clock = None
    figure: dict = {}
    name = inp.file_label or os.path.basename(inp.path)
    try:
        clock = _Clock()
        events = read_events(inp.path, threads=threads)
        repaired = sorted(REPAIR_QUIRKS & set(events.quirks))
        if repaired:  # the reading is proven, but a value from a repaired file is reviewed, never a plain pass
            flags.append(Flag("read_repaired", f"{name}: read by a fallback or with repaired offsets "
                                               f"({', '.join(repaired)}); review the file", "warn"))
        clock.lap("read")  # a large file's SHA-256 may still be computed in the background: read it last
        panel = find_panel(events, require=("cd14", "hladr"))
        spill = spillover_of(events)
        template_path = inp.gates_file or config.gates_file
        raw: Events | None = events
        pe_all = None
        if (not template_path and spill is not None and not spill.is_identity()
                and can_compensate_in_place(events)):
            # the automated gates need the raw values only for the monocytes' PE: keep that one channel
            # (float64, every event; the same numbers as from the raw rows) and compensate the matrix in
            # place instead of holding a second copy of it. The template path gates the raw values.
            if calibration is not None and calibration.accepted:  # else no PE is quantified
                pe_all = compensated_channel(events, spill, panel.hladr, None, threads=threads)
            events = compensate(events, spill, in_place=True, threads=threads)
            raw = None  # overwritten
        else:
            events = compensate(events, spill, threads=threads)
        clock.lap("compensate")
        if calibration is None:
            flags.append(Flag("no_calibration", "no accepted bead calibration for this run", "fail"))
        elif not calibration.accepted:
            flags.append(Flag("calibration_rejected", "the run's bead calibration was rejected", "fail"))
        else:
            if "read_repaired" in calibration.curve.flags:
                flags.append(Flag("calibration_read_repaired", "the bead tube was read by a fallback or with "
                                  "repaired offsets; review it", "warn"))
            if "lot_expired" in calibration.curve.flags:
                flags.append(Flag("lot_expired", f"bead lot {calibration.lot.id} was past its expiry date", "warn"))
            diffs = calibration.settings.mismatches(acquisition_settings(events, panel, spill),
                                                    max_days=rules.cal_max_days)
            for d in diffs:
                flags.append(Flag("settings_mismatch", f"settings_mismatch: {d} (beads vs sample)", "fail"))
        if template_path:
            from .gating.gatingml.engine import apply_monocyte_template, load_template

            template = load_template(template_path, cache_dir=template_cache)
            clock.lap("template_load")
            # the template compensates per gate dimension itself: it gets the raw values
            tres = apply_monocyte_template(template, raw, threads=threads)
            clock.lap("gate_apply")
            rows, n = tres.indices, tres.n_monocytes
            gate_counts = {"events": events.n_events, **tres.counts, "monocytes": n}
            gate_params = {"template": os.path.basename(template_path), "template_sha256": tres.template_sha256,
                           "gate_path": list(tres.gate_path)}
            gate = None
        else:
            gate = fit_monocyte_gate(events, panel, seed=config.gate_seed, max_fit_events=config.max_fit_events,
                                     rules=rules, threads=threads)
            clock.lap("gate_fit")
            for code in gate.flags:
                text, severity = GATE_FLAGS.get(code, (code, "info"))
                flags.append(Flag(code, text, severity))
            if isinstance(gate, GateFailure):
                flags.append(Flag(gate.code, f"gating failed: {gate.reason}", "fail"))
                gate_params = gate.to_dict()
                rows, n = None, None
                gate = None
            else:
                result = gate.apply(events, threads=threads)
                clock.lap("gate_apply")
                rows, n, gate_counts = np.flatnonzero(result.mask), result.n_monocytes, result.counts
                del result  # its mask (one byte per event) is not needed any more
                gate_params = gate.to_dict()
        if rows is not None:
            if n < rules.monocytes_fail_below:
                flags.append(Flag("monocytes_too_few",
                                  f"{n} monocytes < {rules.monocytes_fail_below}", "fail"))
            elif n < rules.monocytes_warn_below:
                flags.append(Flag("monocytes_low", f"{n} monocytes < {rules.monocytes_warn_below}", "warn"))
            if calibration is not None and calibration.accepted and n > 0:
                if pe_all is not None:
                    pe, pe_all = pe_all[rows], None  # float64, the monocytes; the full column is freed
                else:
                    pe = compensated_channel(raw, spill, panel.hladr, rows, threads=threads)
                summary = summarise_monocytes(pe, calibration.curve)
                clock.lap("quantify")
                for code in summary.flags:
                    flags.append(Flag(code, QUANT_FLAG_TEXT.get(code, code), "warn"))
            pe_all = None
        # the gating plot also when the gate failed: the reviewer sees what the tube looked like
        figure = figure_data(events, panel, gate, rows)
        if summary is not None and figure:
            figure["abc_hist"] = abc_histogram(pe, calibration.curve)
        clock.lap("figure_data")
    except HladrError as exc:
        code = type(exc).__name__.replace("Error", "").lower() or "error"
        flags.append(Flag({"read": "unreadable", "channel": "missing_channel"}.get(code, code), str(exc), "fail"))
    if events is not None:  # read last: a large file's digest is computed while it is analysed
        try:
            sha = events.sha256
        except HladrError as exc:  # the file changed while it was read
            flags.append(Flag("unreadable", str(exc), "fail"))
    qc = _qc_of(flags)
    hladr = summary.hladr_abc if (summary is not None and qc != "fail") else None
    ferritin = parse_ferritin(inp.ferritin, inp.ferritin_unit or None, rules=rules)
    call = call_phenotype(hladr, ferritin, rules=rules)
    if ferritin.problem and ferritin.text.strip():
        flags.append(Flag("ferritin_unusable", ferritin.problem, "warn"))
        qc = _qc_of(flags)
    return SampleResult(
        sample_id=inp.sample_id or _default_sample_id(events, inp.path),
        subject_id=inp.subject_id,
        visit=inp.visit,
        file=name,
        sha256=sha,
        qc=qc,
        phenotype=call.label,
        phenotype_reasons=tuple(call.reasons),
        monocyte_count=gate_counts.get("monocytes") if gate_counts else None,
        hladr_abc=hladr,
        hladr_abc_geomean=summary.hladr_abc_geomean if (summary and hladr is not None) else None,
        median_pe=summary.median_pe if summary else None,
        rcv_pct=summary.rcv_pct if summary else None,
        ferritin_ng_ml=ferritin.ng_ml,
        ferritin_text=inp.ferritin,
        ferritin_unit=inp.ferritin_unit,
        flags=tuple(flags),
        gate_counts=gate_counts,
        channels=panel.to_dict() if panel else {},
        gate=gate_params,
        instrument=events.keyword("cyt") if events is not None else None,
        figure=figure,
        calibration_id=calibration.id if calibration is not None else None,
        ruleset=rules.label,
        config_sha256=config.digest(),
        extra=inp.extra,
        timings_ms=clock.laps if clock is not None else {},
    )
