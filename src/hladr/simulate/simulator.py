"""Synthetic daily runs with ground truth: one QuantiBRITE PE bead tube + patient tubes.

Calling contract: :func:`simulate_run` writes a whole run (``beads.fcs``,
``P001_HLADR.fcs``, ..., ``worklist.csv``, ``truth.csv``, ``truth.json``,
``truth_events/*.npz``) and returns what it wrote. No global random state: the
same seed gives byte-identical files.

This module is the simulator's public face; its parts, re-exported here, are
:mod:`hladr.simulate.tube_events` (a tube's events and their per-event truth, and
the model they follow), :mod:`hladr.simulate.tube_files` (one tube written as an
FCS file, with its truth record), :mod:`hladr.simulate.patients` (the run's patients
and their expected call), :mod:`hladr.simulate.blood_profiles` and
:mod:`hladr.simulate.blood_events` (the blood pictures) and
:mod:`hladr.simulate.instruments` (instrument conventions and the PE response).
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..beads.lots import find_lot
from ..errors import ConfigError
from ..rules import load_rules
from . import blood_profiles as bp
from ._truth_events import read_truth_events
from .blood_profiles import PROFILE_NAMES, SCENARIOS
from .instruments import INSTRUMENTS, InstrumentProfile, PEResponse, get_instrument
from .patients import draw_patients, expected_phenotype
from .tube_events import EVENT_LABELS, BloodFeatures, TubeEvents, simulate_bead_events, simulate_sample_events
from .tube_files import BeadTubeTruth, SampleTubeTruth, simulate_bead_tube, simulate_sample_tube

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
    patients = draw_patients(run_rng, n_samples, rules, run_profile=profile,
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
