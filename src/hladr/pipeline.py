"""One tube, start to finish: ``analyze_sample(input, calibration, config) -> SampleResult``.

This is a pure function of (tube file, calibration, configuration): it reads the
file, finds the channels, compensates, gates, quantifies and calls the
phenotype, and returns a plain result carrying its provenance (file SHA-256,
calibration, rule-set and software versions). It can run in another process or
on another machine; the batch runner, store, report and exports consume its
result as is. Bad input never raises out of it: the sample gets ``qc="fail"``
with a one-line reason.

Each stage is a function below, called in this order by :func:`analyze_sample`:
:func:`_read`, :func:`~hladr.channels.find_panel`, :func:`_compensate`,
:func:`_check_calibration`, :func:`_gate_by_template` or :func:`_gate_automated`,
:func:`_quantify`, :func:`_figure`, :func:`_phenotype`. A stage appends the flags it
finds (:mod:`hladr.flags`) to the tube's list, in order, so that an exception
raised later keeps the flags already found; ``analyze_sample`` turns an
exception of :mod:`hladr.errors` into a ``fail`` flag (:func:`hladr.flags.error_flag`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .beads.calibrate import BeadCurve
from .beads.record import Calibration, acquisition_settings
from .channels import Panel, find_panel
from .compensate import can_compensate_in_place, compensate, compensated_channel
from .errors import HladrError
from .events import Events, Spillover
from .fcs.read import REPAIR_QUIRKS, read_events, spillover_of
from .ferritin import Ferritin, parse_ferritin
from .figures import abc_histogram, figure_data, subsample_rows
from .flags import Flag, error_flag, flag, hladr_not_measured_why, qc_of
from .gating.automated import fit_monocyte_gate
from .gating.gatingml.engine import apply_monocyte_template, load_template
from .gating.monocyte_gate import GateFailure, MonocyteGate
from .phenotype import PhenotypeCall, call_phenotype
from .quantify import HladrSummary, summarise_monocytes
from .results import RunConfig, SampleInput, SampleResult
from .rules import RuleSet

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


def _default_sample_id(events: Events | None, path: str) -> str:
    if events is not None:
        for key in ("smno", "src", "fil"):
            v = events.keyword(key)
            if v:
                return v
    return Path(path).stem


@dataclass(frozen=True)
class _Gated:
    """What gating gives: the monocytes' rows (None when the gate failed) and count, the events
    kept by each step, the gate's record, and the automated gate (for the figure; else None)."""

    rows: np.ndarray | None = None
    n: int | None = None
    counts: dict | None = None
    params: dict | None = None
    gate: MonocyteGate | None = None
    template_figure: dict | None = None  # a template's path for the figure: gate ids, their channels, masks


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
    name = inp.file_label or os.path.basename(inp.path)
    template_path = inp.gates_file or config.gates_file
    # without an accepted calibration no PE is quantified
    curve = calibration.curve if calibration is not None and calibration.accepted else None
    flags: list[Flag] = []
    events: Events | None = None
    panel: Panel | None = None
    gated = _Gated()
    summary: HladrSummary | None = None
    figure: dict = {}
    clock = _Clock()
    try:
        events = _read(inp.path, name, flags, threads=threads)
        clock.lap("read")  # a large file's SHA-256 may still be computed in the background: read it last
        panel = find_panel(events, require=("cd14", "hladr"))
        spill = spillover_of(events)
        events, raw, pe_all = _compensate(events, panel, spill, gates_raw=bool(template_path),
                                          keep_pe=curve is not None, threads=threads)
        clock.lap("compensate")
        _check_calibration(calibration, events, panel, spill, rules, flags)
        if template_path:
            gated = _gate_by_template(template_path, events, raw, clock, threads=threads,
                                      template_cache=template_cache)
        else:
            gated = _gate_automated(events, panel, config, rules, flags, clock, threads=threads)
        pe = None
        if gated.rows is not None:
            summary, pe = _quantify(gated, curve, raw, spill, panel.hladr, pe_all, rules, flags, clock,
                                    threads=threads)
        pe_all = None  # the full column is freed before the figure
        figure = _figure(events, panel, gated, summary, pe, curve)
        clock.lap("figure_data")
    except HladrError as exc:
        flags.append(error_flag(exc))
    sha = None
    if events is not None:  # read last: a large file's digest is computed while it is analysed
        try:
            sha = events.sha256
        except HladrError as exc:  # the file changed while it was read
            flags.append(flag("unreadable", error=str(exc)))
    qc, hladr, ferritin, call = _phenotype(summary, inp, rules, flags)
    acquisition = _acquisition(events) if events is not None else {}
    return SampleResult(
        sample_id=inp.sample_id or _default_sample_id(events, inp.path),
        subject_id=inp.subject_id,
        visit=inp.visit,
        file=name,
        sha256=sha,
        qc=qc,
        phenotype=call.label,
        phenotype_reasons=tuple(call.reasons),
        monocyte_count=gated.counts.get("monocytes") if gated.counts else None,
        hladr_abc=hladr,
        hladr_abc_geomean=summary.hladr_abc_geomean if (summary and hladr is not None) else None,
        median_pe=summary.median_pe if summary else None,
        rcv_pct=summary.rcv_pct if summary else None,
        ferritin_ng_ml=ferritin.ng_ml,
        ferritin_text=inp.ferritin,
        ferritin_unit=inp.ferritin_unit,
        flags=tuple(flags),
        gate_counts=gated.counts or {},
        channels=panel.to_dict() if panel else {},
        gate=gated.params or {},
        instrument=events.keyword("cyt") if events is not None else None,
        figure=figure,
        calibration_id=calibration.id if calibration is not None else None,
        ruleset=rules.label,
        config_sha256=config.digest(),
        extra=inp.extra,
        timings_ms=clock.laps,
        acquisition=acquisition,
    )


def _acquisition(events: Events) -> dict:
    """The tube's acquisition settings as its keywords state them: instrument, serial, date, and the
    voltage ($PnV) and gain ($PnG) of each channel that states one (provenance of the result)."""
    voltages, gains = {}, {}
    for k, name in enumerate(events.pnn, start=1):
        v, g = events.keyword(f"p{k}v"), events.keyword(f"p{k}g")
        if v:
            voltages[name] = v
        if g:
            gains[name] = g
    return {"instrument": events.keyword("cyt") or None, "serial": events.keyword("cytsn") or None,
            "date": events.keyword("date") or None, "operator": events.keyword("op") or None,
            "voltages": voltages, "gains": gains}


def _read(path: str, name: str, flags: list[Flag], *, threads: int | None) -> Events:
    """The tube's events; a file read by a fallback or with repaired offsets is flagged for review."""
    events = read_events(path, threads=threads)
    repaired = sorted(REPAIR_QUIRKS & set(events.quirks))
    if repaired:  # the reading is proven, but a value from a repaired file is reviewed, never a plain pass
        flags.append(flag("read_repaired", file=name, quirks=", ".join(repaired)))
    return events


def _compensate(
    events: Events, panel: Panel, spill: Spillover | None, *, gates_raw: bool, keep_pe: bool, threads: int | None,
) -> tuple[Events, Events | None, np.ndarray | None]:
    """(compensated events, raw events or None, compensated HLA-DR PE of every event or None).

    The automated gates need the raw values only for the monocytes' PE: keep that one channel
    (float64, every event, only when PE will be quantified: ``keep_pe``; the same numbers as from
    the raw rows) and compensate the matrix in place instead of holding a second copy of it. The
    raw events are then spent (:meth:`hladr.events.Events.hand_over`) and None is returned for
    them. A Gating-ML template (``gates_raw``) gates the raw values: they are kept and a copy
    is compensated, as is any matrix that cannot be overwritten.
    """
    if not gates_raw and spill is not None and not spill.is_identity() and can_compensate_in_place(events):
        pe_all = compensated_channel(events, spill, panel.hladr, None, threads=threads) if keep_pe else None
        return compensate(events, spill, in_place=True, threads=threads), None, pe_all
    return compensate(events, spill, threads=threads), events, None


def _check_calibration(
    calibration: Calibration | None, events: Events, panel: Panel, spill: Spillover | None, rules: RuleSet,
    flags: list[Flag],
) -> None:
    """Flag a missing or rejected calibration, its warnings, and every acquisition setting the
    sample does not share with the beads."""
    if calibration is None:
        flags.append(flag("no_calibration"))
    elif not calibration.accepted:
        flags.append(flag("calibration_rejected"))
    else:
        if "read_repaired" in calibration.curve.flags:
            flags.append(flag("calibration_read_repaired"))
        if "lot_expired" in calibration.curve.flags:
            flags.append(flag("lot_expired", lot=calibration.lot.id))
        diffs = calibration.settings.mismatches(acquisition_settings(events, panel, spill),
                                                max_days=rules.cal_max_days)
        for d in diffs:
            flags.append(flag("settings_mismatch", difference=d))


def _gate_by_template(
    template_path: str, events: Events, raw: Events, clock: _Clock, *, threads: int | None,
    template_cache: str | Path | None = None,
) -> _Gated:
    """The monocytes of a Gating-ML template; it compensates per gate dimension itself: it gets the raw values.

    ``template_cache``: the folder the shell keeps parsed templates in (None: nothing kept on disk).
    """
    template = load_template(template_path, cache_dir=template_cache)
    clock.lap("template_load")
    tres = apply_monocyte_template(template, raw, threads=threads)
    clock.lap("gate_apply")
    sub = subsample_rows(events.n_events)
    by_pns = {s: n for n, s in zip(events.pnn, events.pns, strict=True) if s}
    dims = []  # each gate's channels, a ratio's numerator and denominator, as $PnN
    for g in tres.gate_path:
        names = [c for d in template.gate(g).dimensions
                 for c in ([d.channel] if d.channel else [d.ratio.numerator, d.ratio.denominator] if d.ratio else [])]
        dims.append([c if c in events.pnn else by_pns.get(c, c) for c in names])
    return _Gated(
        rows=tres.indices,
        n=tres.n_monocytes,
        counts={"events": events.n_events, **tres.counts, "monocytes": tres.n_monocytes},
        params={"template": os.path.basename(template_path), "template_sha256": tres.template_sha256,
                "gate_path": list(tres.gate_path)},
        template_figure={"path": list(tres.gate_path), "dims": dims, "masks": tres.path_masks[:, sub], "sub": sub},
    )


def _gate_automated(
    events: Events, panel: Panel, config: RunConfig, rules: RuleSet, flags: list[Flag], clock: _Clock, *,
    threads: int | None,
) -> _Gated:
    """The automated monocyte gate, fitted to this tube; a gate that fails its checks is a ``fail`` flag."""
    gate = fit_monocyte_gate(events, panel, seed=config.gate_seed, max_fit_events=config.max_fit_events,
                             rules=rules, threads=threads)
    clock.lap("gate_fit")
    for code in gate.flags:
        flags.append(flag(code))
    if isinstance(gate, GateFailure):
        flags.append(flag(gate.code, reason=gate.reason))
        return _Gated(params=gate.to_dict())
    result = gate.apply(events, threads=threads)
    clock.lap("gate_apply")
    # only the rows are kept: the mask (one byte per event) is freed with ``result``
    return _Gated(rows=np.flatnonzero(result.mask), n=result.n_monocytes, counts=result.counts,
                  params=gate.to_dict(), gate=gate)


def _quantify(
    gated: _Gated, curve: BeadCurve | None, raw: Events | None, spill: Spillover | None, hladr_channel: str,
    pe_all: np.ndarray | None, rules: RuleSet, flags: list[Flag], clock: _Clock, *, threads: int | None,
) -> tuple[HladrSummary | None, np.ndarray | None]:
    """Flag too few monocytes; then (AB/C summary, monocytes' compensated PE), or (None, None)
    without a calibration curve or monocytes.

    The PE comes from ``pe_all`` (every event, when the matrix was compensated in place) or is
    computed from the raw events' monocyte rows: the same float64 numbers either way.
    """
    n = gated.n
    if n < rules.monocytes_fail_below:
        flags.append(flag("monocytes_too_few", n=n, limit=rules.monocytes_fail_below))
    elif n < rules.monocytes_warn_below:
        flags.append(flag("monocytes_low", n=n, limit=rules.monocytes_warn_below))
    if curve is None or not n > 0:
        return None, None
    if pe_all is not None:
        pe = pe_all[gated.rows]
    else:
        pe = compensated_channel(raw, spill, hladr_channel, gated.rows, threads=threads)
    summary = summarise_monocytes(pe, curve)
    clock.lap("quantify")
    for code in summary.flags:
        flags.append(flag(code))
    return summary, pe


def _figure(
    events: Events, panel: Panel, gated: _Gated, summary: HladrSummary | None, pe: np.ndarray | None,
    curve: BeadCurve | None,
) -> dict:
    """The report's figure data; the gating plot also when the gate failed: the reviewer sees what
    the tube looked like."""
    figure = figure_data(events, panel, gated.gate, gated.rows, template=gated.template_figure)
    if summary is not None and figure:
        figure["abc_hist"] = abc_histogram(pe, curve)
    return figure


def _phenotype(
    summary: HladrSummary | None, inp: SampleInput, rules: RuleSet, flags: list[Flag],
) -> tuple[str, float | None, Ferritin, PhenotypeCall]:
    """(qc, reported HLA-DR AB/C, ferritin, call): a failed tube reports no HLA-DR, and its call
    is made without it (its reasons say why HLA-DR was not measured); an unusable ferritin text is
    flagged, a missing one too (``info``: the HLA-DR value stands, the call cannot be made); both after
    the call: a ferritin never withholds HLA-DR."""
    qc = qc_of(f.severity for f in flags)
    hladr = summary.hladr_abc if (summary is not None and qc != "fail") else None
    ferritin = parse_ferritin(inp.ferritin, inp.ferritin_unit or None, rules=rules)
    why = hladr_not_measured_why((f.code, f.severity, f.message) for f in flags)
    call = call_phenotype(hladr, ferritin, rules=rules, hladr_why=why)
    if ferritin.problem and ferritin.text.strip():
        flags.append(flag("ferritin_unusable", problem=ferritin.problem))
    elif ferritin.code == "ferritin_missing":
        flags.append(flag("ferritin_missing"))
    qc = qc_of(f.severity for f in flags)
    return qc, hladr, ferritin, call

