"""`hladr export RUN | --since DATE` read from the store: amendments included, several runs, each sample its own run.

The example run's four formats, exported from the store, are checked value by value in
``tests/exports`` (every test there runs on the output folder and on the store); here: what
only the store has.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from hladr.cli import main
from hladr.store import amend_result, current_results

MAPPINGS = Path(__file__).resolve().parents[2] / "examples" / "mappings"


@pytest.fixture(scope="module")
def two_runs(run_a, run_b, tmp_path_factory):
    """run_a and run_b kept in one store, P001 amended afterwards: (store, run id of a, run id of b)."""
    root = tmp_path_factory.mktemp("exports_store")
    db = root / "hladr.sqlite"
    ids = []
    for name, folder in (("a", run_a), ("b", run_b)):
        out = root / name
        assert main(["run", str(folder), "--out", str(out), "--quiet", "--db", str(db)]) in (0, 1)
        ids.append(json.loads((out / "results.json").read_text())["run_id"])
    amend_result(db, "P001", ferritin_text=">10000", ferritin_unit="ng/mL", reason="dilution", user="dm1")
    return db, *ids


def _export(tmp_path, *args: str) -> Path:
    out = tmp_path / "export"
    assert main(["export", *args, "--out", str(out)]) == 0
    return out


def _csv(path: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for r in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))}


def test_a_run_exported_from_the_store_carries_its_amendments(two_runs, tmp_path):
    db, run_a, _ = two_runs
    rows = _csv(_export(tmp_path, run_a, "--db", str(db), "--format", "csv"))
    assert sorted(rows) == ["P001", "P002", "P003"]
    p1 = rows["P001"]
    assert (p1["ferritin_text"], p1["ferritin_censor"], p1["phenotype"]) == (">10000", ">", "MALS")
    assert all(r["run_id"] == run_a for r in rows.values())
    stored = {r.sample_id: r for r in current_results(db)}
    for sid, r in rows.items():  # parsed back and compared with the store
        s = stored[sid]
        assert r["hladr_abc"] == ("" if s.hladr_abc is None else f"{s.hladr_abc:.0f}")
        assert (r["qc"], r["phenotype"], r["sha256"], r["calibration_id"]) == (s.qc, s.phenotype, s.sha256,
                                                                             s.calibration_id)


def test_since_exports_every_current_result_each_with_its_own_run(two_runs, tmp_path):
    db, run_a, run_b = two_runs
    rows = _csv(_export(tmp_path, "--since", "2000-01-01", "--db", str(db), "--format", "csv"))
    assert sorted(rows) == ["P001", "P002", "P003", "Q001", "Q002", "Q003"]
    assert {rows[s]["run_id"] for s in ("P001", "P002", "P003")} == {run_a}
    assert {rows[s]["run_id"] for s in ("Q001", "Q002", "Q003")} == {run_b}
    assert rows["P001"]["phenotype"] == "MALS"  # the current version: the amendment
    stored = {r.sample_id: r for r in current_results(db)}
    assert {s: (r["qc"], r["phenotype"]) for s, r in rows.items()} == {s: (r.qc, r.phenotype)
                                                                         for s, r in stored.items()}


def test_since_in_fhir_keeps_each_run_s_calibration_and_devices(two_runs, tmp_path):
    from fhir.resources.bundle import Bundle

    db, run_a, run_b = two_runs
    bundle = Bundle.parse_raw(_export(tmp_path, "--since", "2000-01-01", "--db", str(db), "--format",
                                      "fhir").read_bytes())
    assert bundle.identifier.system == "urn:hladr:export" and bundle.identifier.value == "since-2000-01-01"
    by_url = {e.fullUrl: e.resource for e in bundle.entry}
    software = [r for r in by_url.values() if r.resource_type == "Device" and r.deviceName[0].name == "hladr"]
    assert len(software) == 2  # one per run
    stored = {r.sample_id: r for r in current_results(db)}
    provs = [r for r in by_url.values() if r.resource_type == "Provenance"]
    assert len(provs) == 6
    checked = set()
    for prov in provs:
        (sid,) = {by_url[t.reference].specimen.identifier.value for t in prov.target if by_url[t.reference].specimen}
        cal = [e.what.identifier.value for e in prov.entity if e.what.identifier.system == "urn:hladr:calibration"]
        assert cal == [stored[sid].calibration_id]
        checked.add(sid)
    assert checked == set(stored)
    assert len({r.calibration_id for r in stored.values()}) == 2  # two runs, two bead tubes


def test_since_in_odm_and_redcap(two_runs, tmp_path):
    from lxml import etree
    from odmlib.schema_manager import get_schema_path

    db, *_ = two_runs
    odm = _export(tmp_path, "--since", "2000-01-01", "--db", str(db), "--format", "odm",
                  "--mapping", str(MAPPINGS / "odm.toml"))
    doc = etree.parse(str(odm))
    etree.XMLSchema(etree.parse(get_schema_path("odm", "1.3.2"))).assertValid(doc)
    ns = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}
    assert len(doc.findall(".//odm:ItemGroupData", ns)) == 6
    redcap = tmp_path / "redcap.csv"
    assert main(["export", "--since", "2000-01-01", "--db", str(db), "--format", "redcap", "--mapping",
                 str(MAPPINGS / "redcap.toml"), "--out", str(redcap)]) == 0
    assert len(list(csv.DictReader(io.StringIO(redcap.read_text(encoding="utf-8"))))) == 6


def test_since_a_later_day_exports_only_what_was_kept_since(two_runs, tmp_path, capsys):
    db, *_ = two_runs
    assert main(["export", "--since", "2999-01-01", "--db", str(db), "--format", "csv",
                 "--out", str(tmp_path / "x.csv")]) == 2
    assert "no results kept" in capsys.readouterr().err and not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("args, words", [
    (["20990101T000000Z-000000000000"], "no run 20990101T000000Z-000000000000"),
    ([], "or --since DATE"),
    (["RUN", "--since", "2026-01-01"], "or --since DATE"),
])
def test_what_cannot_be_exported_is_one_line(two_runs, tmp_path, capsys, args, words):
    db, *_ = two_runs
    out = tmp_path / "x.csv"
    assert main(["export", *args, "--db", str(db), "--format", "csv", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_a_run_that_did_not_finish_is_not_exported(two_runs, tmp_path, capsys):
    db = shutil.copyfile(two_runs[0], tmp_path / "s.sqlite")
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("INSERT INTO runs (run_id, started_utc, run_dir, user, hladr_version, software_json, config_json, "
                "calibration_json) VALUES ('20260101T000000Z-0123456789ab', '2026-01-01T00:00:00Z', '/x', 'u', "
                "'0', '{}', '{}', '{}')")
    con.close()
    assert main(["export", "20260101T000000Z-0123456789ab", "--db", str(db), "--format", "csv",
                 "--out", str(tmp_path / "x.csv")]) == 2
    assert "did not finish" in capsys.readouterr().err
