"""Exports and hostile or awkward input: CSV injection, existing files, runs that cannot be exported as is."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from hladr.cli import main
from hladr.errors import ConfigError

MAPPINGS = Path(__file__).resolve().parents[2] / "examples" / "mappings"

# OWASP CSV injection: each text cell a spreadsheet would run, and what the export writes instead
HOSTILE_IDS = {
    "=cmd|' /C calc'!A0": "'=cmd|' /C calc'!A0",
    "+1": "'+1",
    "-2": "'-2",  # a sample id is text, even when it looks like a number
    "@x": "'@x",
    "\tx": "'?x",  # a leading tab (and control characters: '?')
    "\rx": "'?x",  # a leading CR
}


def _hostile(samples):
    for s, sid in zip(samples, HOSTILE_IDS, strict=False):
        s["sample_id"] = sid
    samples[6]["extra"] = {"site_code": "-4"}  # a worklist's extra column: text
    samples[7]["hladr_abc"] = -3.0  # numbers hladr formats stay numbers, a negative one included
    samples[7]["monocyte_count"] = -5
    samples[7]["ferritin_ng_ml"] = -2.5


def _export(run, fmt, out, *extra):
    args = ["export", str(run), "--format", fmt, "--out", str(out), *extra]
    if fmt in ("redcap", "odm") and "--mapping" not in extra:
        args += ["--mapping", str(MAPPINGS / f"{fmt}.toml")]
    return main(args)


def test_csv_neutralises_formula_cells_and_keeps_numbers(run_copy, tmp_path):
    run, edit = run_copy
    edit(_hostile)
    assert _export(run, "csv", tmp_path / "x.csv") == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "x.csv").read_bytes().decode("utf-8"))))
    assert len(rows) == 10  # a CR inside a cell did not split a row
    assert [r["sample_id"] for r in rows[:6]] == list(HOSTILE_IDS.values())
    assert rows[6]["site_code"] == "'-4"
    assert (rows[7]["hladr_abc"], rows[7]["monocyte_count"], rows[7]["ferritin_ng_ml"]) == ("-3", "-5", "-2.5")
    for r in rows:  # no other cell starts a formula
        for k, v in r.items():
            assert not v.startswith(("=", "+", "@", "\t", "\r")), (k, v)
            assert not v.startswith("-") or k in ("hladr_abc", "monocyte_count", "ferritin_ng_ml"), (k, v)


def test_redcap_neutralises_text_and_keeps_numbers(run_copy, tmp_path):
    run, edit = run_copy
    edit(_hostile)
    assert _export(run, "redcap", tmp_path / "x.csv") == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "x.csv").read_text(encoding="utf-8"))))
    assert [r["mhladr_sample_id"] for r in rows[:6]] == list(HOSTILE_IDS.values())
    assert (rows[7]["mhladr_abc"], rows[7]["mhladr_monocytes"], rows[7]["ferritin_ngml"]) == ("-3", "-5", "-2.5")


def test_redcap_refuses_a_record_id_it_cannot_hold(run_copy, tmp_path, capsys):
    run, edit = run_copy
    edit(lambda s: s[0].update(subject_id="=HYPERLINK(1)"))
    assert _export(run, "redcap", tmp_path / "x.csv") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "P001" in err and "not a REDCap record name" in err
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("fmt", ["redcap", "odm"])
def test_two_results_for_one_subject_and_visit_are_refused(fmt, run_copy, tmp_path, capsys):
    """A repeated tube would overwrite the other in the eCRF: refused, not silently merged."""
    run, edit = run_copy
    edit(lambda s: s[1].update(subject_id=s[0]["subject_id"], visit=s[0]["visit"]))
    assert _export(run, fmt, tmp_path / "x") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'P001' and 'P002'" in err and "Traceback" not in err


@pytest.mark.parametrize("fmt", ["redcap", "odm"])
def test_a_visit_without_an_event_is_refused(fmt, run_copy, tmp_path, capsys):
    run, edit = run_copy
    edit(lambda s: s[4].update(visit="D28"))
    assert _export(run, fmt, tmp_path / "x") == 2
    err = capsys.readouterr().err
    assert "'P005'" in err and "'D28'" in err and f"[{fmt}.events]" in err


def test_odm_refuses_text_xml_cannot_carry(run_copy, tmp_path, capsys):
    run, edit = run_copy
    edit(lambda s: s[0].update(sample_id="P\x01001"))
    assert _export(run, "odm", tmp_path / "x.xml") == 2
    assert "XML" in capsys.readouterr().err and not (tmp_path / "x.xml").exists()


def test_odm_and_fhir_keep_text_exactly(run_copy, tmp_path):
    from lxml import etree

    run, edit = run_copy
    edit(lambda s: s[0].update(sample_id="=1+1 <&> \"q\"\tt"))
    assert _export(run, "odm", tmp_path / "x.xml") == 0
    values = [e.get("Value") for e in etree.parse(str(tmp_path / "x.xml")).iter("{*}ItemData")]
    assert "=1+1 <&> \"q\"\tt" in values
    assert _export(run, "fhir", tmp_path / "x.json") == 0
    bundle = json.loads((tmp_path / "x.json").read_text(encoding="utf-8"))
    specimens = {e["resource"].get("specimen", {}).get("identifier", {}).get("value") for e in bundle["entry"]}
    assert "=1+1 <&> \"q\"\tt" in specimens


@pytest.mark.parametrize("fmt", ["csv", "redcap", "odm", "fhir"])
def test_an_existing_output_file_is_refused_without_force(fmt, example_out, tmp_path, capsys):
    out = tmp_path / "keep.txt"
    out.write_text("earlier export\n")
    assert _export(example_out, fmt, out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists" in err and "--force" in err
    assert out.read_text() == "earlier export\n"
    assert _export(example_out, fmt, out, "--force") == 0
    assert out.read_text() != "earlier export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]  # no temporary file left


def test_a_file_appearing_during_the_write_is_not_replaced(tmp_path):
    from hladr._atomic import write_atomic

    p = tmp_path / "x.csv"
    write_atomic(p, "one\n", overwrite=False)
    with pytest.raises(FileExistsError):
        write_atomic(p, "two\n", overwrite=False)
    assert p.read_text() == "one\n" and [q.name for q in tmp_path.iterdir()] == ["x.csv"]


def test_the_runs_own_files_are_never_export_targets(example_out, capsys):
    before = (example_out / "results.csv").read_bytes()
    assert _export(example_out, "csv", example_out / "results.csv", "--force") == 2
    assert "own output files" in capsys.readouterr().err
    assert (example_out / "results.csv").read_bytes() == before


def test_results_and_calibration_of_different_runs_are_refused(run_copy, tmp_path, capsys):
    run, _ = run_copy
    cal = json.loads((run / "calibration.json").read_text())
    cal["run_id"] = "20260101T000000Z-000000000000"
    (run / "calibration.json").write_text(json.dumps(cal))
    assert _export(run, "csv", tmp_path / "x.csv") == 2
    assert "different runs" in capsys.readouterr().err


@pytest.mark.parametrize("damage, message", [
    (lambda run: (run / "results.json").unlink(), "not found"),
    (lambda run: (run / "results.json").write_text('{"run_id": NaN}'), "not the JSON hladr writes"),
    (lambda run: (run / "results.json").write_bytes(b"\xff\xfe{}"), "not the JSON hladr writes"),
])
def test_a_damaged_run_folder_is_one_line(damage, message, run_copy, tmp_path, capsys):
    run, _ = run_copy
    damage(run)
    assert _export(run, "csv", tmp_path / "x.csv") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


@pytest.mark.parametrize("fmt, extra, message", [
    ("csv", ["--mapping", str(MAPPINGS / "redcap.toml")], "takes no --mapping"),
    ("fhir", ["--mapping", str(MAPPINGS / "odm.toml")], "takes no --mapping"),
    ("redcap", ["--mapping", str(MAPPINGS / "odm.toml")], "key 'odm': unknown"),
    ("odm", ["--mapping", str(MAPPINGS / "redcap.toml")], "key 'redcap': unknown"),
])
def test_a_mapping_for_another_format_is_refused(fmt, extra, message, example_out, tmp_path, capsys):
    assert _export(example_out, fmt, tmp_path / "x", *extra) == 2
    assert message in capsys.readouterr().err


def test_redcap_and_odm_need_a_mapping(example_out, tmp_path, capsys):
    for fmt in ("redcap", "odm"):
        assert main(["export", str(example_out), "--format", fmt, "--out", str(tmp_path / "x")]) == 2
        assert "needs --mapping" in capsys.readouterr().err


def test_the_format_checks_stop_a_bad_document():
    """The ODM schema and the FHIR models are applied, and their failure is one line."""
    from hladr.exports.fhir_bundle import validate_bundle
    from hladr.exports.odm import validate_odm

    with pytest.raises(ConfigError, match="ODM 1.3.2 schema"):  # FileOID and CreationDateTime missing
        validate_odm(b'<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" FileType="Snapshot"/>')
    with pytest.raises(ConfigError, match="not valid R4.*status"):
        validate_bundle({"resourceType": "Bundle", "type": "collection", "entry": [
            {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Observation", "code": {"text": "x"}}}]})
