"""Exports of a run's results for a trial's eCRF: ``csv``, ``redcap``, ``odm``, ``fhir``.

One module per format, each a pure function of the same input, the plain per-sample
records of results.json and the :class:`~hladr.exports.records.RunRecord`
(``to_csv``, ``to_redcap``, ``to_odm``, ``to_fhir``); ``mapping`` reads the mapping
files of ``redcap`` and ``odm``; ``command.export_run`` reads a run, builds one format
and writes one file. Heavy libraries (lxml, the FHIR models) are imported inside the
functions that use them.
"""

from __future__ import annotations

from .command import FORMATS, build_export, export_run, read_run_folder
from .csv_file import to_csv
from .fhir_bundle import to_fhir
from .mapping import OdmMapping, RedcapMapping, load_mapping, parse_mapping
from .odm import to_odm
from .records import FIELDS, RunRecord
from .redcap import to_redcap

__all__ = [
    "FORMATS",
    "FIELDS",
    "RunRecord",
    "RedcapMapping",
    "OdmMapping",
    "build_export",
    "export_run",
    "read_run_folder",
    "load_mapping",
    "parse_mapping",
    "to_csv",
    "to_redcap",
    "to_odm",
    "to_fhir",
]
