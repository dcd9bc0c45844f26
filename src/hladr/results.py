"""What one tube's analysis takes and gives: its input, configuration and result.

Plain frozen records with no behaviour beyond serialising themselves, so that a result can be
computed in another process or on another machine and be stored, reported and exported as is.
A result's flags are :class:`hladr.flags.Flag` records, each code defined in :data:`hladr.flags.FLAGS`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

from . import __version__
from .flags import Flag
from .rules import DEFAULT_RULESET, RuleSet, load_rules

__all__ = ["RunConfig", "SampleInput", "SampleResult"]


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
    # the tube's acquisition settings from its keywords (instrument, serial, $DATE, $PnV and $PnG per
    # channel): provenance kept by the results store beside the file's SHA-256
    acquisition: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The result as plain values (a deep copy), its figure data as it is: that is read, never
        changed, and copying its grids (tens of thousands of numbers) cost ~20 ms a call."""
        d = asdict(replace(self, figure={}))
        d["figure"] = self.figure
        d["flags"] = [asdict(f) for f in self.flags]
        d["extra"] = dict(self.extra)
        d["phenotype_reasons"] = list(self.phenotype_reasons)
        return d
