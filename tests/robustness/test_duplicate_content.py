"""The same file content under two names in one run (issue 12, left over from the worklist work).

Before: a tube copied under another name (same bytes, same SHA-256) and listed for
another sample was analysed as two patients with one set of data, silently: both
rows passed with the same HLA-DR value and a call each. Now both fail
(``duplicate_file_content``) and carry no HLA-DR value or HLA-DR-dependent call;
under one identity (sample, subject and visit equal) both warn
(``duplicate_file_content_same_sample``).
"""

from __future__ import annotations

import shutil

import pytest
from robust_helpers import CLEAN_WORKLIST, result_rows, run_cli, strict_json, write_worklist

from hladr.flags import FLAGS, Flag
from hladr.results import SampleResult

try:  # the module of the checks across tubes (absent before this change)
    from hladr.batch.checks import RUN_CODES, flag_run
except ImportError:  # pragma: no cover - only when checking the tests against the old code
    RUN_CODES, flag_run = (), None


def _result(sample_id: str, sha: str | None, *, abc: float = 3200.0, ferritin: str = "100", subject: str = "S1",
            qc: str = "pass") -> SampleResult:
    return SampleResult(sample_id=sample_id, subject_id=subject, visit="D1", file=f"{sample_id}.fcs", sha256=sha,
                        qc=qc, phenotype="immunoparalysis", phenotype_reasons=("mHLA-DR < 5000",),
                        monocyte_count=4000, hladr_abc=abc, hladr_abc_geomean=abc, ferritin_ng_ml=float(ferritin),
                        ferritin_text=ferritin, ferritin_unit="ng/mL")


def _codes(r: SampleResult) -> list[str]:
    return [f.code for f in r.flags]


def test_a_copy_listed_for_another_sample_fails_both_and_withholds_hladr():
    a, b, c = flag_run([_result("P001", "ab" * 32), _result("P009", "ab" * 32, ferritin="5000"),
                        _result("P002", "cd" * 32)])
    for r in (a, b):
        assert r.qc == "fail" and _codes(r) == ["duplicate_file_content"]
        assert r.hladr_abc is None and r.hladr_abc_geomean is None
        assert r.phenotype not in ("immunoparalysis", "intermediate")
    assert "P009.fcs" in a.flags[0].message and "P001.fcs" in b.flags[0].message
    assert a.phenotype == "indeterminate"
    assert b.phenotype == "MALS"  # ferritin alone still decides MALS, as for any failed tube
    assert b.phenotype_reasons == ("ferritin 5000 ng/mL > 4420", f"HLA-DR not measured ({b.flags[0].message})")
    assert c == _result("P002", "cd" * 32)  # untouched


def test_a_copy_under_the_same_sample_warns_and_keeps_its_value():
    a, b = flag_run([_result("P001", "ab" * 32), _result("P001", "ab" * 32)])
    for r in (a, b):
        assert r.qc == "warn" and r.hladr_abc == 3200.0 and r.phenotype == "immunoparalysis"
        assert _codes(r) == ["duplicate_sample_id", "duplicate_file_content_same_sample"]


def test_same_sample_id_but_another_subject_is_not_the_same_identity():
    a, b = flag_run([_result("P001", "ab" * 32), _result("P001", "ab" * 32, subject="S2")])
    assert a.qc == b.qc == "fail" and "duplicate_file_content" in _codes(a)


def test_unreadable_tubes_are_not_compared_and_a_fail_stays_a_fail():
    failed = SampleResult(sample_id="X", subject_id="", visit="", file="x.fcs", sha256=None, qc="fail",
                          phenotype="indeterminate", phenotype_reasons=(),
                          flags=(Flag("unreadable", "x.fcs: not an FCS file", "fail"),))
    out = flag_run([failed, failed, _result("P1", "ab" * 32)])
    assert out[0].qc == "fail" and _codes(out[0]) == ["unreadable", "duplicate_sample_id"]
    assert out[2] == _result("P1", "ab" * 32)


def test_each_run_flag_is_defined_once_with_a_valid_severity():
    assert len(RUN_CODES) == len(set(RUN_CODES))
    assert set(RUN_CODES) == {"duplicate_sample_id", "duplicate_file_content", "duplicate_file_content_same_sample"}
    assert {FLAGS[code].severity for code in RUN_CODES} <= {"warn", "fail"}
    assert FLAGS["duplicate_file_content"].severity == "fail"


def test_a_copied_tube_in_a_run_fails_both_rows_and_leaves_the_others_alone(sim_run, tmp_path, clean_rows):
    run = tmp_path / "run"
    shutil.copytree(sim_run, run)
    shutil.copyfile(run / "P001_HLADR.fcs", run / "P009_HLADR.fcs")  # the same bytes under another name
    wl = write_worklist(tmp_path / "wl.csv", [*CLEAN_WORKLIST, "P009_HLADR.fcs,sample,P009,ISP-0999,D1,100,ng/mL"])
    out = tmp_path / "out"
    rc, stdout, err = run_cli(["run", str(run), "--out", str(out), "--worklist", str(wl), "--quiet"])
    assert rc == 1, err  # a sample failed
    rows = result_rows(out)
    for f in ("P001_HLADR.fcs", "P009_HLADR.fcs"):
        assert rows[f]["qc"] == "fail" and "duplicate_file_content" in rows[f]["flags"].split(";"), rows[f]
        assert rows[f]["hladr_abc"] == "" and rows[f]["phenotype"] not in ("immunoparalysis", "intermediate")
    for f in ("P002_HLADR.fcs", "P003_HLADR.fcs"):
        assert rows[f] == clean_rows[f]
    doc = strict_json(out / "results.json")
    msgs = [f["message"] for s in doc["samples"] for f in s["flags"] if f["code"] == "duplicate_file_content"]
    assert len(msgs) == 2 and "P009_HLADR.fcs" in msgs[0] and "P001_HLADR.fcs" in msgs[1]


@pytest.mark.parametrize("severity", ["warn", "fail"])
def test_severity_table_drives_qc(severity, monkeypatch):
    """The table is the one place a run flag's severity is decided."""
    import dataclasses

    import hladr.flags as fl

    changed = dataclasses.replace(FLAGS["duplicate_sample_id"], severity=severity)
    monkeypatch.setattr(fl, "FLAGS", {**FLAGS, "duplicate_sample_id": changed})
    a, _ = flag_run([_result("P001", "ab" * 32), _result("P001", "cd" * 32)])
    assert a.qc == severity
