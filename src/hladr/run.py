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

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from . import __version__
from .calibrate import BeadCurve, FitFailure, fit_bead_curve
from .channels import Panel, find_panel
from .compensate import Spillover, can_compensate_in_place, compensate, compensated_channel, spillover_of
from .errors import CalibrationError, HladrError
from .events import Events, parse_fcs_date
from .gate import GateFailure, MonocyteGate, cofactor, fit_monocyte_gate
from .lots import Lot
from .phenotype import call_phenotype, parse_ferritin
from .quantify import summarise_monocytes
from .read import REPAIR_QUIRKS, read_events
from .rules import DEFAULT_RULESET, RuleSet, load_rules

__all__ = [
    "Flag",
    "RunConfig",
    "SampleInput",
    "SampleResult",
    "AcquisitionSettings",
    "Calibration",
    "analyze_sample",
    "calibrate_beads",
    "acquisition_settings",
    "parse_fcs_date",
]


@dataclass(frozen=True)
class Flag:
    """A machine-readable code with its human message; severity info, warn or fail."""

    code: str
    message: str
    severity: str = "warn"


@dataclass(frozen=True)
class RunConfig:
    """Everything besides the file and calibration that decides a result."""

    ruleset: str = DEFAULT_RULESET
    gate_seed: int = 0
    max_fit_events: int = 10_000
    gates_file: str | None = None  # Gating-ML 2.0 template replacing the automated gates

    def rules(self) -> RuleSet:
        return load_rules(self.ruleset)

    def digest(self) -> str:
        """SHA-256 of the configuration, recorded with each result."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class SampleInput:
    """One worklist row: the tube and what the lab knows about it."""

    path: str
    sample_id: str = ""
    subject_id: str = ""
    visit: str = ""
    ferritin: str = ""
    ferritin_unit: str = ""
    extra: tuple[tuple[str, str], ...] = ()
    gates_file: str | None = None  # per-tube template (worklist column ``gates``); overrides the config's
    file_label: str = ""  # the ``file`` recorded in the result (default: the file's name)


@dataclass(frozen=True)
class AcquisitionSettings:
    """Settings that must match between the bead tube and every sample (SPEC.md §3)."""

    instrument: str | None
    serial: str | None
    pe_channel: str | None
    pe_voltage: str | None
    pe_gain: str | None
    date: str | None
    spillover: dict | None

    def mismatches(self, sample: AcquisitionSettings, *, max_days: int = 0) -> list[str]:
        """Human-readable differences (bead value first), empty when they match.

        Instrument, serial, PE voltage and gain and the spillover matrix must be
        equal; acquisition dates at most ``max_days`` apart (when both are known).
        """
        out = []
        da, db = parse_fcs_date(self.date), parse_fcs_date(sample.date)
        if da is not None and db is not None and abs((db - da).days) > max_days:
            out.append(f"acquisition date {da.isoformat()} vs {db.isoformat()}")
        pairs = [
            ("instrument", self.instrument, sample.instrument),
            ("instrument serial", self.serial, sample.serial),
            ("PE voltage", self.pe_voltage, sample.pe_voltage),
            ("PE gain", _norm_gain(self.pe_gain), _norm_gain(sample.pe_gain)),
        ]
        for what, a, b in pairs:
            if a is not None and b is not None and a != b:
                out.append(f"{what} {a} vs {b}")
            elif (a is None) != (b is None) and what in ("PE voltage", "instrument"):
                out.append(f"{what} {a or 'absent'} vs {b or 'absent'}")
        sa, sb = self.spillover, sample.spillover
        if (sa is None) != (sb is None):
            out.append("spillover present in only one of beads and sample")
        elif sa is not None and sb is not None:
            a = Spillover(tuple(sa["channels"]), _np_array(sa["matrix"]))
            b = Spillover(tuple(sb["channels"]), _np_array(sb["matrix"]))
            if not a.same_as(b):
                out.append("spillover matrix differs")
        return out


def _norm_gain(g: str | None) -> str | None:
    if g is None:
        return None
    try:
        return f"{float(g):g}"
    except ValueError:
        return g


def _np_array(x):
    import numpy as np

    return np.asarray(x, dtype=float)


def acquisition_settings(events: Events, panel: Panel, spill: Spillover | None) -> AcquisitionSettings:
    """The settings of one tube, read from its keywords."""
    pe = panel.hladr
    k = events.index(pe) + 1 if pe else None
    return AcquisitionSettings(
        instrument=events.keyword("cyt") or None,
        serial=events.keyword("cytsn") or None,
        pe_channel=pe,
        pe_voltage=(events.keyword(f"p{k}v") or None) if k else None,
        pe_gain=(events.keyword(f"p{k}g") or None) if k else None,
        date=events.keyword("date") or None,
        spillover=spill.to_dict() if spill is not None else None,
    )


@dataclass(frozen=True)
class Calibration:
    """An accepted (or rejected) bead calibration with what is needed to check samples."""

    curve: BeadCurve
    lot: Lot
    settings: AcquisitionSettings
    inputs: tuple[tuple[str, str], ...]
    software_version: str = __version__

    @property
    def accepted(self) -> bool:
        return self.curve.accepted

    @property
    def id(self) -> str:
        """Short identity: SHA-256 of the bead file(s) and lot, first 16 hex digits."""
        text = self.lot.id + "|" + "|".join(sha for _, sha in self.inputs)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        """The calibration record of SPEC.md §5 (``calibration.json``)."""
        c = self.curve
        return {
            "id": self.id,
            "fit": {"slope": c.slope, "intercept": c.intercept, "r2": c.r2},
            "accepted": c.accepted,
            "reasons": list(c.reasons),
            "levels": [lv.to_dict() for lv in c.levels],
            "flags": list(c.flags),
            "lot": self.lot.to_dict(),
            "inputs": [{"file": f, "sha256": h} for f, h in self.inputs],
            "pe_channel": c.pe_channel,
            "bead_events": c.events,
            "bead_singlets": c.singlets,
            "settings": asdict(self.settings),
            "instrument": self.settings.instrument,
            "software_version": self.software_version,
        }

    @classmethod
    def from_dict(cls, d: dict, *, where: str = "calibration record") -> Calibration:
        """Rebuild from a record written by :meth:`to_dict` (``--calibration CAL.json``)."""
        from .calibrate import BeadLevel
        from .lots import parse_lot

        try:
            levels = tuple(
                BeadLevel(
                    name=lv["name"], pe_per_bead=float(lv["pe_per_bead"]), mfi=lv.get("mfi"),
                    events=int(lv.get("events", 0)),
                    rcv=None if lv.get("rcv_pct") is None else lv["rcv_pct"] / 100.0,
                    saturated=bool(lv.get("saturated", False)), used=bool(lv["used"]),
                    fitted_pe=lv.get("fitted_pe"), residual_pct=lv.get("residual_pct"),
                )
                for lv in d["levels"]
            )
            fit = d["fit"]
            curve = BeadCurve(
                slope=float(fit["slope"]), intercept=float(fit["intercept"]), r2=float(fit["r2"]),
                levels=levels, accepted=bool(d["accepted"]), flags=tuple(d.get("flags", ())),
                reasons=tuple(d.get("reasons", ())), pe_channel=d.get("pe_channel", ""),
                singlets=int(d.get("bead_singlets", 0)), events=int(d.get("bead_events", 0)),
            )
            lot_d = dict(d["lot"])
            lot_d.pop("path", None)
            lot = parse_lot({"lot": {k: v for k, v in lot_d.items() if v is not None}}, where=where)
            settings = AcquisitionSettings(**d["settings"])
            inputs = tuple((i["file"], i["sha256"]) for i in d["inputs"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationError(f"{where}: not a valid calibration record ({exc!r})") from None
        return cls(curve=curve, lot=lot, settings=settings, inputs=inputs,
                   software_version=str(d.get("software_version", "")))


def calibrate_beads(path: str, lot: Lot, config: RunConfig | None = None) -> Calibration | FitFailure:
    """Read a QuantiBRITE bead tube and fit its calibration curve.

    Raises ``ReadError``/``ChannelError`` for a file that cannot be used at all;
    returns a falsy ``FitFailure`` when the tube holds no recognisable bead levels.
    """
    config = config or RunConfig()
    rules = config.rules()
    events = read_events(path)
    panel = find_panel(events, require=("hladr",))
    spill = spillover_of(events)
    compensated = compensate(events, spill)
    curve = fit_bead_curve(compensated, panel, lot, rules, raw_events=events)
    if not curve:
        return curve
    repaired = sorted(REPAIR_QUIRKS & set(events.quirks))
    if repaired:
        curve = replace(curve, flags=curve.flags + ("read_repaired",),
                        reasons=curve.reasons + (f"bead tube read with {', '.join(repaired)}",))
    acquired = parse_fcs_date(events.keyword("date"))
    if acquired is not None and lot.expired(acquired):
        # judged on the day the beads were acquired, so re-analysing an old run gives the same verdict
        fail = rules.cal_expired_lot == "fail"
        curve = replace(
            curve,
            accepted=curve.accepted and not fail,
            flags=curve.flags + ("lot_expired",),
            reasons=curve.reasons + (
                f"bead lot {lot.id} expired on {lot.expiry.isoformat()}, beads acquired {acquired.isoformat()}",),
        )
    return Calibration(
        curve=curve,
        lot=lot,
        settings=acquisition_settings(events, panel, spill),
        inputs=((os.path.basename(path), events.sha256),),
    )


@dataclass(frozen=True)
class SampleResult:
    """Result of one sample tube, with its provenance."""

    sample_id: str
    subject_id: str
    visit: str
    file: str
    sha256: str | None
    qc: str
    phenotype: str
    phenotype_reasons: tuple[str, ...]
    monocyte_count: int | None = None
    hladr_abc: float | None = None
    hladr_abc_geomean: float | None = None
    median_pe: float | None = None
    rcv_pct: float | None = None
    ferritin_ng_ml: float | None = None
    ferritin_text: str = ""
    ferritin_unit: str = ""
    flags: tuple[Flag, ...] = ()
    gate_counts: dict = field(default_factory=dict)
    channels: dict = field(default_factory=dict)
    gate: dict = field(default_factory=dict)
    instrument: str | None = None
    figure: dict = field(default_factory=dict)
    calibration_id: str | None = None
    ruleset: str = ""
    config_sha256: str = ""
    software_version: str = __version__
    extra: tuple[tuple[str, str], ...] = ()
    timings_ms: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["flags"] = [asdict(f) for f in self.flags]
        d["extra"] = dict(self.extra)
        d["phenotype_reasons"] = list(self.phenotype_reasons)
        return d


class _Clock:
    """Wall time of each stage in ms (provenance, and the benchmarks' stage breakdown)."""

    def __init__(self) -> None:
        import time

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
    threads: int | None = None,
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
            from .gatingml import apply_monocyte_template, load_template

            template = load_template(template_path)
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
                text, severity = _GATE_FLAGS.get(code, (code, "info"))
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
                    flags.append(Flag(code, _QUANT_FLAG_TEXT.get(code, code), "warn"))
            pe_all = None
        # the gating plot also when the gate failed: the reviewer sees what the tube looked like
        figure = _figure_data(events, panel, gate, rows)
        if summary is not None and figure:
            figure["abc_hist"] = _abc_histogram(pe, calibration.curve)
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


def _figure_data(events: Events, panel: Panel, gate: MonocyteGate | None, rows: np.ndarray | None = None) -> dict:
    """Compact data for the report's gating plot: CD14 vs SSC density (asinh), 48 x 48, of all
    events and of the gated monocytes (``rows``) on the same grid."""
    import numpy as np

    cof14 = gate.cof_cd14 if gate else cofactor(events.upper_limit(panel.cd14))
    cofs = gate.cof_ssc if gate else cofactor(events.upper_limit(panel.ssc_a))
    step = max(1, events.n_events // 50_000)
    x = np.arcsinh(events.data[::step, events.index(panel.cd14)] / cof14)  # no full-length column copies
    y = np.arcsinh(events.data[::step, events.index(panel.ssc_a)] / cofs)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 10:
        return {}
    xr = [float(v) for v in np.percentile(x, [0.5, 99.9])]  # one selection per axis, the same values
    yr = [float(v) for v in np.percentile(y, [0.5, 99.9])]
    h = _histogram2d(x, y, 48, xr, yr)
    out = {"density": h.astype(int).tolist(), "x_range": xr, "y_range": yr,
           "x_label": f"asinh({panel.cd14}/{cof14:g})", "y_label": f"asinh({panel.ssc_a}/{cofs:g})"}
    if rows is not None and rows.size:
        r = rows[:: max(1, rows.size // 20_000)]
        gx = np.arcsinh(events.data[r, events.index(panel.cd14)] / cof14)
        gy = np.arcsinh(events.data[r, events.index(panel.ssc_a)] / cofs)
        g = _histogram2d(gx, gy, 48, xr, yr)
        out["gated"] = g.astype(int).tolist()
    return out


def _bin_index(v, lo: float, hi: float, bins: int):
    """Bin of each value of ``v`` on ``bins`` equal bins over [lo, hi] (-1 outside; the last bin holds ``hi``):
    np.histogram's equal-bin rule -- the arithmetic index, corrected against the same edges."""
    import numpy as np

    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    with np.errstate(invalid="ignore"):
        keep = (v >= edges[0]) & (v <= edges[-1])
        i = np.nan_to_num((v - edges[0]) / (edges[-1] - edges[0]) * bins, nan=0.0, posinf=bins, neginf=0)
    i = np.clip(i, 0, bins - 1).astype(np.intp)
    i -= v < edges[i]
    i += (v >= edges[np.minimum(i + 1, bins)]) & (i != bins - 1)
    i[~keep] = -1
    return i


def _histogram2d(x, y, bins: int, xr: list[float], yr: list[float]):
    """``np.histogram2d(x, y, bins, range=[xr, yr])[0]``, the same counts three times faster (histogramdd
    bins by ``searchsorted``; equal bins allow an index by arithmetic)."""
    import numpy as np

    ix, iy = _bin_index(x, xr[0], xr[1], bins), _bin_index(y, yr[0], yr[1], bins)
    ok = (ix >= 0) & (iy >= 0)
    return np.bincount(ix[ok] * bins + iy[ok], minlength=bins * bins).reshape(bins, bins).astype(np.float64)


def _abc_histogram(pe, curve: BeadCurve) -> dict:
    """Histogram of monocyte log10 AB/C (positive events), 60 bins over 1..6."""
    import numpy as np

    from .quantify import pe_to_abc

    abc = pe_to_abc(pe, curve)
    counts, edges = np.histogram(np.log10(abc[abc > 0]), bins=60, range=(1.0, 6.0))
    return {"counts": counts.tolist(), "log10_edges": [1.0, 6.0]}


# The automated gate's flags: (message, severity). "info" is recorded in results.json only;
# "warn" makes the tube's qc warn. Doublets that are not excluded (no FSC-H/FSC-W, so no
# singlet gate, SPEC.md section 4 step 2) may carry a second cell's HLA-DR: warn.
_GATE_FLAGS = {
    "gated_without_cd45": ("no CD45 channel: monocytes gated on CD14/SSC only", "info"),
    "no_debris_valley": ("no debris valley on FSC: only off-scale events removed", "info"),
    "no_cd45_valley": ("no CD45-negative population: CD45 gate keeps all singlets", "info"),
    "no_singlet_channel": ("no FSC-H/FSC-W channel: doublets not excluded (no singlet gate)", "warn"),
    "fsc_height_only": ("only FSC-H available: used as forward scatter", "info"),
    "gated_after_debris_refit": ("the first mixture's gate failed; a second fit without the debris passed "
                                 "every check", "info"),
}
_QUANT_FLAG_TEXT = {
    "extrapolated_below_low_bead": "median PE below the low bead: value extrapolated",
    "extrapolated_above_high_bead": "median PE above the highest bead used: value extrapolated",
    "hladr_not_measurable": "monocyte PE not positive: HLA-DR not measurable",
}
