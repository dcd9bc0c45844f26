"""``--format csv``: the results.csv table plus the ferritin as it was reported.

results.csv writes ferritin as a number in ng/mL, so a censored value loses its
sign there (``>10000`` becomes ``10000``, ``<20`` becomes ``20``). This export is
results.csv's columns, in results.csv's order and written by the same function
(:func:`hladr.batch.outputs.results_csv`, so the two cannot drift apart), then:

- ``ferritin_text``: the text as reported (``>10000``, ``18390``);
- ``ferritin_unit``: its unit as reported (``ng/mL``, ``pmol/L``; ``ferritin_ng_ml`` is converted);
- ``ferritin_censor``: ``>`` or ``<`` when the value is a bound, empty when it is exact.

UTF-8, one header row, ``\\n`` line ends. Spreadsheet safety as in results.csv
(:func:`hladr.safe_text.csv_cell`, OWASP): a text cell beginning with ``=``, ``+``,
``-``, ``@``, tab or CR gets a leading ``'`` and control characters show as ``?``;
numbers hladr formats are written as plain numbers, a negative one included.
(Not named ``csv.py``: it would shadow the standard library's module for a script
run from this folder.)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

from ..batch.outputs import results_csv
from ..errors import ConfigError
from ..results import SampleResult
from ..safe_text import csv_cell
from .records import RunRecord, ferritin_censor, run_of

__all__ = ["FERRITIN_COLUMNS", "to_csv"]

FERRITIN_COLUMNS = ("ferritin_text", "ferritin_unit", "ferritin_censor")
_RESULT_FIELDS = {f.name for f in fields(SampleResult)}


@dataclass(frozen=True)
class _StoredFlag:
    """A flag as results.json recorded it: what ``results_csv`` reads of a flag (code, message, severity).

    Not a :class:`hladr.flags.Flag`: flags are made only from the table in ``hladr.flags``
    (``tests/test_flags.py`` holds the code base to it); these were made there when the run
    was analysed and are only being written out again.
    """

    code: str
    message: str
    severity: str


def _sample_result(rec: Mapping) -> SampleResult:
    """A results.json sample record back as the ``SampleResult`` it was written from."""
    kw = {k: v for k, v in rec.items() if k in _RESULT_FIELDS}
    kw["flags"] = tuple(_StoredFlag(str(f.get("code", "")), str(f.get("message", "")), str(f.get("severity", "")))
                        for f in rec.get("flags") or ())
    kw["phenotype_reasons"] = tuple(rec.get("phenotype_reasons") or ())
    kw["extra"] = tuple((str(k), "" if v is None else str(v)) for k, v in (rec.get("extra") or {}).items())
    try:
        return SampleResult(**kw)
    except TypeError as exc:  # a field SampleResult requires is missing from the record
        raise ConfigError(f"sample record {rec.get('sample_id')!r} is incomplete: {exc}") from None


def to_csv(samples: Sequence[Mapping], run: RunRecord) -> str:
    """The CSV text: results.csv's columns (``run_id`` included), then :data:`FERRITIN_COLUMNS`."""
    results = [_sample_result(s) for s in samples]
    for r in results:
        for name, _ in r.extra:
            if name in FERRITIN_COLUMNS:
                raise ConfigError(f"sample {r.sample_id!r}: the worklist's column {name!r} has the name of a "
                                  "column this export adds; rename it in the worklist (e.g. 'worklist_" + name + "')")
    table = list(csv.reader(io.StringIO(results_csv(results, run_id=run.run_id))))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(table[0] + list(FERRITIN_COLUMNS))
    for row, rec in zip(table[1:], samples, strict=True):
        row[-1] = csv_cell(run_of(rec, run).run_id)  # run_id, the last column: the sample's own run
        w.writerow(row + [csv_cell(rec.get("ferritin_text") or ""), csv_cell(rec.get("ferritin_unit") or ""),
                          ferritin_censor(rec)])
    return buf.getvalue()
