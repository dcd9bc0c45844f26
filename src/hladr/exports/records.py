"""What every export reads: the run record, the per-sample result records, and their fields as exported.

The input of every format is the same pair: the plain per-sample records that
``hladr run`` writes in results.json (``samples[...]``, the dicts of
``SampleResult.to_dict``) and a :class:`RunRecord` (run id, times, the calibration
record). The results store holds the same records; an exporter never sees
where they came from.

:data:`FIELDS` names what a mapping file may send to an eCRF field or item, with
its kind (``text``, ``integer``, ``number``, ``code``, ``date``); :func:`field_value`
gives its value as exported: numbers as plain decimals (no thousands separator, no
exponent, the precision of results.csv), dates as ISO 8601 (``YYYY-MM-DD``), codes
as hladr's labels (a mapping turns them into the eCRF's raw codes; ``ferritin_censor``
is ``exact``, ``>`` or ``<``), ``""`` when there is no value. Everything here is pure: no file is read or written.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from ..events import parse_fcs_date
from ..flags import qc_reasons as flags_qc_reasons
from ..phenotype import LABELS

__all__ = [
    "RunRecord",
    "run_of",
    "FIELDS",
    "CODES",
    "QC_VALUES",
    "CENSOR_VALUES",
    "field_value",
    "ferritin_censor",
    "flag_codes",
    "qc_reasons",
    "plain_number",
    "abc_text",
    "ferritin_ng_ml_text",
    "calibration_date",
    "analysis_date",
]

QC_VALUES: tuple[str, ...] = ("pass", "warn", "fail")
# the ferritin_censor field: "exact", or ">" / "<" for a bound (the only censoring parse_ferritin accepts);
# no value when there is no ferritin
CENSOR_VALUES: tuple[str, ...] = ("exact", ">", "<")


@dataclass(frozen=True)
class RunRecord:
    """One run as an export needs it: its id, times, software version and calibration record.

    ``calibration`` is the calibration record of calibration.json (fit, lot,
    acquisition settings, the bead file's SHA-256). ``source`` says where the
    records were read (an output folder, or the results store), for messages.
    ``runs``: for an export of results from several runs (``--since``), each run
    by its id; a sample then names its own in ``run_id`` (:func:`run_of`), and this
    record stands for the export as a whole.
    """

    run_id: str
    hladr_version: str
    started_utc: str
    finished_utc: str
    calibration: Mapping = field(default_factory=dict)
    source: str = ""
    runs: Mapping[str, RunRecord] = field(default_factory=dict)


def run_of(sample: Mapping, run: RunRecord) -> RunRecord:
    """The run a sample was analysed in: its own (``sample["run_id"]`` in ``run.runs``), else ``run``."""
    own = sample.get("run_id")
    return run.runs.get(own, run) if run.runs and isinstance(own, str) else run


# The fields a mapping file may export: name -> kind. Units are in the names (ng/mL, AB/C).
FIELDS: dict[str, str] = {
    "sample_id": "text",
    "subject_id": "text",
    "visit": "text",
    "file": "text",
    "monocyte_count": "integer",
    "hladr_abc": "number",
    "hladr_abc_geomean": "number",
    "ferritin_ng_ml": "number",
    "ferritin_text": "text",
    "ferritin_unit": "text",
    "ferritin_censor": "code",
    "phenotype": "code",
    "qc": "code",
    "flags": "text",
    "qc_reasons": "text",
    "sha256": "text",
    "calibration_id": "text",
    "ruleset": "text",
    "software_version": "text",
    "run_id": "text",
    "analysis_date": "date",
    "calibration_date": "date",
}

# The values a coded field can take: a mapping must give the eCRF's code for each one.
CODES: dict[str, tuple[str, ...]] = {
    "phenotype": LABELS,
    "qc": QC_VALUES,
    "ferritin_censor": CENSOR_VALUES,
}


def plain_number(x: float, *, decimals: int | None = None, significant: int | None = None) -> str:
    """A number as a plain decimal: no thousands separator, no exponent (``1e+06`` -> ``1000000``).

    ``decimals``: rounded to that many places (``f"{x:.{decimals}f}"``); else
    ``significant``: that many significant digits, as ``f"{x:.{significant}g}"``
    would give them; else the shortest text that reads back as ``x``.
    A negative number stays a negative number (``-2.5``): it is not text.
    """
    if decimals is not None:
        return f"{x:.{decimals}f}"
    text = f"{x:.{significant}g}" if significant is not None else repr(float(x))
    out = format(Decimal(text), "f")
    if "." in out:
        out = out.rstrip("0").rstrip(".")
    return out


def abc_text(x: float | None) -> str:
    """AB/C as results.csv writes it: a whole number (``""`` when not measurable)."""
    return "" if x is None else plain_number(x, decimals=0)


def ferritin_ng_ml_text(x: float | None) -> str:
    """Ferritin in ng/mL as results.csv writes it (six significant digits), never in exponent form."""
    return "" if x is None else plain_number(x, significant=6)


def ferritin_censor(sample: Mapping) -> str:
    """``">"`` or ``"<"`` for a censored ferritin, ``""`` for an exact one or none.

    The record keeps the text as it arrived (``ferritin_text``, e.g. ``" >10000"``)
    and the bound in ng/mL; a text with a value (``ferritin_ng_ml`` set) was accepted
    by :func:`hladr.phenotype.parse_ferritin`, which censors with ``>`` and ``<`` only,
    written first.
    """
    if sample.get("ferritin_ng_ml") is None:
        return ""
    head = str(sample.get("ferritin_text") or "").strip()[:1]
    return head if head in (">", "<") else ""


def flag_codes(sample: Mapping) -> str:
    """The ``flags`` cell of results.csv: the code of every flag, ``;``-separated (info ones too)."""
    return ";".join(str(f.get("code", "")) for f in sample.get("flags") or ())


def qc_reasons(sample: Mapping) -> str:
    """The ``qc_reasons`` cell of results.csv: the messages of the flags that made the qc (fail or warn)."""
    return flags_qc_reasons((str(f.get("severity", "")), str(f.get("message", "")))
                            for f in sample.get("flags") or ())


def calibration_date(run: RunRecord) -> _dt.date | None:
    """The day the bead tube was acquired ($DATE of the bead file, which every sample is held to)."""
    settings = run.calibration.get("settings") or {}
    return parse_fcs_date(settings.get("date")) if isinstance(settings, Mapping) else None


def analysis_date(run: RunRecord) -> _dt.date | None:
    """The UTC day the run was analysed (its start)."""
    try:
        return _dt.datetime.fromisoformat(run.started_utc).date()
    except (TypeError, ValueError):
        return None


def _text(x: object) -> str:
    return "" if x is None else str(x)


def field_value(sample: Mapping, run: RunRecord, name: str) -> str:
    """The value of field ``name`` (a key of :data:`FIELDS`) for one sample, as exported; ``""`` for none."""
    if name == "monocyte_count":
        n = sample.get("monocyte_count")
        return "" if n is None else str(int(n))
    if name in ("hladr_abc", "hladr_abc_geomean"):
        return abc_text(sample.get(name))
    if name == "ferritin_ng_ml":
        return ferritin_ng_ml_text(sample.get("ferritin_ng_ml"))
    if name == "ferritin_censor":
        if sample.get("ferritin_ng_ml") is None:
            return ""
        return ferritin_censor(sample) or "exact"
    if name == "flags":
        return flag_codes(sample)
    if name == "qc_reasons":
        return qc_reasons(sample)
    run = run_of(sample, run)
    if name == "run_id":
        return run.run_id
    if name in ("analysis_date", "calibration_date"):
        day = analysis_date(run) if name == "analysis_date" else calibration_date(run)
        return "" if day is None else day.isoformat()
    if name in FIELDS:
        return _text(sample.get(name))
    raise KeyError(name)
