"""``--format odm``: a CDISC ODM 1.3.2 ClinicalData snapshot, checked against the ODM 1.3.2 schema.

The OIDs come from a mapping file (:class:`~hladr.exports.mapping.OdmMapping`): they
belong to the sponsor's study metadata, which the receiving system holds. The file::

    ODM  FileType="Snapshot" ODMVersion="1.3.2" FileOID="hladr.<run id>" SourceSystem="hladr" ...
      ClinicalData  StudyOID, MetaDataVersionOID
        SubjectData  SubjectKey = subject_id          (subjects in the order of the run)
          StudyEventData  StudyEventOID = the visit's event
            FormData  FormOID
              ItemGroupData  ItemGroupOID
                ItemData  ItemOID, Value              (one per mapped field that has a value)

Values: numbers as plain decimals, dates ISO 8601, coded fields as the CodeList's
CodedValue, text exactly as in results.json (the XML library escapes it). A field
without a value (no AB/C for a failed tube) has no ItemData: a snapshot holds what
there is, and the ``qc`` and ``phenotype`` items say why.

The document is built with lxml (never by string concatenation) and validated
against ``ODM1-3-2.xsd`` as shipped by ``odmlib`` before anything is written; a
document that fails is an error, not a file. Refused with one line naming the
sample: no subject id, a visit the mapping has no event for, two samples for one
subject and visit (the item group would hold two values at once), and text XML 1.0
cannot carry (control characters).
"""

from __future__ import annotations

import datetime as _dt
import functools
from collections.abc import Mapping, Sequence

from ..errors import ConfigError
from .mapping import OdmMapping
from .records import CODES, RunRecord, field_value

__all__ = ["ODM_NS", "ODM_VERSION", "odm_schema_path", "to_odm", "validate_odm"]

ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
ODM_VERSION = "1.3.2"


def odm_schema_path() -> str:
    """Path of the ODM 1.3.2 XML schema (``ODM1-3-2.xsd``) shipped by the ``odmlib`` package."""
    from odmlib.schema_manager import get_schema_path  # optional dependency: only the ODM export needs it

    return get_schema_path("odm", ODM_VERSION)


@functools.lru_cache(maxsize=1)
def _schema():
    from lxml import etree  # heavy: only the ODM export parses XML

    return etree.XMLSchema(etree.parse(odm_schema_path()))


def validate_odm(xml: bytes) -> None:
    """Raise :class:`~hladr.errors.ConfigError` unless ``xml`` is valid ODM 1.3.2 (first error, one line)."""
    from lxml import etree  # heavy: only the ODM export parses XML

    schema = _schema()
    try:
        doc = etree.fromstring(xml)
    except etree.XMLSyntaxError as exc:
        raise ConfigError(f"the ODM document is not well-formed XML: {exc}") from None
    if not schema.validate(doc):
        err = schema.error_log.filter_from_errors()[0] if schema.error_log.filter_from_errors() else None
        where = f"line {err.line}: {err.message}" if err is not None else "unknown error"
        raise ConfigError(f"the ODM document does not follow the ODM {ODM_VERSION} schema ({where})")


def _datetime(text: str) -> str | None:
    """An ISO 8601 date-time with its zone, as ODM wants it; None when ``text`` is not one."""
    try:
        t = _dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return t.isoformat() if t.tzinfo is not None else None


def _value(sample: Mapping, run: RunRecord, name: str, mapping: OdmMapping) -> str:
    value = field_value(sample, run, name)
    if name in CODES and value != "":
        try:
            return mapping.codes[name][value]
        except KeyError:
            raise ConfigError(f"sample {sample.get('sample_id')!r}: {name} {value!r} has no CodedValue in "
                              f"{mapping.source}") from None
    return value


def _group(samples: Sequence[Mapping], run: RunRecord, mapping: OdmMapping) -> dict[str, dict[str, Mapping]]:
    """subject -> visit -> sample, in the run's order; refuses what a snapshot cannot hold."""
    out: dict[str, dict[str, Mapping]] = {}
    for s in samples:
        sid = s.get("sample_id")
        subject = field_value(s, run, "subject_id")
        visit = field_value(s, run, "visit")
        if not subject:
            raise ConfigError(f"sample {sid!r}: no subject_id, so no SubjectKey to put it under")
        if visit not in mapping.events:
            raise ConfigError(f"sample {sid!r}: visit {visit!r} has no StudyEventOID in {mapping.source} "
                              f"[odm.events] (it has {', '.join(map(repr, mapping.events))})")
        visits = out.setdefault(subject, {})
        if visit in visits:
            raise ConfigError(f"samples {visits[visit].get('sample_id')!r} and {sid!r} are both subject "
                              f"{subject!r} visit {visit!r}: one item group cannot hold two results; "
                              "export them separately")
        visits[visit] = s
    return out


def to_odm(samples: Sequence[Mapping], run: RunRecord, mapping: OdmMapping, *, created: _dt.datetime) -> bytes:
    """The ODM document (UTF-8 XML with its declaration), valid against the ODM 1.3.2 schema.

    ``created``: the file's CreationDateTime (an aware date-time; the export's time).
    """
    from lxml import etree  # heavy: only the ODM export builds XML

    if created.tzinfo is None:
        raise ValueError("created must carry its time zone")

    def el(parent, tag: str, **attrib: str):
        return etree.SubElement(parent, f"{{{ODM_NS}}}{tag}", attrib)

    attrib = {
        "Description": f"hladr run {run.run_id}: monocyte HLA-DR (AB/C), ferritin and ImmunoSep phenotype",
        "FileType": "Snapshot",
        "FileOID": f"hladr.{run.run_id}",
        "CreationDateTime": created.isoformat(timespec="seconds"),
        "ODMVersion": ODM_VERSION,
        "Originator": "hladr",
        "SourceSystem": "hladr",
        "SourceSystemVersion": run.hladr_version,
    }
    as_of = _datetime(run.finished_utc)
    if as_of is not None:
        attrib["AsOfDateTime"] = as_of
    try:
        root = etree.Element(f"{{{ODM_NS}}}ODM", attrib, nsmap={None: ODM_NS})
        clinical = el(root, "ClinicalData", StudyOID=mapping.study_oid, MetaDataVersionOID=mapping.metadata_version_oid)
        for subject, visits in _group(samples, run, mapping).items():
            subject_el = el(clinical, "SubjectData", SubjectKey=subject)
            for visit, s in visits.items():
                event = el(subject_el, "StudyEventData", StudyEventOID=mapping.events[visit])
                form = el(event, "FormData", FormOID=mapping.form_oid)
                group = el(form, "ItemGroupData", ItemGroupOID=mapping.item_group_oid)
                for name, oid in mapping.items:
                    value = _value(s, run, name, mapping)
                    if value != "":
                        el(group, "ItemData", ItemOID=oid, Value=value)
    except ValueError as exc:  # lxml: "All strings must be XML compatible" (control characters)
        raise ConfigError(f"a value cannot be written in XML 1.0: {exc}") from None
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    validate_odm(xml)
    return xml
