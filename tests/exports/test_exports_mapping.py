"""Mapping files: the examples load; every bad one is refused with one line naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from hladr.cli import main
from hladr.errors import ConfigError
from hladr.exports.mapping import OdmMapping, RedcapMapping, load_mapping, parse_mapping

MAPPINGS = Path(__file__).resolve().parents[2] / "examples" / "mappings"

REDCAP = """
[redcap]
record_id_field = "record_id"
record_id = "subject_id"
[redcap.events]
D1 = "day_1_arm_1"
[fields]
hladr_abc = "mhladr_abc"
phenotype = "phenotype"
[codes.phenotype]
MALS = "1"
immunoparalysis = "2"
intermediate = "3"
indeterminate = "4"
"""

ODM = """
[odm]
study_oid = "ST.1"
metadata_version_oid = "MDV.1"
form_oid = "F.1"
item_group_oid = "IG.1"
[odm.events]
D1 = "SE.D1"
[items]
hladr_abc = "IT.ABC"
qc = "IT.QC"
[codes.qc]
pass = "P"
warn = "W"
fail = "F"
"""


def test_the_example_mappings_load():
    r = load_mapping(MAPPINGS / "redcap.toml", "redcap")
    assert isinstance(r, RedcapMapping) and r.record_id == "subject_id" and r.events["D3"] == "day_3_arm_1"
    assert r.fields[0] == ("sample_id", "mhladr_sample_id") and r.codes["ferritin_censor"][">"] == "1"
    o = load_mapping(MAPPINGS / "odm.toml", "odm")
    assert isinstance(o, OdmMapping) and o.study_oid == "ST.IMMUNOSEP" and o.events["D7"] == "SE.DAY7"
    assert dict(o.items)["hladr_abc"] == "IT.MHLADR.ABC" and o.codes["phenotype"]["MALS"] == "MALS"


def test_the_small_mappings_here_load():
    assert parse_mapping(REDCAP, "redcap").fields == (("hladr_abc", "mhladr_abc"), ("phenotype", "phenotype"))
    assert parse_mapping(ODM, "odm").codes == {"qc": {"pass": "P", "warn": "W", "fail": "F"}}
    classic = parse_mapping(REDCAP.replace('[redcap.events]\nD1 = "day_1_arm_1"\n', ""), "redcap")
    assert classic.events is None  # a classic (not longitudinal) REDCap project


BAD_REDCAP = [
    (REDCAP + "[extra]\n", "key 'extra': unknown"),
    (REDCAP.replace("[redcap]", "[redcap]\nrecord_id_fields = 'x'"), "key 'redcap.record_id_fields': unknown"),
    (REDCAP.replace('record_id_field = "record_id"\n', ""), "key 'redcap.record_id_field': missing"),
    (REDCAP.replace('record_id = "subject_id"', 'record_id = "monocyte_count"'), "key 'redcap.record_id'"),
    (REDCAP.replace("hladr_abc = ", "hladr_abcd = "), "key 'fields.hladr_abcd': hladr has no field"),
    (REDCAP.replace('"mhladr_abc"', '"mHLADR abc"'), "key 'fields.hladr_abc': 'mHLADR abc' is not a REDCap"),
    (REDCAP.replace('"mhladr_abc"', '"phenotype"'), "key 'fields.phenotype': 'phenotype' is also given to"),
    (REDCAP.replace('"mhladr_abc"', '"record_id"'), "is also given to redcap.record_id_field"),
    (REDCAP.replace('"mhladr_abc"', '"redcap_event_name"'), "REDCap's own"),
    (REDCAP.replace('"mhladr_abc"', "5000"), "key 'fields.hladr_abc': must be a text in quotes"),
    (REDCAP.replace('indeterminate = "4"\n', ""), "key 'codes.phenotype.indeterminate': missing"),
    (REDCAP.replace('indeterminate = "4"', 'indeterminate = "3"'), "code '3' is also the code of 'intermediate'"),
    (REDCAP.replace('MALS = "1"', 'MALS = "1"\nmals = "9"'), "key 'codes.phenotype.mals': unknown"),
    (REDCAP.replace('MALS = "1"', 'MALS = "1 "'), "is not a REDCap raw code"),
    (REDCAP + '[codes.qc]\npass = "1"\nwarn = "2"\nfail = "3"\n', "key 'codes.qc': qc is not among [fields]"),
    (REDCAP + '[codes.sample_id]\nx = "1"\n', "key 'codes.sample_id': unknown"),
    (REDCAP.split("[codes.phenotype]")[0], "key 'codes.phenotype': missing"),
    (REDCAP.replace('"day_1_arm_1"', '"Day 1"'), "key 'redcap.events.D1': 'Day 1' is not a REDCap unique event"),
    (REDCAP.replace('D1 = "day_1_arm_1"', 'D1 = "day_1_arm_1"\nD3 = "day_1_arm_1"'), "two visits would merge"),
    (REDCAP.replace("[fields]\nhladr_abc", "[fields]\n[x]\nhladr_abc"), "key 'x': unknown"),
    (REDCAP.replace("[redcap.events]", "[redcap.events]\nx = 1").replace("D1 =", "D2 ="), "must be a text"),
    ("[redcap\n", "not TOML"),
    ("fields = 3\n[redcap]\n", "key 'redcap.record_id_field': missing"),
    ("", "key 'redcap': missing"),
]

BAD_ODM = [
    (ODM.replace('"ST.1"', '"ST 1"'), "key 'odm.study_oid': 'ST 1' is not an OID"),
    (ODM.replace('"IT.ABC"', '""'), "key 'items.hladr_abc': '' is not an OID"),
    (ODM.replace('"IT.ABC"', '"IT.QC"'), "key 'items.qc': 'IT.QC' is also given to items.hladr_abc"),
    (ODM.replace('"SE.D1"', '"SE/D1"'), "key 'odm.events.D1': 'SE/D1' is not an OID"),
    (ODM.replace('form_oid = "F.1"\n', ""), "key 'odm.form_oid': missing"),
    (ODM.replace('[odm.events]\nD1 = "SE.D1"\n', ""), "key 'odm.events': missing"),
    (ODM.replace('D1 = "SE.D1"\n', ""), "key 'odm.events': is empty"),
    (ODM.replace('metadata_version_oid', 'metadataversion_oid'), "key 'odm.metadataversion_oid': unknown"),
    (ODM.replace('pass = "P"', 'pass = " P"'), "is not a CodedValue"),
    (ODM.replace("[items]", "[fields]"), "key 'fields': unknown"),
    ('odm = "ST.1"\n[items]\nqc = "IT.QC"\n', "key 'odm': must be a table"),
]


@pytest.mark.parametrize("text, message", BAD_REDCAP)
def test_bad_redcap_mappings_are_refused_naming_the_key(text, message):
    with pytest.raises(ConfigError) as info:
        parse_mapping(text, "redcap", source="m.toml")
    msg = str(info.value)
    assert msg.startswith("mapping file m.toml: ") and "\n" not in msg and message in msg, msg


@pytest.mark.parametrize("text, message", BAD_ODM)
def test_bad_odm_mappings_are_refused_naming_the_key(text, message):
    with pytest.raises(ConfigError) as info:
        parse_mapping(text, "odm", source="m.toml")
    msg = str(info.value)
    assert msg.startswith("mapping file m.toml: ") and "\n" not in msg and message in msg, msg


@pytest.mark.parametrize("content, message", [
    (None, "not found"),
    (b"\xff\xfe[redcap]", "not UTF-8"),
    (b"x" * (1 << 20 + 1), "larger than"),
    (b"[redcap]\nrecord_id_field = 'record_id'\nrecord_id = 'subject_id'\n[fields]\nqc = 'qc_var'\n",
     "key 'codes.qc': missing"),
])
def test_a_bad_mapping_file_stops_the_export_with_one_line(content, message, example_out, tmp_path, capsys):
    mapping = tmp_path / "mapping.toml"
    if content is not None:
        mapping.write_bytes(content)
    out = tmp_path / "import.csv"
    code = main(["export", str(example_out), "--format", "redcap", "--out", str(out), "--mapping", str(mapping)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and str(mapping) in err and message in err, err
    assert "Traceback" not in err and not out.exists()
