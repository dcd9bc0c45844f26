"""``--format redcap``: a flat CSV for REDCap's data import, driven by a field-mapping file.

One row per sample tube: the record id (the project's record id field, filled from
the hladr field the mapping names, usually ``subject_id``), ``redcap_event_name``
(longitudinal projects: the unique event name of the sample's visit), then the
mapped variables in the mapping's order. Values are what REDCap's import expects:

- coded fields (``phenotype``, ``qc``, ``ferritin_censor``) as the project's raw codes;
- numbers as plain decimals with a point, no thousands separator, no exponent;
- dates as ISO 8601 (``YYYY-MM-DD``, REDCap's ``date_ymd``);
- empty when there is no value (REDCap's import then leaves the field as it was).

Refused, with one line naming the sample: a sample without a record id, a visit the
mapping has no event for, a record id REDCap cannot hold, and two samples landing on
the same record and event (the import would keep one and silently drop the other).
Text values go through :func:`hladr.safe_text.csv_cell` like every CSV hladr writes
(a text beginning with ``=``, ``+``, ``-``, ``@``, tab or CR gets a leading ``'``).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence

from ..errors import ConfigError
from ..safe_text import csv_cell
from .mapping import RedcapMapping
from .records import CODES, FIELDS, RunRecord, field_value

__all__ = ["EVENT_COLUMN", "to_redcap"]

EVENT_COLUMN = "redcap_event_name"
# a record name REDCap accepts on import: letters, digits, '_', '-', '.', not starting with a formula sign
_RECORD_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}")


def _cell(sample: Mapping, run: RunRecord, name: str, mapping: RedcapMapping) -> str:
    value = field_value(sample, run, name)
    if name in CODES and value != "":
        try:
            return mapping.codes[name][value]
        except KeyError:
            raise ConfigError(f"sample {sample.get('sample_id')!r}: {name} {value!r} has no code in "
                              f"{mapping.source}") from None
    return csv_cell(value) if FIELDS[name] == "text" else value


def to_redcap(samples: Sequence[Mapping], run: RunRecord, mapping: RedcapMapping) -> str:
    """The import CSV text (UTF-8, ``\\n`` line ends), one row per sample."""
    header = [mapping.record_id_field] + ([EVENT_COLUMN] if mapping.events is not None else [])
    header += [var for _, var in mapping.fields]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    seen: dict[tuple[str, str], str] = {}
    for s in samples:
        sid = s.get("sample_id")
        record = field_value(s, run, mapping.record_id)
        if not record:
            raise ConfigError(f"sample {sid!r}: no {mapping.record_id}, so no REDCap record to put it in")
        if not _RECORD_ID.fullmatch(record):
            raise ConfigError(f"sample {sid!r}: {mapping.record_id} {record!r} is not a REDCap record name "
                              "(letters, digits, '_', '-', '.'); correct it in the worklist")
        row = [record]
        event = ""
        if mapping.events is not None:
            visit = field_value(s, run, "visit")
            if visit not in mapping.events:
                raise ConfigError(f"sample {sid!r}: visit {visit!r} has no event in {mapping.source} "
                                  f"[redcap.events] (it has {', '.join(map(repr, mapping.events))})")
            event = mapping.events[visit]
            row.append(event)
        if (record, event) in seen:
            where = f"record {record!r}" + (f" event {event!r}" if event else "")
            raise ConfigError(f"samples {seen[(record, event)]!r} and {sid!r} both go to {where}: the import "
                              "would keep only one; export them separately")
        seen[(record, event)] = str(sid)
        row += [_cell(s, run, name, mapping) for name, _ in mapping.fields]
        w.writerow(row)
    return buf.getvalue()
