"""One simulated tube written as an FCS 3.1 file, and the truth of what it holds.

Calling contract: ``simulate_bead_tube`` / ``simulate_sample_tube`` draw a tube's
events (:mod:`hladr.simulate.tube_events`, explicit ``rng``), write them with the
instrument's keywords (:func:`write_tube`) and return a frozen truth record
(:class:`BeadTubeTruth`, :class:`SampleTubeTruth`); optionally the per-event labels
go to a ``.npz`` beside the run (:func:`hladr.simulate.simulator.read_truth_events`).
The model the events follow is in :mod:`hladr.simulate.tube_events`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..beads.lots import LEVEL_NAMES, Lot
from ..fcs.write import write_fcs
from ..rules import RuleSet, load_rules
from ._truth_events import write_truth_events
from .instruments import InstrumentProfile, PEResponse
from .tube_events import (
    BEAD_LABELS,
    EVENT_LABELS,
    BloodFeatures,
    TubeEvents,
    simulate_bead_events,
    simulate_sample_events,
)

__all__ = ["BeadTubeTruth", "SampleTubeTruth", "simulate_bead_tube", "simulate_sample_tube", "write_tube"]


@dataclass(frozen=True)
class BeadTubeTruth:
    """Truth of a bead tube; per-level tuples run low, med-low, med-high, high."""

    path: str
    instrument: str
    lot_id: str
    pe_per_bead: tuple[float, ...]
    mfi_true: tuple[float, ...]  # noise-free, compensated PE scale (may exceed PnR)
    level_cv: tuple[float, ...]
    level_events: tuple[int, ...]
    saturated_levels: tuple[int, ...]
    missing_level: int | None
    response: PEResponse
    pe_voltage: float
    pnr: float
    calibration_slope: float
    calibration_intercept: float
    counts: Mapping[str, int]
    truth_events: str | None = None  # per-event labels file, when written

    def to_dict(self) -> dict:
        d = asdict(self)
        d["response"] = self.response.to_dict()
        d["level_names"] = list(LEVEL_NAMES)
        return d


@dataclass(frozen=True)
class SampleTubeTruth:
    """Truth of a patient tube: ``hladr_abc`` is the monocyte singlets' median AB/C."""

    path: str
    sample_id: str
    instrument: str
    hladr_abc: float
    hladr_log10_sd: float
    n_monocytes: int
    monocyte_fraction: float
    b_cell_abc: float
    pe_saturated_monocytes: int
    has_cd45: bool
    has_cd14: bool
    response: PEResponse
    pe_voltage: float
    counts: Mapping[str, int]
    # the blood picture: profile, forced features and every drawn value
    profile: str = "healthy"
    scenarios: tuple[str, ...] = ()
    feature_overrides: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    morphology: Mapping[str, float] = field(default_factory=dict)
    n_leukocytes: int = 0
    monocyte_fraction_of_leukocytes: float = 0.0
    monocyte_subsets: Mapping[str, int] = field(default_factory=dict)
    truth_events: str | None = None  # per-event labels file, when written

    def to_dict(self) -> dict:
        d = asdict(self)
        d["response"] = self.response.to_dict()
        return d


def _keywords(ev: TubeEvents, *, path: Path, sample_id: str, extra: Mapping[str, str] | None):
    p = ev.profile
    kw = {
        "$CYT": p.cyt, "$CYTSN": p.cytsn, p.software[0]: p.software[1],
        "$DATE": "20-NOV-2026", "$BTIM": "09:00:00", "$ETIM": "09:01:00",
        "$SRC": sample_id, "$SMNO": sample_id, "$FIL": path.name,
        "$TIMESTEP": f"{p.timestep:g}", "$SPILLOVER": p.spillover_keyword(ev.channels),
    }
    for j, ch in enumerate(ev.channels, start=1):
        if ch.voltage is not None:
            volts = ev.response.voltage if ch.role == "pe" else ch.voltage
            kw[f"$P{j}V"] = f"{volts:g}"
        kw[f"$P{j}G"] = "1"
    kw.update(extra or {})
    return kw


def write_tube(path: str | os.PathLike, ev: TubeEvents, *, sample_id: str, keywords=None) -> Path:
    path = Path(path)
    p = ev.profile
    write_fcs(
        path, ev.data, ev.pnn, pns=[ch.pns for ch in ev.channels],
        pnr=[p.pnr] * len(ev.channels), datatype=p.datatype, bits=p.bits,
        byteorder=p.byteorder,
        keywords=_keywords(ev, path=path, sample_id=sample_id, extra=keywords),
    )
    return path


def _events_file(path: str | os.PathLike | None, ev: TubeEvents) -> str | None:
    """Write the tube's per-event truth to ``path`` (if given); its path as text."""
    if path is None:
        return None
    return str(write_truth_events(path, ev.labels, ev.subsets, EVENT_LABELS))


def simulate_bead_tube(
    path: str | os.PathLike,
    *,
    rng: np.random.Generator,
    instrument: str | InstrumentProfile = "canto",
    lot: Lot,
    n_events: int = 10_000,
    saturate_high: bool = False,
    missing_level: int | None = None,
    stray_cells: int = 30,
    response: PEResponse | None = None,
    pe_voltage: float | None = None,
    keywords: Mapping[str, str] | None = None,
    rules: RuleSet | None = None,
    truth_events_path: str | os.PathLike | None = None,
) -> BeadTubeTruth:
    """Write a QuantiBRITE PE bead tube; return its truth (see :class:`BeadTubeTruth`).

    A level counts as saturated when its noise-free MFI + ``saturation_sd`` (rule
    table, 2.5) population SDs reaches $PnR. The calibration reference fits all
    four lot levels on the noise-free response, whatever is saturated or missing.
    ``truth_events_path``: also write the per-event labels there (.npz).
    """
    ev = simulate_bead_events(
        rng=rng, instrument=instrument, lot=lot, n_events=n_events, saturate_high=saturate_high,
        missing_level=missing_level, stray_cells=stray_cells, response=response,
        pe_voltage=pe_voltage,
    )
    out = write_tube(path, ev, sample_id=f"QuantiBRITE PE lot {lot.id}", keywords=keywords)
    te = _events_file(truth_events_path, ev)
    rules = rules or load_rules()
    p, resp = ev.profile, ev.response
    pe = np.asarray(lot.pe_per_bead, dtype=float)
    mfi = resp.mfi(pe)
    cv = np.asarray(ev.params["level_cv"])
    q = resp.units_per_molecule() / p.photoelectrons_per_molecule
    sd = np.sqrt((cv * mfi) ** 2 + q * mfi + p.electronic_sd**2)
    saturated = tuple(
        int(k) for k in range(4)
        if k != missing_level and mfi[k] + rules.cal_saturation_sd * sd[k] >= p.pnr
    )
    slope, intercept = np.polyfit(np.log10(mfi), np.log10(pe), 1)
    counts = ev.counts()
    return BeadTubeTruth(
        path=str(out), instrument=p.key, lot_id=lot.id,
        pe_per_bead=tuple(float(v) for v in pe), mfi_true=tuple(float(v) for v in mfi),
        level_cv=tuple(float(c) for c in cv),
        level_events=tuple(counts.get(name, 0) for name in BEAD_LABELS),
        saturated_levels=saturated, missing_level=missing_level, response=resp,
        pe_voltage=resp.voltage, pnr=p.pnr, calibration_slope=float(slope),
        calibration_intercept=float(intercept), counts=counts, truth_events=te,
    )


def simulate_sample_tube(
    path: str | os.PathLike,
    *,
    rng: np.random.Generator,
    instrument: str | InstrumentProfile = "canto",
    hladr_abc: float,
    n_events: int = 50_000,
    monocyte_fraction: float | None = None,
    hladr_log10_sd: float | None = None,
    has_cd45: bool = True,
    has_cd14: bool = True,
    sample_id: str = "P001",
    response: PEResponse | None = None,
    pe_voltage: float | None = None,
    keywords: Mapping[str, str] | None = None,
    profile: str = "healthy",
    features: BloodFeatures = None,
    truth_events_path: str | os.PathLike | None = None,
) -> SampleTubeTruth:
    """Write one patient tube (see :func:`simulate_sample_events`); return its truth.

    ``truth_events_path``: also write the per-event labels and subsets there
    (.npz, read with :func:`hladr.simulate.simulator.read_truth_events`).
    """
    ev = simulate_sample_events(
        rng=rng, instrument=instrument, hladr_abc=hladr_abc, n_events=n_events,
        monocyte_fraction=monocyte_fraction, hladr_log10_sd=hladr_log10_sd, has_cd45=has_cd45,
        has_cd14=has_cd14, response=response, pe_voltage=pe_voltage, profile=profile,
        features=features,
    )
    out = write_tube(path, ev, sample_id=sample_id, keywords=keywords)
    te = _events_file(truth_events_path, ev)
    mono = ev.labels == "monocyte"
    pe_top = ev.profile.pnr - 1.0
    counts = ev.counts()
    par = ev.params
    return SampleTubeTruth(
        path=str(out), sample_id=sample_id, instrument=ev.profile.key,
        hladr_abc=float(hladr_abc), hladr_log10_sd=float(par["hladr_log10_sd"]),
        n_monocytes=int(mono.sum()), monocyte_fraction=float(par["monocyte_fraction"]),
        b_cell_abc=float(par["b_cell_abc"]),
        pe_saturated_monocytes=int((ev.column("pe")[mono] >= pe_top).sum()),
        has_cd45=has_cd45, has_cd14=has_cd14, response=ev.response,
        pe_voltage=ev.response.voltage, counts=counts, profile=str(par["profile"]),
        scenarios=tuple(par["scenarios"]), feature_overrides=dict(par["feature_overrides"]),
        morphology=dict(par["morphology"]), n_leukocytes=int(par["n_leukocytes"]),
        monocyte_fraction_of_leukocytes=float(par["monocyte_fraction_of_leukocytes"]),
        monocyte_subsets=dict(par["monocyte_subsets"]), truth_events=te,
    )
