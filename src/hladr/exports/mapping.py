"""Mapping files: which hladr field goes to which eCRF field or ODM item, with which codes.

A mapping file is TOML (``examples/mappings/redcap.toml``, ``odm.toml``). It belongs to
the trial: the REDCap project's variable and event names, or the OIDs of the sponsor's
study metadata (its define.xml / MetaDataVersion). hladr cannot check them against the
eCRF, so it checks everything it can and refuses the rest: an unknown key (a typo
would silently drop a value), a missing key, a field hladr does not have, a name or
OID a REDCap project or an ODM file cannot hold, a coded field without a code for
each of its values, two fields sent to one place. Every refusal is one line naming
the file and the key (:class:`~hladr.errors.ConfigError`).

``load_mapping(path, fmt) -> RedcapMapping | OdmMapping``; ``parse_mapping(text,
fmt, source=...)`` does the same on text (tests, and a mapping kept in the store).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..safe_text import printable
from .records import CODES, FIELDS

__all__ = ["RedcapMapping", "OdmMapping", "MAPPED_FORMATS", "load_mapping", "parse_mapping"]

MAPPED_FORMATS = ("redcap", "odm")
MAX_MAPPING_BYTES = 1 << 20  # a mapping file is a few kB

# REDCap variable names: lower-case letters, digits and underscores, starting with a letter
_REDCAP_NAME = re.compile(r"[a-z][a-z0-9_]{0,99}")
_REDCAP_EVENT = re.compile(r"[a-z0-9][a-z0-9_]{0,99}")
# raw codes of a REDCap radio/dropdown field: an integer (or decimal), or letters, digits and underscores
_REDCAP_CODE = re.compile(r"-?[0-9]+(\.[0-9]+)?|[A-Za-z0-9_]{1,100}")
# ODM OIDs: letters, digits, '.', '_' and '-' (no spaces: they are keys in the sponsor's metadata)
_OID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._\-]{0,199}")
_ODM_CODE = re.compile(r"[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]{0,198}[^\s\x00-\x1f\x7f])?")


@dataclass(frozen=True)
class RedcapMapping:
    """A REDCap data import: the record id, events, variables and raw codes of the trial's project.

    ``events`` maps a visit to a unique event name (longitudinal project), or is
    ``None`` (classic project: one row per record). ``fields`` pairs an hladr field
    with a REDCap variable, in column order. ``codes[field][label]`` is the raw code
    of a coded field's value.
    """

    source: str
    record_id_field: str
    record_id: str
    events: Mapping[str, str] | None
    fields: tuple[tuple[str, str], ...]
    codes: Mapping[str, Mapping[str, str]]


@dataclass(frozen=True)
class OdmMapping:
    """A CDISC ODM 1.3.2 ClinicalData snapshot: the OIDs of the sponsor's study metadata.

    One ItemGroupData (``item_group_oid``) in one FormData (``form_oid``) per sample,
    in the StudyEventData of its visit (``events``: visit -> StudyEventOID).
    ``items`` pairs an hladr field with an ItemOID; ``codes[field][label]`` is the
    CodedValue of a coded field's value in the item's CodeList.
    """

    source: str
    study_oid: str
    metadata_version_oid: str
    form_oid: str
    item_group_oid: str
    events: Mapping[str, str]
    items: tuple[tuple[str, str], ...]
    codes: Mapping[str, Mapping[str, str]]


class _Reader:
    """Checks one parsed mapping document; every error names the file and the dotted key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, what: str) -> ConfigError:
        where = f"key {key!r}: " if key else ""
        return ConfigError(printable(f"mapping file {self.source}: {where}{what}"))

    def table(self, doc: Mapping, key: str, name: str, *, required: bool = True) -> dict | None:
        full = f"{key}.{name}" if key else name
        if name not in doc:
            if required:
                raise self.fail(full, "missing (a table)")
            return None
        value = doc[name]
        if not isinstance(value, dict):
            raise self.fail(full, f"must be a table ([{full}]), not {type(value).__name__}")
        return value

    def only(self, table: Mapping, key: str, allowed: tuple[str, ...]) -> None:
        for name in table:
            if name not in allowed:
                full = f"{key}.{name}" if key else name
                shown = ", ".join(a if a.isidentifier() else repr(a) for a in allowed)
                raise self.fail(full, f"unknown (expected {shown})")

    def string(self, table: Mapping, key: str, name: str, pattern: re.Pattern, what: str) -> str:
        full = f"{key}.{name}"
        if name not in table:
            raise self.fail(full, f"missing ({what})")
        return self.value(table[name], full, pattern, what)

    def value(self, value: object, full: str, pattern: re.Pattern, what: str) -> str:
        if not isinstance(value, str):
            raise self.fail(full, f"must be a text in quotes ({what}), not {type(value).__name__}")
        if not pattern.fullmatch(value):
            raise self.fail(full, f"{value!r} is not {what}")
        return value

    def visits(self, table: Mapping, key: str, pattern: re.Pattern, what: str) -> dict[str, str]:
        if not table:
            raise self.fail(key, "is empty: give the event of each visit")
        out: dict[str, str] = {}
        seen: dict[str, str] = {}
        for visit, target in table.items():
            full = f"{key}.{visit}"
            if not visit.strip() or visit != printable(visit):
                raise self.fail(full, "a visit must be printable text, as in the worklist's visit column")
            v = self.value(target, full, pattern, what)
            if v in seen:
                raise self.fail(full, f"{v!r} is also the event of visit {seen[v]!r}: two visits would merge")
            seen[v] = visit
            out[visit] = v
        return out

    def fields(self, table: Mapping, key: str, pattern: re.Pattern, what: str,
               taken: dict[str, str]) -> tuple[tuple[str, str], ...]:
        if not table:
            raise self.fail(key, "is empty: map at least one hladr field")
        out = []
        for name, target in table.items():
            full = f"{key}.{name}"
            if name not in FIELDS:
                raise self.fail(full, f"hladr has no field {name!r} (fields: {', '.join(FIELDS)})")
            v = self.value(target, full, pattern, what)
            if v in taken:
                raise self.fail(full, f"{v!r} is also given to {taken[v]}: one place, one value")
            taken[v] = full
            out.append((name, v))
        return tuple(out)

    def codes(self, doc: Mapping, mapped: tuple[tuple[str, str], ...], section: str,
              pattern: re.Pattern, what: str) -> dict[str, dict[str, str]]:
        table = self.table(doc, "", "codes", required=False) or {}
        coded = [name for name, _ in mapped if name in CODES]
        for name in table:
            if name not in CODES:
                raise self.fail(f"codes.{name}", f"unknown (coded fields: {', '.join(CODES)})")
            if name not in coded:
                raise self.fail(f"codes.{name}", f"{name} is not among [{section}]")
        out: dict[str, dict[str, str]] = {}
        for name in coded:
            sub = self.table(table, "codes", name)
            assert sub is not None
            labels = CODES[name]
            self.only(sub, f"codes.{name}", labels)
            given: dict[str, str] = {}
            for label in labels:
                full = f"codes.{name}.{label}"
                if label not in sub:
                    shown = ", ".join(map(repr, labels))
                    raise self.fail(full, f"missing: every value of {name} needs a code ({shown})")
                code = self.value(sub[label], full, pattern, what)
                if code in given:
                    raise self.fail(full, f"code {code!r} is also the code of {given[code]!r}")
                given[code] = label
            out[name] = {label: sub[label] for label in labels}
        return out


def _redcap(doc: Mapping, r: _Reader) -> RedcapMapping:
    r.only(doc, "", ("redcap", "fields", "codes"))
    head = r.table(doc, "", "redcap")
    assert head is not None
    r.only(head, "redcap", ("record_id_field", "record_id", "events"))
    record_id_field = r.string(head, "redcap", "record_id_field", _REDCAP_NAME, "a REDCap variable name "
                               "(lower-case letters, digits and '_', starting with a letter)")
    record_id = r.string(head, "redcap", "record_id", re.compile(r"\w+"), "an hladr field")
    if FIELDS.get(record_id) != "text":
        raise r.fail("redcap.record_id", f"{record_id!r} is not an hladr text field (e.g. subject_id)")
    events_table = r.table(head, "redcap", "events", required=False)
    events = None if events_table is None else r.visits(
        events_table, "redcap.events", _REDCAP_EVENT, "a REDCap unique event name (e.g. day_3_arm_1)")
    fields_table = r.table(doc, "", "fields")
    assert fields_table is not None
    taken = {record_id_field: "redcap.record_id_field"}
    fields = r.fields(fields_table, "fields", _REDCAP_NAME, "a REDCap variable name (lower-case letters, "
                      "digits and '_', starting with a letter)", taken)
    for name, var in fields:
        if var.startswith("redcap_"):
            raise r.fail(f"fields.{name}", f"{var!r}: names beginning with 'redcap_' are REDCap's own")
    codes = r.codes(doc, fields, "fields", _REDCAP_CODE, "a REDCap raw code (a number, or letters, digits and '_')")
    return RedcapMapping(r.source, record_id_field, record_id, events, fields, codes)


def _odm(doc: Mapping, r: _Reader) -> OdmMapping:
    r.only(doc, "", ("odm", "items", "codes"))
    head = r.table(doc, "", "odm")
    assert head is not None
    keys = ("study_oid", "metadata_version_oid", "form_oid", "item_group_oid")
    r.only(head, "odm", (*keys, "events"))
    oid = "an OID (letters, digits, '.', '_' and '-'; no spaces)"
    study, mdv, form, group = (r.string(head, "odm", k, _OID, oid) for k in keys)
    events_table = r.table(head, "odm", "events")
    assert events_table is not None
    events = r.visits(events_table, "odm.events", _OID, oid)
    items_table = r.table(doc, "", "items")
    assert items_table is not None
    items = r.fields(items_table, "items", _OID, oid, {})
    codes = r.codes(doc, items, "items", _ODM_CODE, "a CodedValue (printable text without surrounding spaces)")
    return OdmMapping(r.source, study, mdv, form, group, events, items, codes)


def parse_mapping(text: str, fmt: str, *, source: str = "<text>") -> RedcapMapping | OdmMapping:
    """Parse and check the text of a mapping file for ``fmt`` (``redcap`` or ``odm``)."""
    r = _Reader(source)
    if fmt not in MAPPED_FORMATS:
        raise ConfigError(f"--format {fmt} takes no mapping file")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise r.fail("", f"not TOML: {exc}") from None
    return _redcap(doc, r) if fmt == "redcap" else _odm(doc, r)


def load_mapping(path: str | Path, fmt: str) -> RedcapMapping | OdmMapping:
    """Read and check a mapping file; :class:`~hladr.errors.ConfigError` (one line) when it cannot be used."""
    p = Path(path)
    r = _Reader(str(path))
    try:
        if not p.is_file():
            raise r.fail("", "not found" if not p.exists() else "not a file")
        if p.stat().st_size > MAX_MAPPING_BYTES:
            raise r.fail("", f"larger than {MAX_MAPPING_BYTES // 1024} KiB: not a mapping file")
        data = p.read_bytes()
    except OSError as exc:
        raise r.fail("", f"cannot be read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise r.fail("", f"not UTF-8 text (byte {exc.start})") from None
    return parse_mapping(text, fmt, source=str(path))
