"""The example run exported in all four formats, each parsed back with a standard library and compared
value by value with results.csv: sample ids, AB/C, ferritin with its censoring, phenotype, qc (issue 14)."""

from __future__ import annotations

import csv
import io
import json
import tomllib
from pathlib import Path

import pytest

MAPPINGS = Path(__file__).resolve().parents[2] / "examples" / "mappings"

CENSOR = {"P002": ">", "P008": ">", "P009": "<"}  # example_fcs/worklist.csv: >10000, >15000, <20


def _mapping(fmt: str) -> dict:
    return tomllib.loads((MAPPINGS / f"{fmt}.toml").read_text(encoding="utf-8"))


def _num(text: str) -> float | None:
    return None if text == "" else float(text)


def test_csv_is_results_csv_plus_the_ferritin_as_reported(exported, example_out, results_doc):
    want = list(csv.reader(io.StringIO((example_out / "results.csv").read_text(encoding="utf-8"))))
    got = list(csv.reader(io.StringIO(exported["csv"].read_bytes().decode("utf-8"))))
    assert got[0] == want[0] + ["ferritin_text", "ferritin_unit", "ferritin_censor"]
    assert len(got) == len(want) == 11
    by_id = {s["sample_id"]: s for s in results_doc["samples"]}
    for g, w in zip(got[1:], want[1:], strict=True):
        assert g[: len(w)] == w  # every results.csv cell, as results.csv writes it
        s = by_id[w[0]]
        assert g[len(w):] == [s["ferritin_text"], s["ferritin_unit"], CENSOR.get(w[0], "")]
    rows = {r["sample_id"]: r for r in csv.DictReader(io.StringIO(exported["csv"].read_text(encoding="utf-8")))}
    assert rows["P002"]["ferritin_text"] == ">10000" and rows["P002"]["ferritin_ng_ml"] == "10000"
    assert rows["P003"]["ferritin_unit"] == "pmol/L" and rows["P003"]["ferritin_text"] == "18390"


def test_redcap_rows_carry_the_results_csv_values_as_raw_codes(exported, results_rows, results_doc):
    m = _mapping("redcap")
    var = m["fields"]
    decode = {f: {code: label for label, code in m["codes"][f].items()} for f in m["codes"]}
    rows = list(csv.DictReader(io.StringIO(exported["redcap"].read_bytes().decode("utf-8"))))
    assert list(rows[0]) == ["record_id", "redcap_event_name", *var.values()]
    assert len(rows) == len(results_rows)
    cal_day = "2026-08-19"  # $DATE of example_fcs/beads.fcs, 19-AUG-2026
    for r in rows:
        want = results_rows[r[var["sample_id"]]]
        assert r["record_id"] == want["subject_id"]
        assert r["redcap_event_name"] == m["redcap"]["events"][want["visit"]]
        assert r[var["hladr_abc"]] == want["hladr_abc"]
        assert r[var["monocyte_count"]] == want["monocyte_count"]
        assert _num(r[var["ferritin_ng_ml"]]) == _num(want["ferritin_ng_ml"])
        assert decode["ferritin_censor"][r[var["ferritin_censor"]]] == (CENSOR.get(want["sample_id"]) or "exact")
        assert decode["phenotype"][r[var["phenotype"]]] == want["phenotype"]
        assert decode["qc"][r[var["qc"]]] == want["qc"]
        assert r[var["flags"]] == want["flags"]
        assert r[var["sha256"]] == want["sha256"] and r[var["run_id"]] == results_doc["run_id"]
        assert r[var["calibration_date"]] == cal_day
        for name in ("hladr_abc", "ferritin_ng_ml", "monocyte_count"):  # numbers without separators
            assert all(c in "0123456789." for c in r[var[name]])


def test_odm_is_valid_against_the_schema_and_carries_the_values(exported, results_rows, results_doc):
    from lxml import etree
    from odmlib.schema_manager import get_schema_path

    schema = etree.XMLSchema(etree.parse(get_schema_path("odm", "1.3.2")))
    doc = etree.parse(str(exported["odm"]))
    schema.assertValid(doc)
    ns = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}
    root = doc.getroot()
    assert root.get("FileType") == "Snapshot" and root.get("ODMVersion") == "1.3.2"
    assert root.get("FileOID") == f"hladr.{results_doc['run_id']}"
    m = _mapping("odm")
    item = m["items"]
    decode = {f: {code: label for label, code in m["codes"][f].items()} for f in m["codes"]}
    event_visit = {oid: visit for visit, oid in m["odm"]["events"].items()}
    clinical = root.find("odm:ClinicalData", ns)
    assert clinical.get("StudyOID") == m["odm"]["study_oid"]
    seen = set()
    for subject in clinical.findall("odm:SubjectData", ns):
        for event in subject.findall("odm:StudyEventData", ns):
            groups = event.findall("odm:FormData/odm:ItemGroupData", ns)
            assert len(groups) == 1
            values = {i.get("ItemOID"): i.get("Value") for i in groups[0].findall("odm:ItemData", ns)}
            want = results_rows[values[item["sample_id"]]]
            seen.add(want["sample_id"])
            assert subject.get("SubjectKey") == want["subject_id"]
            assert event_visit[event.get("StudyEventOID")] == want["visit"]
            assert values.get(item["hladr_abc"], "") == want["hladr_abc"]  # no ItemData when not measurable
            assert _num(values[item["ferritin_ng_ml"]]) == _num(want["ferritin_ng_ml"])
            assert decode["ferritin_censor"][values[item["ferritin_censor"]]] == (
                CENSOR.get(want["sample_id"]) or "exact")
            assert decode["phenotype"][values[item["phenotype"]]] == want["phenotype"]
            assert decode["qc"][values[item["qc"]]] == want["qc"]
            assert values[item["sha256"]] == want["sha256"]
    assert seen == set(results_rows)


def test_fhir_bundle_is_r4_and_carries_the_values(exported, results_rows, example_out):
    import fhir.resources
    from fhir.resources.bundle import Bundle

    assert fhir.resources.__fhir_version__ == "4.0.1"  # R4 proper, not R4B or R5
    bundle = Bundle.parse_raw(exported["fhir"].read_bytes())  # validates every resource on the way
    assert bundle.type == "collection"
    by_url = {e.fullUrl: e.resource for e in bundle.entry}
    obs = [r for r in by_url.values() if r.resource_type == "Observation"]
    provs = [r for r in by_url.values() if r.resource_type == "Provenance"]
    cal = json.loads((example_out / "calibration.json").read_text(encoding="utf-8"))
    assert len(obs) == 3 * len(results_rows) and len(provs) == len(results_rows)
    phenotypes = [o for o in obs if o.code.coding[0].code == "immunosep-phenotype"]
    seen = set()
    for p in phenotypes:
        hladr, ferritin = (by_url[ref.reference] for ref in p.derivedFrom)
        sample_id = hladr.specimen.identifier.value
        want = results_rows[sample_id]
        seen.add(sample_id)
        assert p.valueCodeableConcept.coding[0].code == want["phenotype"]
        assert {t.code for o in (p, hladr, ferritin) for t in o.meta.tag} == {want["qc"]}
        assert hladr.subject.identifier.value == ferritin.subject.identifier.value == want["subject_id"]
        if want["hladr_abc"]:
            q = hladr.valueQuantity
            assert (str(q.value), q.unit, q.system, q.code) == (
                want["hladr_abc"], "AB/C", "http://unitsofmeasure.org", "{AB}/{cell}")
        else:
            assert hladr.valueQuantity is None and hladr.dataAbsentReason.coding[0].code == "error"
        assert ferritin.code.coding[0].system == "http://loinc.org" and ferritin.code.coding[0].code == "2276-4"
        q = ferritin.valueQuantity
        assert float(q.value) == float(want["ferritin_ng_ml"]) and (q.unit, q.code) == ("ng/mL", "ng/mL")
        assert q.comparator == CENSOR.get(sample_id)
        mine = {u for u, r in by_url.items() if any(r is x for x in (p, hladr, ferritin))}
        prov = next(pv for pv in provs if {t.reference for t in pv.target} == mine)
        hashes = {e.what.identifier.value for e in prov.entity if e.what.identifier.system == "urn:hladr:sha256"}
        assert hashes == {want["sha256"], cal["inputs"][0]["sha256"]}
        assert any(e.what.identifier.value == want["calibration_id"] for e in prov.entity)
        software = by_url[prov.agent[0].who.reference]
        assert software.deviceName[0].name == "hladr" and software.version[0].value == want["software_version"]
        assert prov.policy == [f"urn:hladr:ruleset:{want['ruleset']}"]
    assert seen == set(results_rows)


@pytest.mark.parametrize("fmt", ["csv", "redcap", "odm", "fhir"])
def test_exporting_again_gives_the_same_file(fmt, example_out, exported, tmp_path):
    """Same run, same mapping, same time: the same bytes (resource ids and OIDs are derived, not drawn)."""
    import datetime as dt

    from hladr.exports import export_run

    when = dt.datetime(2026, 8, 20, 8, 0, tzinfo=dt.UTC)
    mapping = MAPPINGS / f"{fmt}.toml" if fmt in ("redcap", "odm") else None
    a = export_run(example_out, fmt, tmp_path / "a", mapping=mapping, now=when).read_bytes()
    b = export_run(example_out, fmt, tmp_path / "b", mapping=mapping, now=when).read_bytes()
    assert a == b
    if fmt in ("csv", "redcap"):
        assert a == exported[fmt].read_bytes()
