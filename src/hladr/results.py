"""What one tube's analysis takes and gives: its input, configuration, flags and result.

Plain frozen records with no behaviour beyond serialising themselves, so that a result can be
computed in another process or on another machine and be stored, reported and exported as is.
The flag tables give each code of the automated gate and of quantification its message and
severity (``info`` is recorded in results.json only; ``warn`` makes the tube's qc warn).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from . import __version__
from .rules import DEFAULT_RULESET, RuleSet, load_rules

__all__ = ["Flag", "RunConfig", "SampleInput", "SampleResult", "GATE_FLAGS", "QUANT_FLAG_TEXT"]


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


# The automated gate's flags: (message, severity). "info" is recorded in results.json only;
# "warn" makes the tube's qc warn. Doublets that are not excluded (no FSC-H/FSC-W, so no
# singlet gate, SPEC.md section 4 step 2) may carry a second cell's HLA-DR: warn.
GATE_FLAGS = {
    "gated_without_cd45": ("no CD45 channel: monocytes gated on CD14/SSC only", "info"),
    "no_debris_valley": ("no debris valley on FSC: only off-scale events removed", "info"),
    "no_cd45_valley": ("no CD45-negative population: CD45 gate keeps all singlets", "info"),
    "no_singlet_channel": ("no FSC-H/FSC-W channel: doublets not excluded (no singlet gate)", "warn"),
    "fsc_height_only": ("only FSC-H available: used as forward scatter", "info"),
    "gated_after_debris_refit": ("the first mixture's gate failed; a second fit without the debris passed "
                                 "every check", "info"),
}


QUANT_FLAG_TEXT = {
    "extrapolated_below_low_bead": "median PE below the low bead: value extrapolated",
    "extrapolated_above_high_bead": "median PE above the highest bead used: value extrapolated",
    "hladr_not_measurable": "monocyte PE not positive: HLA-DR not measurable",
}
