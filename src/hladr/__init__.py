"""hladr: monocyte HLA-DR (AB/C) from FCS files, and the ImmunoSep phenotype call.

The public API (everything else is reached through its module)::

    from hladr import analyze_sample, calibrate_beads, run_folder, read_events
    from hladr import SampleInput, SampleResult, RunConfig, Calibration, HladrError

- ``analyze_sample(SampleInput(path), calibration, RunConfig())`` -> ``SampleResult``: one tube,
  a pure function of (file, calibration, configuration) with its provenance (``hladr.pipeline``);
- ``calibrate_beads(path, lot)`` -> ``Calibration``: a QuantiBRITE bead tube's calibration
  record (``hladr.beads.record``; lots from ``hladr.beads.lots.find_lot``);
- ``run_folder(...)``: the daily run of a folder, as ``hladr run`` (``hladr.batch.daily``);
- ``read_events(path)`` -> ``Events``: an FCS/LMD file, proven or refused (``hladr.fcs.read``);
- the exception types of ``hladr.errors``, each a one-line message for the user.

The names are loaded on first use (PEP 562), so that ``import hladr`` and ``hladr --help`` do
not load Numba and scikit-learn.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_PUBLIC = {
    "analyze_sample": "hladr.pipeline",
    "SampleInput": "hladr.results",
    "SampleResult": "hladr.results",
    "RunConfig": "hladr.results",
    "Calibration": "hladr.beads.record",
    "calibrate_beads": "hladr.beads.record",
    "run_folder": "hladr.batch.daily",
    "read_events": "hladr.fcs.read",
    "Events": "hladr.events",
    "Flag": "hladr.flags",
    "HladrError": "hladr.errors",
    "ReadError": "hladr.errors",
    "ChannelError": "hladr.errors",
    "CompensationError": "hladr.errors",
    "GateError": "hladr.errors",
    "CalibrationError": "hladr.errors",
    "LotError": "hladr.errors",
    "ConfigError": "hladr.errors",
    "StoreError": "hladr.errors",
    "StoreBusyError": "hladr.errors",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    """Load a public name from its module on first use (PEP 562)."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'hladr' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
