"""hladr validate as a lab runs it (in-process here, on the development copy: --allow-development): the
record's three files, the same figures twice, a rule table with a wrong threshold failing by name."""

from __future__ import annotations

import json
import re
import textwrap

import pytest

from hladr.cli import main
from hladr.validate import command, oq_runs

VOLATILE = {"machine", "platform", "user", "started", "finished", "duration_s"}


@pytest.fixture(scope="module")
def two_quick(tmp_path_factory):
    """Two --quick validations of this copy, one after the other."""
    out = []
    for k in range(2):
        folder = tmp_path_factory.mktemp(f"validation{k}") / "v"
        code = main(["validate", "--out", str(folder), "--quick", "--allow-development", "--quiet"])
        out.append((code, folder))
    return out


def test_quick_passes_and_writes_the_record(two_quick):
    code, folder = two_quick[0]
    assert code == 0
    assert sorted(p.name for p in folder.iterdir()) == ["validation.html", "validation.json", "validation.pdf"]
    doc = json.loads((folder / "validation.json").read_text())
    assert doc["passed"] is True and doc["failed_checks"] == []
    ids = [c["id"] for c in doc["checks"]]
    for cid in ("iq.version", "iq.python", "iq.dependencies", "iq.files", "iq.rules", "iq.lots",
                "oq.phenotype_boundaries", "oq.fcs_reading", "oq.gatingml", "oq.bad_file", "oq.bad_worklist",
                "oq.accuracy.abc", "oq.accuracy.monocytes", "oq.accuracy.phenotype", "oq.accuracy.wrong_calls",
                "oq.accuracy.fails", "oq.calibration"):
        assert cid in ids, cid
    facts = doc["facts"]
    assert facts["seed"] == command.RELEASE_SEED == command.release_seed(facts["hladr_version"])
    assert facts["ruleset"] == "immunosep-2025@5" and facts["rule_table"].startswith("installed:")
    # every profile on every instrument was analysed; the accuracy table says so
    acc = next(t for t in doc["tables"] if t["title"].startswith("Accuracy"))
    cells = {(r[0], r[1]) for r in acc["rows"]}
    assert {(p, i) for p in oq_runs.PROFILES for i in oq_runs.INSTRUMENTS} <= cells
    files = next(c for c in doc["checks"] if c["id"] == "iq.files")
    assert files["value"] == "development install" and "--allow-development" in files["detail"]


def test_two_quick_runs_give_the_same_figures(two_quick):
    a, b = (json.loads((f / "validation.json").read_text()) for _, f in two_quick)
    for doc in (a, b):
        assert VOLATILE <= set(doc["facts"])
        for key in VOLATILE:
            del doc["facts"][key]
    assert a == b


def test_html_is_self_contained_with_sign_off(two_quick):
    _, folder = two_quick[0]
    page = (folder / "validation.html").read_text()
    assert "<script" not in page.lower() and "http://" not in page and "https://" not in page
    for field in ("Performed by", "Machine", "Date", "Signature", "Reviewed by"):
        assert field in page, field
    assert "PASSED, but on a development install" in page
    digest = re.search(r"validation\.json SHA-256 ([0-9a-f]{64})", page).group(1)
    import hashlib

    assert digest == hashlib.sha256((folder / "validation.json").read_bytes()).hexdigest()


def test_pdf_is_an_a4_record_with_sign_off_on_its_last_page(two_quick):
    from pypdf import PdfReader

    _, folder = two_quick[0]
    pdf = PdfReader(str(folder / "validation.pdf"))
    assert len(pdf.pages) >= 2
    for page in pdf.pages:
        assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == (595, 842)  # A4
    first, last = pdf.pages[0].extract_text(), pdf.pages[-1].extract_text()
    assert "hladr validation record" in first and "PASSED" in first and "iq.files" in first
    for field in ("Sign-off", "Performed by", "Machine", "Signature", "Reviewed by"):
        assert field in last, field
    assert f"page {len(pdf.pages)} of {len(pdf.pages)}" in last


def test_an_existing_record_is_never_replaced(two_quick, capsys):
    _, folder = two_quick[0]
    before = (folder / "validation.json").read_bytes()
    assert main(["validate", "--out", str(folder), "--quick", "--allow-development"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds validation.json" in err[0]
    assert (folder / "validation.json").read_bytes() == before


# the simulated runs are not what these tests are about: one small tube per run (the accuracy checks may fail)
TINY = oq_runs.Plan("tiny", 1, 1, (("healthy", 20_000), ("sepsis", 20_000), ("severe-sepsis", 20_000)))


def test_a_rule_table_with_a_wrong_threshold_fails_and_names_the_check(tmp_path):
    from importlib import resources

    shipped = resources.files("hladr").joinpath("data/rules/immunosep-2025.toml").read_text()
    assert "mals_ferritin_ng_ml = 4420.0" in shipped
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(shipped.replace("mals_ferritin_ng_ml = 4420.0", "mals_ferritin_ng_ml = 4400.0"))
    record = command.run_validation(quick=True, seed=5, rules_file=str(wrong), allow_development=True, plan=TINY)
    failed = {c.id: c for c in record.failed}
    assert set(failed) >= {"iq.rules", "oq.phenotype_boundaries"}
    assert "ferritin '4420' ng/mL: MALS, expected immunoparalysis" in failed["oq.phenotype_boundaries"].detail
    assert "NOT the installed table" in record.facts["rule_table"]
    # the installed table given as --rules: the boundaries pass, the rule-set check still fails (a table given
    # with --rules never qualifies an installation)
    same = tmp_path / "same.toml"
    same.write_text(shipped)
    record = command.run_validation(quick=True, seed=5, rules_file=str(same), allow_development=True, plan=TINY)
    failed = [c.id for c in record.failed]
    assert "iq.rules" in failed and "oq.phenotype_boundaries" not in failed


@pytest.mark.parametrize(("content", "words"), [
    (None, "cannot be read"),
    ("[ruleset\n", "not a TOML rule table"),
    ('[ruleset]\nid = "x"\nversion = "1"\n', "section [phenotype] is missing"),
])
def test_an_unusable_rules_file_is_one_line_and_exit_2(tmp_path, capsys, content, words):
    path = tmp_path / "rules.toml"
    if content is not None:
        path.write_text(content)
    code = main(["validate", "--out", str(tmp_path / "v"), "--quick", "--rules", str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0], err
    assert not (tmp_path / "v").exists()


def test_help_names_the_options(capsys):
    assert main(["validate", "--help"]) == 0
    out = capsys.readouterr().out
    for opt in ("--out", "--quick", "--seed", "--allow-development", "--rules", "--quiet"):
        assert opt in out
    assert textwrap.dedent("exit status") in out
