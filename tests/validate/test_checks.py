"""The check functions of hladr validate on their own: each passes on what is right and fails, naming the
thing at fault, on what is wrong (no simulated run here: see test_validate_cli.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil

import pytest

from hladr.rules import load_rules
from hladr.validate import iq, oq_runs, oq_units
from hladr.validate.oq_runs import RunOutcome, TubeOutcome

RULES = load_rules()


# --------------------------------------------------------------------------- IQ: installed files
def _installed(tmp_path):
    pkg = tmp_path / "hladr"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("x = 1\n")
    (pkg / "data" / "table.toml").write_text("a = 1\n")
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  hladr/{p.relative_to(pkg).as_posix()}\n"
             for p in sorted(pkg.rglob("*")) if p.is_file()]
    (pkg / iq.FILE_LIST).write_text("".join(lines))
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"cache")  # caches are not package files
    return pkg


def test_files_match_their_list(tmp_path):
    (c,) = iq.check_files(_installed(tmp_path))
    assert c.passed and c.value == "2 of 2 files match"


def test_a_changed_a_missing_and_an_added_file_are_named(tmp_path):
    pkg = _installed(tmp_path)
    (pkg / "data" / "table.toml").write_text("a = 2\n")
    (c,) = iq.check_files(pkg)
    assert not c.passed and c.detail == "changed: hladr/data/table.toml"
    (pkg / "__init__.py").unlink()
    (pkg / "extra.py").write_text("")
    (c,) = iq.check_files(pkg)
    assert not c.passed and c.value == "0 of 2 files match"
    assert c.detail == "changed: hladr/data/table.toml; missing: hladr/__init__.py; not shipped: hladr/extra.py"


def test_a_development_install_fails_unless_allowed(tmp_path):
    pkg = _installed(tmp_path)
    (pkg / iq.FILE_LIST).unlink()
    (c,) = iq.check_files(pkg)
    assert not c.passed and c.value == "development install" and "--allow-development" in c.detail
    (c,) = iq.check_files(pkg, allow_development=True)
    assert c.passed and "does not qualify an installation" in c.detail


def test_a_damaged_list_fails(tmp_path):
    pkg = _installed(tmp_path)
    (pkg / iq.FILE_LIST).write_text("not a digest\n")
    (c,) = iq.check_files(pkg)
    assert not c.passed and "line 1" in c.detail


def test_dependencies_are_those_declared():
    (c,) = iq.check_dependencies()
    deps = iq.dependency_versions()
    assert {"numpy", "flowkit", "numba"} <= {n for n, *_ in deps}
    assert c.passed == all(ok for *_, ok in deps)


# --------------------------------------------------------------------------- OQ: the phenotype rule
def test_phenotype_boundaries_pass_with_the_shipped_rules():
    (c,), table = oq_units.check_phenotype_boundaries(RULES)
    assert c.passed and c.value == f"{len(oq_units.BOUNDARY_CASES)} of {len(oq_units.BOUNDARY_CASES)} cases"
    assert len(table.rows) == len(oq_units.BOUNDARY_CASES)


@pytest.mark.parametrize(("field", "value", "named"), [
    ("mals_ferritin_ng_ml", 4400.0, "ferritin '4420' ng/mL: MALS, expected immunoparalysis"),
    ("immunoparalysis_hladr_abc", 5001.0, "AB/C 5000.0, ferritin '4420' ng/mL: immunoparalysis, expected intermediate"),
    ("ferritin_pmol_per_ng", 2.0, "ferritin '9931.74' pmol/L: MALS, expected intermediate"),
])
def test_a_wrong_threshold_fails_and_names_the_case(field, value, named):
    rules = dataclasses.replace(RULES, **{field: value})
    (c,), table = oq_units.check_phenotype_boundaries(rules)
    assert not c.passed and named in c.detail
    assert any(row[4] == "FAIL" for row in table.rows)


# --------------------------------------------------------------------------- OQ: FCS reading, Gating-ML
def test_fcs_reading_names_a_damaged_case(tmp_path):
    folder = tmp_path / "validation"
    shutil.copytree(oq_units.data_folder(), folder)
    (c,), _ = oq_units.check_fcs_reading(folder)
    assert c.passed and c.value == "11 of 11 files"
    raw = bytearray((folder / "fcs" / "f64_big_fcs20.fcs").read_bytes())
    raw[-8:] = b"\x00" * 8  # the last event's last value
    (folder / "fcs" / "f64_big_fcs20.fcs").write_bytes(bytes(raw))
    (folder / "fcs" / "navios.fcs").write_bytes(b"not an FCS file")
    (c,), table = oq_units.check_fcs_reading(folder)
    assert not c.passed and c.value == "9 of 11 files"
    assert "f64_big_fcs20.fcs: values differ" in c.detail and "navios.fcs: not read" in c.detail


def test_gatingml_names_a_gate_that_differs(tmp_path):
    folder = tmp_path / "validation"
    shutil.copytree(oq_units.data_folder(), folder)
    (c,) = oq_units.check_gatingml(folder)
    assert c.passed and c.value == "49 of 49 gates exact on 13367 events"
    xml = folder / "gatingml" / "gml_all_gates.xml"
    text = xml.read_text()
    assert text.count('gating:id="Range1"') == 1
    # the Range1 gate's lower limit moved: that gate (and its dependants) must be named
    start = text.index('gating:id="Range1"')
    end = text.index("</gating:RectangleGate>", start)
    part = text[start:end]
    moved = part.replace('gating:min="100"', 'gating:min="400"', 1)
    assert moved != part
    xml.write_text(text[:start] + moved + text[end:])
    (c,) = oq_units.check_gatingml(folder)
    assert not c.passed and "Range1:" in c.detail


# --------------------------------------------------------------------------- OQ: accuracy and calibration
def _tube(sample_id, true_abc, abc, *, monocytes=3000, true_monocytes=3000, expected="intermediate",
          phenotype="intermediate", qc="pass"):
    return TubeOutcome("sepsis", "canto", 1, sample_id, true_abc, true_monocytes, expected, abc, monocytes,
                       phenotype, qc, () if abc is not None else ("monocytes_too_few",))


def _run(tubes, slope=1.0, intercept=-0.5, accepted=True):
    return RunOutcome("sepsis", "canto", 1, 0, accepted, slope, intercept, 1.0, -0.5, tuple(tubes))


def _by_id(checks):
    return {c.id: c for c in checks}


def test_accuracy_within_limits():
    tubes = [_tube(f"P{i}", 6000, 6000 * 1.01) for i in range(10)]
    checks, table = oq_runs.accuracy_checks([_run(tubes)], RULES)
    assert all(c.passed for c in checks), checks
    assert table.rows[-1][:5] == ("all", "all", "10", "0", "10")


def test_a_wrong_call_fails_and_is_named():
    tubes = [_tube(f"P{i}", 6000, 6000) for i in range(9)]
    tubes.append(_tube("P9", 5200, 4900, expected="intermediate", phenotype="immunoparalysis"))
    c = _by_id(oq_runs.accuracy_checks([_run(tubes)], RULES)[0])
    assert not c["oq.accuracy.wrong_calls"].passed and c["oq.accuracy.wrong_calls"].value == "1"
    assert "P9: immunoparalysis, expected intermediate" in c["oq.accuracy.wrong_calls"].detail


def test_fails_below_1000_true_monocytes_are_not_held_against_the_pipeline():
    tubes = [_tube(f"P{i}", 6000, 6000) for i in range(8)]
    tubes += [_tube(f"F{i}", 3000, None, monocytes=None, true_monocytes=600, expected="immunoparalysis",
                    phenotype="indeterminate", qc="fail") for i in range(4)]
    c = _by_id(oq_runs.accuracy_checks([_run(tubes)], RULES)[0])
    assert c["oq.accuracy.fails"].passed and c["oq.accuracy.fails"].value == "0/8 (0%)"
    assert c["oq.accuracy.phenotype"].value == "8/8 (100%)"
    # the same fails with enough monocytes count
    tubes = [dataclasses.replace(t, true_monocytes=2000) if t.sample_id.startswith("F") else t for t in tubes]
    c = _by_id(oq_runs.accuracy_checks([_run(tubes)], RULES)[0])
    assert not c["oq.accuracy.fails"].passed and "F0: monocytes_too_few" in c["oq.accuracy.fails"].detail


def test_inaccurate_abc_and_counts_fail():
    tubes = [_tube(f"P{i}", 6000, 6000 * (1.08 if i < 3 else 1.0), monocytes=3000 if i else 2000) for i in range(10)]
    c = _by_id(oq_runs.accuracy_checks([_run(tubes)], RULES)[0])
    assert not c["oq.accuracy.abc"].passed and c["oq.accuracy.abc"].value == "7/10 (70%)"
    assert "P0" in c["oq.accuracy.abc"].detail and "+8.0%" in c["oq.accuracy.abc"].detail
    assert c["oq.accuracy.monocytes"].value == "9/10 (90%)" and c["oq.accuracy.monocytes"].passed


def test_calibration_against_truth():
    tubes = [_tube("P1", 6000, 6000)]
    ((c,), table) = oq_runs.calibration_checks([_run(tubes, slope=1.01, intercept=-0.49)], RULES)
    assert c.passed and table.rows[0][3] == "yes"
    ((c,), _) = oq_runs.calibration_checks([_run(tubes, slope=1.05)], RULES)
    assert not c.passed and "slope +0.0500" in c.detail
    ((c,), _) = oq_runs.calibration_checks([_run(tubes, accepted=False)], RULES)
    assert not c.passed and "not accepted" in c.detail


def test_run_seeds_cover_every_profile_and_instrument():
    seeds = oq_runs.run_seeds(100, oq_runs.QUICK)
    assert {(p, i) for p, i, _ in seeds} == {(p, i) for p in oq_runs.PROFILES for i in oq_runs.INSTRUMENTS}
    assert [s for *_, s in seeds] == list(range(100, 109))
    assert len(oq_runs.run_seeds(100, oq_runs.FULL)) == 9 * oq_runs.FULL.runs_per_cell
