"""``--format fhir``: a FHIR R4 (4.0.1) Bundle, validated with the ``fhir.resources`` R4 models.

A ``collection`` Bundle (a snapshot of one run, like the ODM export; identifier: the
run id; for the results kept since a day, ``urn:hladr:export``, each sample with its own
run) holding a Device for the software (hladr and its version) and one for the
cytometer (model and serial, from the calibration) of each run, then per sample tube:

- an Observation of **monocyte HLA-DR**: AB/C as results.csv reports it (a whole
  number) in ``valueQuantity`` with a UCUM unit (``{AB}/{cell}``, shown ``AB/C``),
  the monocytes counted as a component; a tube without a value has a
  ``dataAbsentReason`` (``error``) whose text is the QC reason. No LOINC code is
  claimed for it (we know of none for QuantiBRITE AB/C): the code is hladr's own;
- an Observation of **ferritin**: LOINC 2276-4, ng/mL (UCUM), the censoring of a
  ``>10000`` or ``<20`` as ``valueQuantity.comparator``; a value reported in pmol/L
  is given converted, with the text as reported in a note;
- an Observation of the **phenotype** (``MALS``, ``immunoparalysis``, ``intermediate``,
  ``indeterminate``) with ``derivedFrom`` both, the rule set as method, the reasons as notes;
- a **Provenance** targeting the three: the software as agent, the rule set as policy,
  and as sources the FCS file's and the bead file's SHA-256 and the calibration
  (id, lot, fit).

Every tube's QC (``pass``, ``warn``, ``fail``) is a ``meta.tag`` of its Observations.
Resource ids are UUIDs derived from the run id, tube and kind, so exporting the same
run twice gives the same ids. References inside the Bundle are ``urn:uuid:`` full URLs;
the subject and specimen are referenced by identifier (subject_id, sample_id).

The Bundle is parsed with ``fhir.resources`` before it is written: structure, types,
cardinalities and choice types must hold (it does not check code bindings; the codes
written here are constants, and the comparator is only ``<`` or ``>``).
"""

from __future__ import annotations

import datetime as _dt
import json
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal

from ..errors import ConfigError
from .records import (
    RunRecord,
    abc_text,
    calibration_date,
    ferritin_censor,
    ferritin_ng_ml_text,
    qc_reasons,
    run_of,
)

__all__ = ["FHIR_VERSION", "HLADR_CODES", "PHENOTYPE_CODES", "UCUM", "LOINC", "to_fhir", "validate_bundle"]

FHIR_VERSION = "4.0.1"
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
HLADR_CODES = "urn:hladr:code"  # hladr's own codes (no standard code exists for them)
PHENOTYPE_CODES = "urn:hladr:immunosep-phenotype"
_QC_TAGS = "urn:hladr:qc"
_SHA256 = "urn:hladr:sha256"
_OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
_DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
_NS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:hladr:fhir")
_PHENOTYPE_TEXT = {
    "MALS": "macrophage activation-like syndrome",
    "immunoparalysis": "immunoparalysis",
    "intermediate": "intermediate (neither state)",
    "indeterminate": "indeterminate (the inputs do not decide)",
}


def _id(run: RunRecord, *parts: object) -> str:
    return str(uuid.uuid5(_NS, "/".join([run.run_id, *map(str, parts)])))


def _ref(rid: str, display: str | None = None) -> dict:
    return {"reference": f"urn:uuid:{rid}", **({"display": display} if display else {})}


def _instant(text: str) -> str | None:
    try:
        t = _dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return t.isoformat() if t.tzinfo is not None else None


def _quantity(value_text: str, unit: str, code: str, comparator: str = "") -> dict:
    q: dict = {"value": Decimal(value_text)}
    if comparator:
        q["comparator"] = comparator
    return {**q, "unit": unit, "system": UCUM, "code": code}


def _absent(code: str, text: str) -> dict:
    return {"coding": [{"system": _ABSENT, "code": code}], "text": text}


def _common(s: Mapping, run: RunRecord, rid: str, kind: str, when: str | None, issued: str | None) -> dict:
    obs: dict = {
        "resourceType": "Observation",
        "id": rid,
        "meta": {"tag": [{"system": _QC_TAGS, "code": str(s.get("qc")), "display": f"hladr QC {s.get('qc')}"}]},
        "identifier": [{"system": "urn:hladr:result", "value": f"{run.run_id}/{s.get('file')}/{kind}"}],
        "status": "final",
        "category": [{"coding": [{"system": _OBS_CATEGORY, "code": "laboratory", "display": "Laboratory"}]}],
    }
    if s.get("subject_id"):
        obs["subject"] = {"identifier": {"value": str(s["subject_id"])}}
    if when:
        obs["effectiveDateTime"] = when
    if issued:
        obs["issued"] = issued
    return obs


def _hladr(s: Mapping, run: RunRecord, rid: str, cytometer: str | None, when, issued) -> dict:
    obs = _common(s, run, rid, "hladr_abc", when, issued)
    obs["code"] = {"coding": [{"system": HLADR_CODES, "code": "mhladr-abc",
                               "display": "Monocyte HLA-DR, antibodies bound per cell"}],
                   "text": "Monocyte HLA-DR (AB/C, QuantiBRITE PE)"}
    value = abc_text(s.get("hladr_abc"))
    if value:
        obs["valueQuantity"] = _quantity(value, "AB/C", "{AB}/{cell}")
    else:
        obs["dataAbsentReason"] = _absent("error", qc_reasons(s) or "not measurable")
    obs["method"] = {"text": "QuantiBRITE PE bead calibration; median AB/C of the gated CD14+ monocytes"}
    if s.get("sample_id"):
        obs["specimen"] = {"identifier": {"value": str(s["sample_id"])}, "display": f"tube {s.get('file')}"}
    if cytometer:
        obs["device"] = _ref(cytometer)
    if s.get("monocyte_count") is not None:
        obs["component"] = [{"code": {"coding": [{"system": HLADR_CODES, "code": "monocyte-count",
                                                   "display": "Monocytes counted in the gate"}]},
                             "valueQuantity": _quantity(str(int(s["monocyte_count"])), "cells", "{cells}")}]
    flags = [f"{f.get('code')}: {f.get('message')}" for f in s.get("flags") or () if f.get("severity") != "info"]
    if flags:
        obs["note"] = [{"text": f"QC {s.get('qc')}: " + "; ".join(flags)}]
    return obs


def _ferritin(s: Mapping, run: RunRecord, rid: str, issued) -> dict:
    obs = _common(s, run, rid, "ferritin", None, issued)
    obs["code"] = {"coding": [{"system": LOINC, "code": "2276-4",
                               "display": "Ferritin [Mass/volume] in Serum or Plasma"}], "text": "Ferritin"}
    text, unit = str(s.get("ferritin_text") or ""), str(s.get("ferritin_unit") or "")
    value = ferritin_ng_ml_text(s.get("ferritin_ng_ml"))
    if value:
        obs["valueQuantity"] = _quantity(value, "ng/mL", "ng/mL", ferritin_censor(s))
    else:
        obs["dataAbsentReason"] = (_absent("unknown", "no ferritin given") if not text.strip()
                                   else _absent("error", f"ferritin as reported ({text!r}) cannot be used"))
    if text.strip():
        obs["note"] = [{"text": f"reported as {text.strip()} {unit}".rstrip()}]
    return obs


def _phenotype(s: Mapping, run: RunRecord, rid: str, sources: list[dict], when, issued) -> dict:
    obs = _common(s, run, rid, "phenotype", when, issued)
    label = str(s.get("phenotype"))
    obs["code"] = {"coding": [{"system": HLADR_CODES, "code": "immunosep-phenotype",
                               "display": "ImmunoSep immune phenotype"}]}
    obs["valueCodeableConcept"] = {"coding": [{"system": PHENOTYPE_CODES, "code": label,
                                               "display": _PHENOTYPE_TEXT.get(label, label)}], "text": label}
    obs["method"] = {"text": f"ImmunoSep rule set {s.get('ruleset')}"}
    obs["derivedFrom"] = sources
    reasons = [str(r) for r in s.get("phenotype_reasons") or ()]
    if reasons:
        obs["note"] = [{"text": r} for r in reasons]
    return obs


def _calibration_text(cal: Mapping) -> str:
    fit = cal.get("fit") or {}
    lot = (cal.get("lot") or {}).get("id")
    parts = [f"QuantiBRITE calibration {cal.get('id')}", f"lot {lot}" if lot else ""]
    if fit:
        parts.append(f"log10(PE) = {fit.get('intercept')!s} + {fit.get('slope')!s} log10(MFI), R2 {fit.get('r2')!s}")
    parts.append("accepted" if cal.get("accepted") else "not accepted")
    return ", ".join(p for p in parts if p)


def _provenance(s: Mapping, run: RunRecord, rid: str, targets: list[dict], software: str, recorded: str) -> dict:
    cal = run.calibration
    entities = []
    if s.get("sha256"):
        entities.append({"role": "source", "what": {"identifier": {"system": _SHA256, "value": str(s["sha256"])},
                                                    "display": f"FCS file {s.get('file')}"}})
    for inp in cal.get("inputs") or ():
        if inp.get("sha256"):
            entities.append({"role": "source", "what": {"identifier": {"system": _SHA256, "value": inp["sha256"]},
                                                        "display": f"bead file {inp.get('file')}"}})
    if cal.get("id"):
        entities.append({"role": "source", "what": {"identifier": {"system": "urn:hladr:calibration",
                                                                   "value": str(cal["id"])},
                                                    "display": _calibration_text(cal)}})
    prov: dict = {
        "resourceType": "Provenance",
        "id": rid,
        "target": targets,
        "recorded": recorded,
        "activity": {"coding": [{"system": _DATA_OPERATION, "code": "CREATE", "display": "create"}]},
        "agent": [{"type": {"coding": [{"system": _PARTICIPANT, "code": "assembler", "display": "Assembler"}]},
                   "who": _ref(software, f"hladr {s.get('software_version') or run.hladr_version}")}],
    }
    if s.get("ruleset"):
        prov["policy"] = [f"urn:hladr:ruleset:{s['ruleset']}"]
    if entities:
        prov["entity"] = entities
    return prov


def _devices(run: RunRecord) -> tuple[list[dict], str, str | None]:
    software = _id(run, "software")
    devices = [{"resourceType": "Device", "id": software,
                "deviceName": [{"name": "hladr", "type": "manufacturer-name"}],
                "type": {"text": "flow cytometry analysis software (monocyte HLA-DR, ImmunoSep phenotype)"},
                "version": [{"value": run.hladr_version}]}]
    settings = run.calibration.get("settings") or {}
    model = settings.get("instrument") or run.calibration.get("instrument")
    cytometer = None
    if model or settings.get("serial"):
        cytometer = _id(run, "cytometer")
        dev: dict = {"resourceType": "Device", "id": cytometer, "type": {"text": "flow cytometer"}}
        if model:
            dev["deviceName"] = [{"name": str(model), "type": "model-name"}]
        if settings.get("serial"):
            dev["serialNumber"] = str(settings["serial"])
        devices.append(dev)
    return devices, software, cytometer


def _entry(resource: dict) -> dict:
    return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}


def validate_bundle(doc: Mapping):
    """The Bundle parsed by the ``fhir.resources`` R4 models; :class:`ConfigError` (first error) when it fails."""
    from fhir.resources.bundle import Bundle  # heavy (pydantic models): only the FHIR export needs them
    from pydantic import ValidationError  # comes with fhir.resources

    try:
        return Bundle.parse_obj(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise ConfigError(f"the FHIR Bundle is not valid R4 ({where}: {err.get('msg')})") from None


def to_fhir(samples: Sequence[Mapping], run: RunRecord, *, created: _dt.datetime) -> str:
    """The Bundle as FHIR JSON text (validated), ``created`` its timestamp (an aware date-time)."""
    if created.tzinfo is None:
        raise ValueError("created must carry its time zone")
    stamp = created.isoformat(timespec="seconds")
    entries: list[dict] = []
    devices_of: dict[str, tuple[str, str | None]] = {}  # each run's software and cytometer Devices, once
    for i, s in enumerate(samples):
        own = run_of(s, run)  # the run the sample was analysed in (several in an export --since)
        if own.run_id not in devices_of:
            devices, software, cytometer = _devices(own)
            entries += [_entry(d) for d in devices]
            devices_of[own.run_id] = (software, cytometer)
        software, cytometer = devices_of[own.run_id]
        issued = _instant(own.finished_utc)
        day = calibration_date(own)
        when = day.isoformat() if day else None
        key = (i + 1, s.get("file")) if own is run else (s.get("sample_id"), s.get("file"))
        ids = {k: _id(own, *key, k) for k in ("hladr_abc", "ferritin", "phenotype", "provenance")}
        hladr = _hladr(s, own, ids["hladr_abc"], cytometer, when, issued)
        ferritin = _ferritin(s, own, ids["ferritin"], issued)
        sources = [_ref(ids["hladr_abc"], "monocyte HLA-DR"), _ref(ids["ferritin"], "ferritin")]
        phenotype = _phenotype(s, own, ids["phenotype"], sources, when, issued)
        targets = [_ref(ids[k]) for k in ("hladr_abc", "ferritin", "phenotype")]
        prov = _provenance(s, own, ids["provenance"], targets, software, issued or stamp)
        entries += [_entry(r) for r in (hladr, ferritin, phenotype, prov)]
    if not samples:
        entries = [_entry(d) for d in _devices(run)[0]]
    doc = {
        "resourceType": "Bundle",
        "id": _id(run, "bundle"),
        "identifier": {"system": "urn:hladr:export" if run.runs else "urn:hladr:run", "value": run.run_id},
        "type": "collection",
        "timestamp": stamp,
        "entry": entries,
    }
    bundle = validate_bundle(doc)
    return json.dumps(json.loads(bundle.json()), indent=2, ensure_ascii=False) + "\n"
