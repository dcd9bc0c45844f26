"""What a report is drawn from: plain records only, the same for a run and for a re-render.

A run's report and ``hladr report OUT_DIR`` draw from the same :class:`ReportRun`: the
samples' results.json records, the calibration.json record, the run's notes and facts, and the
figure data kept in ``OUT_DIR/figures.json`` (density grids of each gating step, AB/C and bead
histograms, each tube's acquisition keywords). So re-rendering gives the same report without the
tubes and without re-analysis.
"""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..safe_text import printable

__all__ = ["ReportRun", "ReportSample", "FIGURES_FILE", "FIGURES_FORMAT", "figures_document", "read_output"]

FIGURES_FILE = "figures.json"
FIGURES_FORMAT = 1


@dataclass(frozen=True)
class ReportSample:
    """One sample: its results.json record, figure data and acquisition keywords."""

    record: dict
    figure: dict = field(default_factory=dict)
    acquisition: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ReportRun:
    """Everything a report shows, as plain records."""

    run_id: str
    samples: tuple[ReportSample, ...]
    calibration: dict  # the calibration.json record
    bead_figure: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    facts: dict = field(default_factory=dict)  # run_dir, started/finished, versions, analysed by


# --------------------------------------------------------------------------- figures.json
_GRIDS = ("density", "kept")


def _encode(obj, key: str = ""):
    """The count grids (``density``, ``kept``) as ``{"u32": base64(zlib(little-endian uint32)), "shape": [...]}``:
    a 64 x 64 grid is ~1 kB, not 20."""
    if key in _GRIDS and obj is not None:
        obj = np.asarray(obj)
    if isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj, dtype="<u4")
        return {"u32": base64.b64encode(zlib.compress(a.tobytes(), 6)).decode("ascii"), "shape": list(a.shape)}
    if isinstance(obj, dict):
        return {k: _encode(v, k) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_encode(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _decode(obj):
    if isinstance(obj, dict):
        if set(obj) == {"u32", "shape"}:
            raw = zlib.decompress(base64.b64decode(obj["u32"]))
            return np.frombuffer(raw, dtype="<u4").reshape(obj["shape"])
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj


def figures_document(run: ReportRun) -> dict:
    """The ``figures.json`` record of a run: what the report needs beyond results.json and calibration.json."""
    return {
        "run_id": run.run_id,
        "format": FIGURES_FORMAT,
        "facts": run.facts,
        "bead_figure": _encode(run.bead_figure),
        "samples": [{"sample_id": s.record.get("sample_id"), "file": s.record.get("file"),
                     "figure": _encode(s.figure), "acquisition": s.acquisition} for s in run.samples],
    }


def _read_json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{printable(path)}: not found; is this the output folder of an hladr run?") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{printable(path)}: cannot be read ({exc})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{printable(path)}: not an hladr output record")
    return doc


def read_output(out_dir: str | Path) -> tuple[ReportRun, list[str]]:
    """The report of an output folder, from its results.json, calibration.json and figures.json.

    Returns the run and what could not be shown (an output without figures.json, written by an
    older hladr, is drawn without figures; figures of another run are refused).
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise ConfigError(f"{printable(out)}: output folder not found")
    results = _read_json(out / "results.json")
    run_id = results.get("run_id")
    samples = results.get("samples")
    if not isinstance(samples, list) or not all(isinstance(s, dict) for s in samples):
        raise ConfigError(f"{printable(out / 'results.json')}: no sample records")
    calibration = results.get("calibration") if isinstance(results.get("calibration"), dict) else {}
    missing: list[str] = []
    figs: dict = {}
    if (out / FIGURES_FILE).is_file():
        figs = _read_json(out / FIGURES_FILE)
        if figs.get("run_id") != run_id:
            raise ConfigError(f"{printable(out / FIGURES_FILE)}: of run {printable(figs.get('run_id'))}, not of "
                              f"results.json's run {printable(run_id)}; the folder mixes two runs")
        if figs.get("format") != FIGURES_FORMAT:
            raise ConfigError(f"{printable(out / FIGURES_FILE)}: format {printable(figs.get('format'))} is not "
                              f"{FIGURES_FORMAT}; re-run the analysis with this hladr")
    else:
        missing.append(f"{FIGURES_FILE} not in {printable(out)}: the report is drawn without figures")
    fig_samples = figs.get("samples") or []
    if fig_samples and len(fig_samples) != len(samples):
        raise ConfigError(f"{printable(out / FIGURES_FILE)}: {len(fig_samples)} samples, results.json "
                          f"{len(samples)}; the folder mixes two runs")
    out_samples = []
    for k, rec in enumerate(samples):
        f = fig_samples[k] if fig_samples else {}
        if f and (f.get("sample_id"), f.get("file")) != (rec.get("sample_id"), rec.get("file")):
            raise ConfigError(f"{printable(out / FIGURES_FILE)}: sample {k + 1} is {printable(f.get('sample_id'))}, "
                              f"results.json's {printable(rec.get('sample_id'))}")
        out_samples.append(ReportSample(record=rec, figure=_decode(f.get("figure") or {}),
                                        acquisition=f.get("acquisition") or {}))
    facts = dict(figs.get("facts") or {})
    for key in ("run_dir", "started_utc", "finished_utc", "hladr_version"):
        if key in results:
            facts[key] = results[key]
    return ReportRun(run_id=str(run_id or ""), samples=tuple(out_samples), calibration=calibration,
                     bead_figure=_decode(figs.get("bead_figure") or {}), notes=tuple(results.get("notes") or ()),
                     facts=facts), missing
