"""Synthetic daily runs with ground truth: one QuantiBRITE PE bead tube + patient tubes.

Calling contract: ``simulate_bead_events`` / ``simulate_sample_events`` take an
explicit ``rng`` and return :class:`TubeEvents` (the exact values a file will
hold, one label and the true PE molecules per event); ``simulate_bead_tube`` /
``simulate_sample_tube`` write one FCS 3.1 file from those and return a frozen
truth record; :func:`simulate_run` writes a whole run (``beads.fcs``,
``P001_HLADR.fcs``, ..., ``worklist.csv``, ``truth.csv``, ``truth.json``,
``truth_events/*.npz``). No global random state: the same seed gives byte-identical files.

Notes
-----
PE response (same for beads and cells on one instrument, voltage and day)::

    MFI(m) = 10**(c0 + c1*log10(m) + c2*(log10(m) - 3.5)**2)

with ``m`` PE molecules (1 PE per antibody), c1 in the profile's range (0.95-1.04),
|c2| <= 0.008 and c0 set so that 65,000 PE land at ``high_bead_fraction`` of
$PnR (+-0.03-0.05 decade day to day); gain ~ voltage**7 for PMTs (CytoFLEX APD:
gain**1). The reference calibration is the least-squares line
``log10(PE per bead) = intercept + slope*log10(MFI)`` through the noise-free
response at the four lot levels (``BeadTubeTruth.calibration_slope``).

Per event: population spread (beads: lognormal CV 3-8 % per level with median
= certificate value; cells: lognormal HLA-DR with log10 SD 0.15-0.25 per
patient in health, up to 0.4 and sometimes bimodal in sepsis), then optical
mixing ``observed = signals @ S`` (S = the $SPILLOVER written, rows = source
dye), then photon noise (variance = q*signal, q = channel units per
photoelectron, 0.2-0.35 photoelectrons per PE molecule) and Gaussian electronic
noise, then clipping at $PnR - 1 (saturation) and, for Beckman-like
profiles, at 0. Compensation with inv(S) recovers the noise-free PE MFI exactly
in expectation; the curvature is applied per dye before mixing.

Cells have PE autofluorescence of 3-15 PE-molecule equivalents (monocytes ~8;
eosinophils and dead cells more), so the antibody count stays recoverable within
~2 % at 500 AB/C. Autofluorescence in the empty FITC detector spills into PE by
the FITC row of S and is removed by compensation. HLA-DR is drawn independently
of CD14, CD45 and scatter (septic profiles: CD16+ monocytes up to 0.3 decade
higher); the monocyte singlets' draw is scaled so that their sample median AB/C
equals ``hladr_abc`` exactly (the truth is what is in the tube). Per-patient
AB/C keeps a 10 % margin from the 5000 threshold and ferritin a 5 % margin from
4420, so an assay within its 5 % acceptance cannot flip the expected phenotype.
Septic runs draw AB/C from 300-15,000 (``sepsis``) or 300-8,000
(``severe-sepsis``), mostly below 5000, with both sides of 5000 in every run of
>= 2 samples.

Sample tube (lysed whole blood): the blood picture comes from a profile of
:mod:`hladr.simulate.blood_profiles` (``healthy``, ``sepsis``, ``severe-sepsis``), a table
of ranges from which every tube draws its own value of each feature (population
shares, scatter and marker positions and spreads, HLA-DR spread and bimodality);
``features`` forces any of them (a mapping or a named scenario such as
``monocytopenic`` or ``left_shift``). Populations: lymphocytes (T and NK; B cells
with 20,000-40,000 AB/C), monocytes (classical, intermediate and non-classical,
all labelled ``monocyte``), immature granulocytes (lower SSC than neutrophils,
dim CD45, CD14 dim to intermediate), mature neutrophils (CD14-dim, CD45-dim,
high SSC), eosinophils (very high SSC, autofluorescent, CD14-negative),
basophils, dead cells, debris, doublets (FSC-A summed, FSC-H = max + f * min),
monocyte-granulocyte aggregates (``mono_gran_doublet``, not monocytes) and
off-scale clumps. Singlet FSC-H = FSC-A * N(0.85, 0.02). ``healthy`` is the
former picture (monocytes 4-10 % of leukocytes, CD14 1-1.5 decades above the
neutrophils) plus eosinophils, basophils, NK cells, CD16+ monocytes, dead cells
and a few aggregates. Per-event labels and subsets are in :class:`TubeEvents`;
:func:`simulate_run` also writes them to ``truth_events/<file stem>.npz``
(:func:`read_truth_events`). Bead tube: singlets ~88 % in four near-equal
levels, doublets 5-8 %, debris 3-5 %, a few tens of carry-over cells.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..beads.lots import LEVEL_NAMES, Lot, find_lot
from ..errors import ConfigError
from ..fcs.write import write_fcs
from ..rules import RuleSet, load_rules
from . import blood_events as be
from . import blood_profiles as bp
from ._truth_events import read_truth_events, write_truth_events
from .blood_events import concat_events, doublets, lognormal
from .blood_profiles import PROFILE_NAMES, SCENARIOS
from .instruments import (
    INSTRUMENTS,
    Channel,
    InstrumentProfile,
    PEResponse,
    acquire,
    get_instrument,
)

__all__ = [
    "INSTRUMENTS",
    "InstrumentProfile",
    "PEResponse",
    "TubeEvents",
    "BeadTubeTruth",
    "SampleTubeTruth",
    "SampleRecord",
    "SimulatedRun",
    "simulate_bead_events",
    "simulate_sample_events",
    "simulate_bead_tube",
    "simulate_sample_tube",
    "simulate_run",
    "expected_phenotype",
    "read_truth_events",
    "PROFILE_NAMES",
    "SCENARIOS",
    "EVENT_LABELS",
]

BEAD_LABELS = tuple(f"bead_{n}" for n in LEVEL_NAMES)
# Code table of the per-event truth files (truth_events/<stem>.npz): uint8 code = index.
EVENT_LABELS = (*bp.CELL_LABELS, *BEAD_LABELS, "bead_doublet", "bead_debris", "stray_cell")
# What a ``features`` argument may be (see hladr.simulate.blood_profiles.normalise_features).
BloodFeatures = str | Mapping[str, object] | Sequence[str | Mapping[str, object]] | None


@dataclass(frozen=True, eq=False)
class TubeEvents:
    """Events of one simulated tube, exactly as written, with per-event truth.

    ``data`` (N, D) float64 holds the file's values (float32-rounded or integer);
    ``labels`` (N,) str the population; ``pe_molecules`` (N,) the true PE from
    antibodies or beads (no autofluorescence); ``pe_true`` (N,) the noise-free
    compensated PE MFI (autofluorescence included); ``subsets`` (N,) str the
    subset (monocytes: ``classical``/``intermediate``/``non_classical``; ""
    where none; None for bead tubes).
    """

    data: np.ndarray
    channels: tuple[Channel, ...]
    labels: np.ndarray
    pe_molecules: np.ndarray
    pe_true: np.ndarray
    response: PEResponse
    profile: InstrumentProfile
    params: Mapping[str, object] = field(default_factory=dict)
    subsets: np.ndarray | None = None

    @property
    def pnn(self) -> tuple[str, ...]:
        return tuple(ch.pnn for ch in self.channels)

    def column(self, role: str) -> np.ndarray:
        """Values of the channel with ``role`` (``pe``, ``fsc_a``, ...)."""
        for j, ch in enumerate(self.channels):
            if ch.role == role:
                return self.data[:, j]
        raise KeyError(f"no channel with role {role!r}")

    def counts(self) -> dict[str, int]:
        names, n = np.unique(self.labels, return_counts=True)
        return {str(a): int(b) for a, b in zip(names, n, strict=True)}


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


@dataclass(frozen=True)
class SampleRecord:
    """One worklist/truth row of a run."""

    sample_id: str
    subject_id: str
    visit: str
    file: str
    ferritin_text: str
    ferritin_unit: str
    ferritin_ng_ml: float
    expected_phenotype: str
    tube: SampleTubeTruth


@dataclass(frozen=True)
class SimulatedRun:
    """What :func:`simulate_run` wrote."""

    out_dir: Path
    instrument: str
    seed: int
    files: list[Path]
    worklist: Path
    truth_csv: Path
    truth_json: Path
    beads: BeadTubeTruth
    samples: tuple[SampleRecord, ...]


# ---------------------------------------------------------------- populations


# ---------------------------------------------------------------- acquisition


def _tube_channels(profile: InstrumentProfile, drop: tuple[str, ...] = ()) -> tuple[Channel, ...]:
    return tuple(ch for ch in profile.channels if ch.role not in drop)


def _shuffled(rng, channels, data, labels, pe_molecules, pe_true, subsets=None):
    """Random acquisition order; the time column stays increasing."""
    order = rng.permutation(len(labels))
    data = data[order]
    for j, ch in enumerate(channels):
        if ch.role == "time":
            data[:, j] = np.sort(data[:, j])
    out = data, labels[order], pe_molecules[order], pe_true[order]
    return out if subsets is None else (*out, subsets[order])


def simulate_sample_events(
    *,
    rng: np.random.Generator,
    instrument: str | InstrumentProfile = "canto",
    hladr_abc: float,
    n_events: int = 50_000,
    monocyte_fraction: float | None = None,
    hladr_log10_sd: float | None = None,
    has_cd45: bool = True,
    has_cd14: bool = True,
    response: PEResponse | None = None,
    pe_voltage: float | None = None,
    profile: str = "healthy",
    features: BloodFeatures = None,
) -> TubeEvents:
    """Events of one lysed-whole-blood tube (see the module Notes for the model).

    Parameters
    ----------
    rng : numpy Generator
    instrument : str or InstrumentProfile
    hladr_abc : float
        The monocyte singlets' median HLA-DR antibodies bound per cell (exact).
    n_events : int
        Events in the tube (all populations).
    monocyte_fraction : float, optional
        Fraction of *events* that are monocyte singlets (default: the profile's
        monocyte fraction of leukocytes).
    hladr_log10_sd : float, optional
        Log10 SD of monocyte AB/C (default: drawn from the profile).
    has_cd45, has_cd14 : bool
        Whether the panel (and file) has the CD45 / CD14 channel.
    response : PEResponse, optional
        The day's PE response (default: the profile's nominal one).
    pe_voltage : float, optional
        PE voltage/gain; shifts the response from its own voltage.
    profile : str
        Blood picture: ``healthy``, ``sepsis`` or ``severe-sepsis``
        (:data:`hladr.simulate.blood_profiles.PROFILES`).
    features : optional
        Forced feature ranges: ``{name: (lo, hi) or value}``, a scenario name of
        :data:`hladr.simulate.blood_profiles.SCENARIOS` or a sequence of both.

    Returns
    -------
    TubeEvents
        Labels of :data:`hladr.simulate.blood_profiles.CELL_LABELS` (``monocyte`` = every
        monocyte singlet, whatever its subset; ``subsets`` holds ``classical``,
        ``intermediate``, ``non_classical``, ``t``/``nk`` for lymphocytes and the
        former population of dead cells); ``pe_molecules`` is antibodies bound per
        event (summed for doublets and clumps); ``params`` holds the profile and
        every drawn value (``morphology``).
    """
    instr = get_instrument(instrument)
    if hladr_abc <= 0 or n_events < 100:
        raise ValueError("hladr_abc must be > 0 and n_events >= 100")
    resp = response or instr.nominal_response()
    if pe_voltage is not None:
        resp = resp.at_voltage(pe_voltage)
    scenarios, overrides = bp.normalise_features(features)
    ranges = bp.resolve_features(profile, overrides)
    morph = bp.draw_morphology(rng, ranges)
    if hladr_log10_sd is not None:
        morph["hladr_log10_sd"] = float(hladr_log10_sd)
    if monocyte_fraction is not None and not 0 <= float(monocyte_fraction) < 1:
        raise ValueError("monocyte_fraction must be between 0 and 1")
    n = int(n_events)
    ev, labels, info = be.blood_events(rng, n, float(hladr_abc), morph, scatter_scale=instr.scatter_scale,
                                       monocyte_fraction=monocyte_fraction)
    drop = tuple(r for r, keep in (("cd45", has_cd45), ("cd14", has_cd14)) if not keep)
    channels = _tube_channels(instr, drop)
    data, pe_true = acquire(rng, instr, resp, channels, ev)
    data, labels, abc, pe_true, subsets = _shuffled(rng, channels, data, labels, ev["abc"], pe_true,
                                                    ev["subset"])
    n_mono = int((labels == "monocyte").sum())
    params = {
        "monocyte_fraction": n_mono / n, "hladr_log10_sd": morph["hladr_log10_sd"],
        "b_cell_abc": morph["b_cell_hladr_abc"], "hladr_abc": float(hladr_abc),
        "profile": profile, "scenarios": scenarios, "feature_overrides": overrides,
        "morphology": morph, **info,
    }
    return TubeEvents(data, channels, labels, abc, pe_true, resp, instr, params, subsets)


def _saturating_voltage(resp: PEResponse, high_pe: float, pnr: float) -> float:
    """A PE voltage/gain that puts the high bead at ~1.4 x the channel maximum."""
    ratio = 1.4 * pnr / float(resp.mfi(high_pe))
    return float(math.ceil(resp.voltage * ratio ** (1.0 / resp.voltage_exponent)))


def simulate_bead_events(
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
) -> TubeEvents:
    """Events of a QuantiBRITE PE tube.

    Parameters
    ----------
    rng : numpy Generator
    instrument : str or InstrumentProfile
    lot : Lot
        Certified PE molecules per bead of the four levels (bead medians).
    n_events : int
        Events in the tube.
    saturate_high : bool
        Raise the PE voltage/gain until the high bead (~1.4 x $PnR) piles up at
        the channel maximum.
    missing_level : int, optional
        Level (0 = low ... 3 = high) left out of the tube.
    stray_cells : int
        Carry-over cells from a stained sample.
    response, pe_voltage
        As in :func:`simulate_sample_events`.

    Returns
    -------
    TubeEvents
        Labels ``bead_low``, ``bead_med-low``, ``bead_med-high``, ``bead_high``,
        ``bead_doublet``, ``bead_debris``, ``stray_cell``; ``pe_molecules`` is the
        PE per event (summed for doublets).
    """
    profile = get_instrument(instrument)
    if missing_level is not None and missing_level not in range(4):
        raise ValueError(f"missing_level must be 0-3 or None, not {missing_level!r}")
    if saturate_high and pe_voltage is not None:
        raise ValueError("give saturate_high or pe_voltage, not both")
    resp = response or profile.nominal_response()
    if pe_voltage is not None:
        resp = resp.at_voltage(pe_voltage)
    pe_per_bead = np.asarray(lot.pe_per_bead, dtype=float)
    if saturate_high:
        resp = resp.at_voltage(_saturating_voltage(resp, pe_per_bead[3], profile.pnr))
    n = int(n_events)
    n_deb = round(rng.uniform(0.03, 0.05) * n)
    n_dbl = round(rng.uniform(0.05, 0.08) * n)
    n_stray = int(stray_cells)
    n_single = n - n_deb - n_dbl - n_stray
    if n_single < 100:
        raise ValueError("n_events too small for the bead tube")
    levels = np.array([k for k in range(4) if k != missing_level])
    level_cv = (rng.uniform(0.05, 0.08), rng.uniform(0.04, 0.06),
                rng.uniform(0.03, 0.05), rng.uniform(0.03, 0.05))
    cv = np.asarray(level_cv)

    def beads(m: int) -> tuple[np.ndarray, dict]:
        lv = rng.choice(levels, size=m)
        ev = {
            "fsc": lognormal(rng, 0.30, 0.013, m), "ssc": lognormal(rng, 0.075, 0.02, m),
            "abc": pe_per_bead[lv] * np.exp(cv[lv] * rng.standard_normal(m)),
            "af_pe": np.zeros(m), "fitc": lognormal(rng, 20, 0.2, m),
            "cd14": np.zeros(m), "cd45": np.zeros(m),
        }
        ev["fsc_h"] = ev["fsc"] * rng.normal(0.90, 0.01, m)
        ev["ssc_h"] = ev["ssc"] * rng.normal(0.92, 0.02, m)
        return lv, ev

    lv, single = beads(n_single)
    dbl = doublets(beads(n_dbl)[1], beads(n_dbl)[1], rng, 0.45)  # bead doublets: f in 0.10-0.45
    debris = {
        "fsc": 0.01 + rng.exponential(0.025, n_deb), "ssc": lognormal(rng, 0.01, 0.3, n_deb),
        "abc": lognormal(rng, 30, 0.5, n_deb), "af_pe": np.zeros(n_deb),
        "fitc": lognormal(rng, 20, 0.3, n_deb), "cd14": np.zeros(n_deb), "cd45": np.zeros(n_deb),
    }
    debris["fsc_h"] = debris["fsc"] * rng.normal(0.9, 0.03, n_deb)
    debris["ssc_h"] = debris["ssc"] * rng.normal(0.9, 0.03, n_deb)
    stray = be.carry_over_cells(rng, n_stray)
    ev = concat_events([single, dbl, debris, stray])
    labels = np.concatenate([np.array(BEAD_LABELS)[lv], np.full(n_dbl, "bead_doublet"),
                             np.full(n_deb, "bead_debris"), np.full(n_stray, "stray_cell")])
    channels = _tube_channels(profile)
    data, pe_true = acquire(rng, profile, resp, channels, ev)
    data, labels, pe, pe_true = _shuffled(rng, channels, data, labels, ev["abc"], pe_true)
    params = {"level_cv": tuple(float(c) for c in level_cv), "missing_level": missing_level,
              "lot_id": lot.id, "pe_per_bead": tuple(float(v) for v in pe_per_bead)}
    return TubeEvents(data, channels, labels, pe, pe_true, resp, profile, params)


# ---------------------------------------------------------------- files


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


def _write(path: str | os.PathLike, ev: TubeEvents, *, sample_id: str, keywords=None) -> Path:
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
    out = _write(path, ev, sample_id=f"QuantiBRITE PE lot {lot.id}", keywords=keywords)
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
    (.npz, read with :func:`read_truth_events`).
    """
    ev = simulate_sample_events(
        rng=rng, instrument=instrument, hladr_abc=hladr_abc, n_events=n_events,
        monocyte_fraction=monocyte_fraction, hladr_log10_sd=hladr_log10_sd, has_cd45=has_cd45,
        has_cd14=has_cd14, response=response, pe_voltage=pe_voltage, profile=profile,
        features=features,
    )
    out = _write(path, ev, sample_id=sample_id, keywords=keywords)
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


# ---------------------------------------------------------------- ferritin and phenotype


def expected_phenotype(
    ferritin_text: str, ferritin_unit: str, hladr_abc: float | None, *, rules: RuleSet
) -> str:
    """The ImmunoSep call (SPEC section 2) from the reported ferritin text and true AB/C."""
    text = (ferritin_text or "").strip()
    if not text:
        return "indeterminate"
    sign = text[0] if text[0] in "<>" else ""
    try:
        value = float(text[len(sign):])
    except ValueError:
        return "indeterminate"
    if value < 0:
        return "indeterminate"
    if ferritin_unit.strip().lower() == "pmol/l":
        value /= rules.ferritin_pmol_per_ng
    thr = rules.mals_ferritin_ng_ml
    if sign == ">":
        return "MALS" if value >= thr else "indeterminate"
    if sign == "<" and value > thr:
        return "indeterminate"
    if sign == "" and value > thr:
        return "MALS"
    if hladr_abc is None:
        return "indeterminate"
    return "immunoparalysis" if hladr_abc < rules.immunoparalysis_hladr_abc else "intermediate"


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(10 ** rng.uniform(math.log10(lo), math.log10(hi)))


def _draw_patients(
    rng: np.random.Generator,
    n: int,
    rules: RuleSet,
    *,
    run_profile: str = "healthy",
    profiles: Sequence[str] | None = None,
) -> list[dict]:
    """Per patient: AB/C, true ferritin and how the lab reported it.

    Every run of >= 2 samples has AB/C on both sides of the threshold; >= 3 also
    has a MALS patient. Margins: 10 % around the AB/C threshold, 5 % around 4420.
    The mix of kinds follows ``run_profile``; each patient's AB/C range follows its
    own profile (``profiles``, default the run's): :data:`blood_profiles.RUN_DRAWS`.
    """
    thr_f, thr_abc = rules.mals_ferritin_ng_ml, rules.immunoparalysis_hladr_abc
    profiles = list(profiles) if profiles is not None else [run_profile] * n
    for name in {run_profile, *profiles}:
        lo, hi = bp.RUN_DRAWS[name]["hladr_abc"]
        if not lo < thr_abc / 1.1 < thr_abc * 1.1 < hi:
            raise ConfigError(f"profile {name}: AB/C range {lo:g}-{hi:g} must span {thr_abc:g} +- 10 %")
    forced = ["immunoparalysis", "intermediate", "MALS"][: min(n, 3)]
    rest = list(rng.choice(["immunoparalysis", "intermediate", "MALS"], size=n - len(forced),
                           p=list(bp.RUN_DRAWS[run_profile]["phenotype_mix"])))
    kinds = [str(k) for k in rng.permutation(forced + rest)]
    is_forced: set[int] = set()  # first patient of each kind keeps a reported ferritin
    seen: set[str] = set()
    out = []
    for i, kind in enumerate(kinds):
        first = kind not in seen
        seen.add(kind)
        if first:
            is_forced.add(i)
        abc_lo, abc_hi = bp.RUN_DRAWS[profiles[i]]["hladr_abc"]
        if kind == "MALS":
            ferritin = _log_uniform(rng, thr_f * 1.05, 20_000)
            abc = _log_uniform(rng, abc_lo, abc_hi)
        else:
            ferritin = _log_uniform(rng, 15, thr_f / 1.05)
            lo, hi = (abc_lo, thr_abc / 1.1) if kind == "immunoparalysis" else (thr_abc * 1.1, abc_hi)
            abc = _log_uniform(rng, lo, hi)
        u = rng.random()
        unit = "ng/mL"
        if ferritin > 5000 and u < 0.3:  # above the lab's range without dilution
            limit = max(x for x in (5000, 10_000, 15_000) if x < ferritin)
            text = f">{limit}"
        elif ferritin < 20:  # below the lab's lower limit
            text = "<20"
        elif 0.30 <= u < 0.45:
            text, unit = f"{round(ferritin * rules.ferritin_pmol_per_ng)}", "pmol/L"
            ferritin = float(text) / rules.ferritin_pmol_per_ng
        elif 0.45 <= u < 0.50:
            text, unit = f"{round(ferritin)}", "µg/L"
            ferritin = float(text)
        elif 0.50 <= u < 0.55 and i not in is_forced:
            text = ""  # result not back from the lab yet
        else:
            text = f"{ferritin:.0f}" if ferritin >= 100 else f"{ferritin:.1f}"
            ferritin = float(text)
        out.append({"abc": abc, "ferritin_ng_ml": ferritin, "text": text, "unit": unit})
    return out


# ---------------------------------------------------------------- run


def simulate_run(
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    instrument: str = "canto",
    n_samples: int = 8,
    events_per_tube: int = 50_000,
    lot_id: str = "96597",
    bead_events: int = 10_000,
    profile: str = "healthy",
    features: BloodFeatures = None,
    sample_profiles: Sequence[str | tuple[str, BloodFeatures] | None] | None = None,
) -> SimulatedRun:
    """Write a synthetic daily run into ``out_dir`` and return what was written.

    Files: ``beads.fcs``, ``P001_HLADR.fcs`` ... (one per sample), ``worklist.csv``
    (file, role, sample_id, subject_id, visit, ferritin, ferritin_unit),
    ``truth.csv`` (sample_id, file, true_hladr_abc, true_monocytes, ferritin_ng_ml,
    expected_phenotype), ``truth.json`` (bead truth and per-sample truth with the
    blood picture drawn) and ``truth_events/<file stem>.npz`` (per-event labels, see
    :func:`read_truth_events`; in a sub-folder so no run reader takes it for a tube).
    All tubes share the day's PE response, voltage and compensation.

    ``profile`` and ``features`` give every sample's blood picture (see
    :func:`simulate_sample_events`); ``sample_profiles`` (one entry per sample)
    replaces them per sample: a profile name, a ``(name, features)`` pair, or None
    for the run's. The patients' AB/C follow :data:`blood_profiles.RUN_DRAWS`.
    """
    instr = get_instrument(instrument)
    if n_samples < 1:
        raise ValueError("n_samples must be >= 1")
    pictures = _sample_pictures(n_samples, profile, features, sample_profiles)
    lot = find_lot(lot_id)
    rules = load_rules()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seeds = np.random.SeedSequence(int(seed)).spawn(n_samples + 2)
    run_rng = np.random.default_rng(seeds[0])
    response = instr.draw_response(run_rng)
    patients = _draw_patients(run_rng, n_samples, rules, run_profile=profile,
                              profiles=[name for name, _ in pictures])
    day = _dt.date(2026, 1, 5) + _dt.timedelta(days=int(seed) % 360)
    date_kw = day.strftime("%d-%b-%Y").upper()
    start = 8 * 3600 + int(run_rng.integers(0, 90)) * 60

    def times(k: int, n: int) -> dict[str, str]:
        t0 = start + 240 * k
        t1 = t0 + 30 + n // 1000

        def hms(t: int) -> str:
            return f"{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}"

        return {"$DATE": date_kw, "$BTIM": hms(t0), "$ETIM": hms(t1)}

    events_dir = out / "truth_events"
    beads = simulate_bead_tube(
        out / "beads.fcs", rng=np.random.default_rng(seeds[1]), instrument=instr, lot=lot,
        n_events=bead_events, response=response, keywords=times(0, bead_events), rules=rules,
        truth_events_path=events_dir / "beads.npz",
    )
    subjects = run_rng.choice(np.arange(1, 1000), size=n_samples, replace=False)
    visits = run_rng.choice(["D1", "D1", "D3", "D7"], size=n_samples)
    records = []
    for i, pt in enumerate(patients):
        sample_id = f"P{i + 1:03d}"
        name = f"{sample_id}_HLADR.fcs"
        tube = simulate_sample_tube(
            out / name, rng=np.random.default_rng(seeds[i + 2]), instrument=instr,
            hladr_abc=pt["abc"], n_events=events_per_tube, sample_id=sample_id,
            response=response, keywords=times(i + 1, events_per_tube),
            profile=pictures[i][0], features=pictures[i][1],
            truth_events_path=events_dir / f"{Path(name).stem}.npz",
        )
        records.append(SampleRecord(
            sample_id=sample_id, subject_id=f"ISP-{int(subjects[i]):04d}", visit=str(visits[i]),
            file=name, ferritin_text=pt["text"], ferritin_unit=pt["unit"],
            ferritin_ng_ml=pt["ferritin_ng_ml"],
            expected_phenotype=expected_phenotype(pt["text"], pt["unit"], pt["abc"], rules=rules),
            tube=tube,
        ))
    worklist, truth_csv, truth_json = _write_tables(out, records, beads, seed=seed, profile=profile)
    return SimulatedRun(
        out_dir=out, instrument=instr.key, seed=int(seed),
        files=[out / "beads.fcs", *(out / r.file for r in records)],
        worklist=worklist, truth_csv=truth_csv, truth_json=truth_json,
        beads=beads, samples=tuple(records),
    )


def _sample_pictures(n: int, profile: str, features, sample_profiles) -> list[tuple[str, object]]:
    """(profile, features) per sample; validated before anything is written."""
    if sample_profiles is None:
        pictures = [(profile, features)] * n
    else:
        entries = list(sample_profiles)
        if len(entries) != n:
            raise ConfigError(f"sample_profiles has {len(entries)} entries for {n} samples")
        pictures = []
        for e in entries:
            if e is None:
                pictures.append((profile, features))
            elif isinstance(e, str):
                pictures.append((e, None))
            else:
                name, feats = e
                pictures.append((str(name), feats))
    for name, feats in pictures:
        bp.resolve_features(name, feats)  # unknown profile / feature / scenario: ConfigError
    bp.resolve_features(profile, features)
    return pictures


def _rel(path: str | None, out: Path) -> str | None:
    return None if path is None else Path(path).relative_to(out).as_posix()


def _write_tables(out: Path, records: list[SampleRecord], beads: BeadTubeTruth, *, seed: int,
                  profile: str = "healthy"):
    worklist = out / "worklist.csv"
    with open(worklist, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["file", "role", "sample_id", "subject_id", "visit", "ferritin", "ferritin_unit"])
        w.writerow(["beads.fcs", "beads", f"BEADS-{beads.lot_id}", "", "", "", ""])
        for r in records:
            w.writerow([r.file, "sample", r.sample_id, r.subject_id, r.visit, r.ferritin_text,
                        r.ferritin_unit])
    truth_csv = out / "truth.csv"
    with open(truth_csv, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["sample_id", "file", "true_hladr_abc", "true_monocytes", "ferritin_ng_ml",
                    "expected_phenotype"])
        for r in records:
            w.writerow([r.sample_id, r.file, f"{r.tube.hladr_abc:.2f}", r.tube.n_monocytes,
                        f"{r.ferritin_ng_ml:.2f}", r.expected_phenotype])
    truth_json = out / "truth.json"
    record = {
        "seed": int(seed),
        "instrument": beads.instrument,
        "profile": profile,
        "beads": {**beads.to_dict(), "path": Path(beads.path).name,
                  "truth_events": _rel(beads.truth_events, out)},
        "samples": [
            {**{k: v for k, v in asdict(r).items() if k != "tube"},
             "tube": {**r.tube.to_dict(), "path": r.file, "truth_events": _rel(r.tube.truth_events, out)}}
            for r in records
        ],
    }
    truth_json.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return worklist, truth_csv, truth_json
