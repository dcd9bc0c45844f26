"""The events of one simulated tube, exactly as a file will hold them, with per-event truth.

Calling contract: ``simulate_bead_events`` / ``simulate_sample_events`` take an
explicit ``rng`` and return :class:`TubeEvents` (the exact values a file will
hold, one label and the true PE molecules per event). Nothing is written here:
:mod:`hladr.simulate.tube_files` writes a tube, :mod:`hladr.simulate.simulator`
a whole run. No global random state: the same ``rng`` gives the same events.

Notes
-----
PE response (same for beads and cells on one instrument, voltage and day)::

    MFI(m) = 10**(c0 + c1*log10(m) + c2*(log10(m) - 3.5)**2)

with ``m`` PE molecules (1 PE per antibody), c1 in the profile's range (0.95-1.04),
|c2| <= 0.008 and c0 set so that 65,000 PE land at ``high_bead_fraction`` of
$PnR (+-0.03-0.05 decade day to day); gain ~ voltage**7 for PMTs (CytoFLEX APD:
gain**1). The reference calibration is the least-squares line
``log10(PE per bead) = intercept + slope*log10(MFI)`` through the noise-free
response at the four lot levels
(:class:`hladr.simulate.tube_files.BeadTubeTruth` ``.calibration_slope``).

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
equals ``hladr_abc`` exactly (the truth is what is in the tube).

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
:func:`hladr.simulate.simulator.simulate_run` also writes them to ``truth_events/<file stem>.npz``
(:func:`hladr.simulate.simulator.read_truth_events`). Bead tube: singlets ~88 % in four near-equal
levels, doublets 5-8 %, debris 3-5 %, a few tens of carry-over cells.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..beads.lots import LEVEL_NAMES, Lot
from . import blood_events as be
from . import blood_profiles as bp
from .blood_events import concat_events, doublets, lognormal
from .instruments import Channel, InstrumentProfile, PEResponse, acquire, get_instrument

__all__ = [
    "TubeEvents",
    "simulate_sample_events",
    "simulate_bead_events",
    "BEAD_LABELS",
    "EVENT_LABELS",
    "BloodFeatures",
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
