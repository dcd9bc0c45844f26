"""`hladr results amend`: a corrected ferritin is a new version with a reason; the phenotype is called again."""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3

import pytest

from hladr.cli import main
from hladr.errors import ConfigError
from hladr.ferritin import parse_ferritin
from hladr.flags import flag
from hladr.phenotype import call_phenotype
from hladr.rules import load_rules
from hladr.store import amend_result, amended_record, audit_entries, sample_versions, verify_audit
from hladr.store.amend import rules_of


@pytest.fixture(scope="module")
def kept_store(run_a, tmp_path_factory):
    db = tmp_path_factory.mktemp("amend") / "hladr.sqlite"
    assert main(["run", str(run_a), "--out", str(db.parent / "out"), "--quiet", "--db", str(db)]) in (0, 1)
    return db


@pytest.fixture
def db(kept_store, tmp_path):
    """A private copy of the store (each test amends)."""
    return shutil.copyfile(kept_store, tmp_path / "hladr.sqlite")


def _measured(db) -> str:
    """A sample whose HLA-DR was measured (so that the ferritin decides between the phenotypes)."""
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT s.sample_id FROM results r JOIN samples s ON s.id = r.sample_row "
                           "WHERE r.hladr_abc IS NOT NULL ORDER BY r.id LIMIT 1").fetchone()[0]
    finally:
        con.close()


def test_an_amendment_is_a_new_version_and_the_first_stays_readable(db, capsys):
    sample = _measured(db)
    (v1,) = sample_versions(db, sample)
    assert main(["results", "amend", sample, "--ferritin", ">10000", "--ferritin-unit", "ng/mL",
                 "--reason", "lab report corrected: ferritin above the assay range", "--user", "dm1",
                 "--db", str(db)]) == 0
    printed = capsys.readouterr().out
    assert f"sample {sample}: version 2 kept" in printed and "-> MALS" in printed
    old, new = sample_versions(db, sample)
    assert old == dataclasses.replace(v1, latest_version=2)  # version 1 unchanged
    assert (new.version, new.kind, new.user, new.reason) == (2, "amendment", "dm1",
                                                             "lab report corrected: ferritin above the assay range")
    assert new.based_on == old.row and new.run_id == old.run_id and new.current and not old.current
    assert (new.ferritin_text, new.ferritin_unit, new.ferritin_ng_ml, new.phenotype) == (">10000", "ng/mL",
                                                                                          10000.0, "MALS")
    assert new.hladr_abc == old.hladr_abc and new.sha256 == old.sha256 and new.calibration_id == old.calibration_id
    assert new.content["based_on"] == old.result_id and new.content["tube"] == old.content["tube"]
    entry = audit_entries(db, sample_id=sample)[-1]
    assert (entry.action, entry.user, entry.reason) == ("result_amended", "dm1", new.reason)
    assert entry.old["ferritin_text"] == old.ferritin_text and entry.new["ferritin_text"] == ">10000"
    assert entry.old["phenotype"] == old.phenotype and entry.new["phenotype"] == "MALS"
    assert verify_audit(db).ok


def test_without_a_reason_nothing_is_amended(db, capsys):
    sample = _measured(db)
    assert main(["results", "amend", sample, "--ferritin", "5000", "--db", str(db)]) == 2
    assert "--reason" in capsys.readouterr().err
    assert main(["results", "amend", sample, "--ferritin", "5000", "--reason", "  ", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "needs a reason" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(ConfigError, match="needs a reason"):
        amend_result(db, sample, ferritin_text="5000", ferritin_unit=None, reason="", user="x")
    assert len(sample_versions(db, sample)) == 1
    assert [e.action for e in audit_entries(db, sample_id=sample)] == ["result_stored"]


@pytest.mark.parametrize("args, words", [
    (["NOPE", "--ferritin", "10"], "no sample NOPE"),
    (["{sample}", "--ferritin", "{same}", "--ferritin-unit", "{unit}"], "nothing to amend"),
    (["{sample}", "--ferritin", "lots"], "not amended"),
    (["{sample}", "--ferritin", "-5"], "not amended"),
])
def test_what_cannot_be_amended_is_one_line_and_changes_nothing(db, capsys, args, words):
    sample = _measured(db)
    (v1,) = sample_versions(db, sample)
    args = [a.format(sample=sample, same=v1.ferritin_text, unit=v1.ferritin_unit) for a in args]
    assert main(["results", "amend", *args, "--reason", "test", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert len(sample_versions(db, sample)) == 1 and verify_audit(db).ok


def test_the_unit_stays_unless_given_and_each_amendment_builds_on_the_last(db):
    sample = _measured(db)
    (v1,) = sample_versions(db, sample)
    amend_result(db, sample, ferritin_text="4420", ferritin_unit=None, reason="typo", user="a")
    amend_result(db, sample, ferritin_text="9931.75", ferritin_unit="pmol/L", reason="reported in pmol/L", user="b")
    v1, v2, v3 = sample_versions(db, sample)
    assert v2.ferritin_unit == v1.ferritin_unit and v2.based_on == v1.row and v3.based_on == v2.row
    assert v2.phenotype in ("immunoparalysis", "intermediate")  # exactly 4420 ng/mL is not MALS
    assert v3.phenotype == "MALS" and v3.ferritin_ng_ml > 4420  # 9931.75 pmol/L is just above 4420 ng/mL
    assert verify_audit(db).ok


def test_a_missing_store_is_not_created(tmp_path, capsys):
    missing = tmp_path / "none.sqlite"
    assert main(["results", "amend", "P001", "--ferritin", "10", "--reason", "x", "--db", str(missing)]) == 2
    assert not missing.exists()


# ------------------------------------------------------------- the record, pure

RECORD = {
    "sample_id": "S1", "hladr_abc": 4000.0, "ferritin_text": "abc", "ferritin_unit": "", "ferritin_ng_ml": None,
    "phenotype": "indeterminate", "phenotype_reasons": ["x"], "qc": "warn", "ruleset": load_rules().label,
    "flags": [dataclasses.asdict(flag("ferritin_unusable", problem="not a number")),
              dataclasses.asdict(flag("monocytes_low", n=2500, limit=3000))],
}


def test_the_phenotype_is_called_again_by_the_rule_table():
    rules = load_rules()
    for text in ("4420", "4420.1", ">5000", "<20", ""):
        rec = amended_record(RECORD, ferritin_text=text, ferritin_unit="ng/mL", rules=rules)
        call = call_phenotype(4000.0, parse_ferritin(text, "ng/mL", rules=rules), rules=rules)
        assert (rec["phenotype"], rec["phenotype_reasons"]) == (call.label, list(call.reasons))
    assert amended_record(RECORD, ferritin_text="4420", ferritin_unit="ng/mL", rules=rules)["phenotype"] == \
        "immunoparalysis"
    assert amended_record(RECORD, ferritin_text="4420.1", ferritin_unit="ng/mL", rules=rules)["phenotype"] == "MALS"


def test_a_usable_ferritin_removes_the_unusable_flag_and_qc_follows_the_flags():
    rec = amended_record(RECORD, ferritin_text="100", ferritin_unit="ng/mL", rules=load_rules())
    assert [f["code"] for f in rec["flags"]] == ["monocytes_low"] and rec["qc"] == "warn"
    assert RECORD["flags"][0]["code"] == "ferritin_unusable"  # the argument is not changed
    only = {**RECORD, "flags": RECORD["flags"][:1]}
    assert amended_record(only, ferritin_text="100", ferritin_unit="ng/mL", rules=load_rules())["qc"] == "pass"


def test_a_result_of_another_rule_set_version_is_not_amended():
    with pytest.raises(ConfigError, match="re-analyse"):
        rules_of({**RECORD, "ruleset": "immunosep-2025@1"})
    with pytest.raises(ConfigError):
        rules_of({**RECORD, "ruleset": "no-such-rules@1"})
    assert rules_of(RECORD).label == RECORD["ruleset"]


def test_an_amended_ferritin_sets_ferritin_missing_as_a_run_would():
    rules = load_rules()
    missing = amended_record(RECORD, ferritin_text="", ferritin_unit="ng/mL", rules=rules)
    assert [f["code"] for f in missing["flags"]] == ["monocytes_low", "ferritin_missing"]
    assert missing["flags"][-1] == dataclasses.asdict(flag("ferritin_missing"))
    assert missing["qc"] == "warn" and missing["phenotype"] == "indeterminate"  # info: the qc stays
    given = amended_record(missing, ferritin_text="100", ferritin_unit="ng/mL", rules=rules)
    assert [f["code"] for f in given["flags"]] == ["monocytes_low"] and given["phenotype"] == "immunoparalysis"


def test_an_amended_result_without_hladr_says_why():
    failed = {**RECORD, "hladr_abc": None,
              "flags": [dataclasses.asdict(flag("monocytes_too_few", n=681, limit=1000))]}
    rec = amended_record(failed, ferritin_text="10000", ferritin_unit="ng/mL", rules=load_rules())
    assert rec["phenotype"] == "MALS" and rec["qc"] == "fail"
    assert rec["phenotype_reasons"] == ["ferritin 10000 ng/mL > 4420", "HLA-DR not measured (681 monocytes < 1000)"]
