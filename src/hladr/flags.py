"""Every flag a result can carry: its code, severity and message, in one versioned table.

A flag is the output contract of a tube's analysis: its ``code`` is what results.csv, the
eCRF import and the report key on; its ``severity`` decides the tube's qc (``info`` is
recorded and shown but changes no qc, ``warn`` makes qc warn, ``fail`` makes it fail and
withholds the HLA-DR value); its ``message`` is the one line a reviewer reads. Every flag's
code is in results.csv's ``flags`` and the terminal table, whatever its severity; its message
and severity in results.json. :data:`FLAGS` defines them all, and code emits a flag only
through :func:`flag` (a code not in the table is a ``KeyError``), or for a caught exception
through :func:`error_flag`, whose code comes from
:data:`ERROR_CODES`, not from the exception's class name: renaming a class changes no output.

The table is a module of its own, not part of the rule table (``data/rules/``) nor of
:mod:`hladr.results`: the rule table holds the numbers a lab may revise (a rule-set version),
and the messages quote them as fields (``{limit}``); the codes and texts are the software's
contract with what reads its outputs, so they change only with the code and are versioned
here (:data:`FLAGS_VERSION`); and a table at the bottom of the imports (beside
:mod:`hladr.errors`) can be read by every stage and by the checks across tubes
(:mod:`hladr.batch.checks`) alike. ``tests/test_flags.py`` lists the contract and checks that
every code the code base can emit is in the table.

Stages that only *find* something (the gate, the channel finder, quantification) return
plain codes (``gate.flags``, ``gate.code``, ``summary.flags``); :mod:`hladr.pipeline` turns
them into flags here.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .errors import (
    CalibrationError,
    ChannelError,
    CompensationError,
    ConfigError,
    GateError,
    HladrError,
    LotError,
    ReadError,
    StoreBusyError,
    StoreError,
)

__all__ = ["FLAGS_VERSION", "SEVERITIES", "Flag", "FlagSpec", "FLAGS", "ERROR_CODES", "flag", "error_flag", "qc_of",
           "qc_reasons", "hladr_not_measured_why"]

# Bump on any change of a code, a severity or a message below (tests/test_flags.py pins them).
FLAGS_VERSION = 2  # 2: ferritin_missing

SEVERITIES = ("info", "warn", "fail")


@dataclass(frozen=True)
class Flag:
    """A machine-readable code with its human message; severity info, warn or fail."""

    code: str
    message: str
    severity: str = "warn"


@dataclass(frozen=True)
class FlagSpec:
    """A code's severity and message template (``str.format`` fields, given to :func:`flag`)."""

    severity: str
    message: str

    @property
    def fields(self) -> frozenset[str]:
        """The names the message template needs."""
        return frozenset(name for _, name, _, _ in string.Formatter().parse(self.message) if name)


def _table(**specs: tuple[str, str]) -> Mapping[str, FlagSpec]:
    return MappingProxyType({code: FlagSpec(severity, message) for code, (severity, message) in specs.items()})


_GATING_FAILED = ("fail", "gating failed: {reason}")  # the gate's self-check names what failed
_ERROR = ("fail", "{error}")  # bad input: the exception's one-line message

# code -> (severity, message), in the order of the data's path
FLAGS: Mapping[str, FlagSpec] = _table(
    # reading the tube (and the exceptions of any stage, see ERROR_CODES)
    read_repaired=("warn", "{file}: read by a fallback or with repaired offsets ({quirks}); review the file"),
    unreadable=_ERROR,
    missing_channel=_ERROR,
    compensation=_ERROR,
    gate=_ERROR,
    calibration=_ERROR,
    lot=_ERROR,
    config=_ERROR,
    store=_ERROR,
    storebusy=_ERROR,
    hladr=_ERROR,
    # the run's bead calibration, and the sample held to its acquisition settings
    no_calibration=("fail", "no accepted bead calibration for this run"),
    calibration_rejected=("fail", "the run's bead calibration was rejected"),
    calibration_read_repaired=("warn", "the bead tube was read by a fallback or with repaired offsets; review it"),
    lot_expired=("warn", "bead lot {lot} was past its expiry date"),
    settings_mismatch=("fail", "settings_mismatch: {difference} (beads vs sample)"),
    # the automated gate: how it gated. Doublets that are not excluded (no FSC-H/FSC-W, so no
    # singlet gate, SPEC.md section 4 step 2) may carry a second cell's HLA-DR: warn
    gated_without_cd45=("info", "no CD45 channel: monocytes gated on CD14/SSC only"),
    no_singlet_channel=("warn", "no FSC-H/FSC-W channel: doublets not excluded (no singlet gate)"),
    fsc_height_only=("info", "only FSC-H available: used as forward scatter"),
    gated_after_debris_refit=("info", "the first mixture's gate failed; a second fit without the debris passed "
                                      "every check"),
    # the automated gate failed (gating/automated.py, gating/check.py)
    too_few_events=_GATING_FAILED,
    no_cells=_GATING_FAILED,
    no_singlets=_GATING_FAILED,
    monocytes_not_identified=_GATING_FAILED,
    monocytes_implausible=_GATING_FAILED,
    monocytes_not_separated=_GATING_FAILED,
    monocytes_hladr_negative=_GATING_FAILED,
    gates_disagree=_GATING_FAILED,
    # the monocytes counted (limits from the rule table)
    monocytes_too_few=("fail", "{n} monocytes < {limit}"),
    monocytes_low=("warn", "{n} monocytes < {limit}"),
    # quantification
    extrapolated_below_low_bead=("warn", "median PE below the low bead: value extrapolated"),
    extrapolated_above_high_bead=("warn", "median PE above the highest bead used: value extrapolated"),
    hladr_not_measurable=("warn", "monocyte PE not positive: HLA-DR not measurable"),
    # the worklist's ferritin: an unusable text warns; no ferritin at all leaves HLA-DR valid (info) but the call
    # cannot be made (MALS cannot be excluded)
    ferritin_unusable=("warn", "{problem}"),
    ferritin_missing=("info", "no ferritin for this sample: phenotype indeterminate (HLA-DR is valid)"),
    # checks across the run's tubes (batch/checks.py)
    duplicate_sample_id=("warn", "sample id shared by {n} tubes ({files}): review before import"),
    duplicate_file_content=("fail", "the same file content (SHA-256 {sha}) as {others}, listed for another sample: "
                                    "the data cannot belong to both, so no HLA-DR value is reported; check which "
                                    "tube is which"),
    duplicate_file_content_same_sample=("warn", "the same file content (SHA-256 {sha}) as {others}, under the same "
                                                "sample: counted twice"),
)

# The code of a caught exception, by its class (the first of its classes listed, most derived first).
ERROR_CODES: Mapping[type[HladrError], str] = MappingProxyType({
    ReadError: "unreadable",
    ChannelError: "missing_channel",
    CompensationError: "compensation",
    GateError: "gate",
    CalibrationError: "calibration",
    LotError: "lot",
    ConfigError: "config",
    StoreBusyError: "storebusy",
    StoreError: "store",
    HladrError: "hladr",
})


def flag(code: str, **fields: object) -> Flag:
    """The flag ``code`` of :data:`FLAGS`, its message filled with ``fields``.

    Raises
    ------
    KeyError
        ``code`` is not in the table.
    TypeError
        ``fields`` are not exactly the names the message needs.
    """
    spec = FLAGS[code]
    if set(fields) != spec.fields:
        raise TypeError(f"flag {code!r} takes the fields {sorted(spec.fields)}, not {sorted(fields)}")
    return Flag(code, spec.message.format(**fields), spec.severity)


def error_flag(exc: HladrError) -> Flag:
    """The flag of an exception caught while analysing a tube (its message is the exception's)."""
    code = next(ERROR_CODES[c] for c in type(exc).__mro__ if c in ERROR_CODES)
    return flag(code, error=str(exc))


def qc_of(severities: Iterable[str]) -> str:
    """A tube's qc from its flags' severities: ``fail`` if one fails, else ``warn`` if one warns, else ``pass``."""
    severities = set(severities)
    return "fail" if "fail" in severities else "warn" if "warn" in severities else "pass"


def qc_reasons(flags: Iterable[tuple[str, str]]) -> str:
    """Why a tube's qc is what it is: the messages of the flags whose severity made it, ``" | "``-joined.

    ``flags`` are (severity, message) pairs (a :class:`Flag`'s, or a stored record's): the ``fail``
    messages of a failed tube, the ``warn`` messages of a warned one, ``""`` for a pass. results.csv
    (``qc_reasons``), the terminal table and the exports all say it this way.
    """
    flags = list(flags)
    qc = qc_of(severity for severity, _ in flags)
    return " | ".join(message for severity, message in flags if severity == qc and qc != "pass")


def hladr_not_measured_why(flags: Iterable[tuple[str, str, str]]) -> str:
    """Why a tube has no HLA-DR value, for its phenotype reasons (``HLA-DR not measured (<why>)``).

    ``flags`` are (code, severity, message) triples: the messages of the ``fail`` flags, ``"; "``-joined;
    without one, the message of ``hladr_not_measurable`` (monocyte PE not positive); else ``""``.
    """
    flags = list(flags)
    found = [message for _, severity, message in flags if severity == "fail"]
    found = found or [message for code, _, message in flags if code == "hladr_not_measurable"]
    return "; ".join(found)
