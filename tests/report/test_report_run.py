"""The example run's report: the HTML and PDF say what results.csv says, sample by sample, and
``hladr report OUT_DIR`` draws them again byte for byte from the folder's records."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import pypdf
import pytest

from hladr.cli import main
from hladr.report import FIGURES_FILE


def _pdf_pages(path: Path) -> list[str]:
    return [p.extract_text() for p in pypdf.PdfReader(str(path)).pages]


def test_the_output_set_holds_both_reports_and_the_figure_data(example_report, example_doc):
    names = {p.name for p in example_report.iterdir()}
    assert {"report.html", "report.pdf", FIGURES_FILE, "results.json", "results.csv", "calibration.json"} <= names
    figs = json.loads((example_report / FIGURES_FILE).read_text(encoding="utf-8"))
    assert figs["run_id"] == example_doc["run_id"]
    assert [s["sample_id"] for s in figs["samples"]] == [s["sample_id"] for s in example_doc["samples"]]


def test_every_sample_has_its_section_with_the_gating_sequence(example_report, example_rows):
    page = (example_report / "report.html").read_text(encoding="utf-8")
    sections = re.findall(r'<section class="sample" id="s(\d+)"><h3>([^<]+) <span class="qc qc-(\w+)">', page)
    assert [(int(k), sid, qc) for k, sid, qc in sections] == [
        (k + 1, r["sample_id"], r["qc"]) for k, r in enumerate(example_rows)]
    images = re.findall(r'<img alt="gating of ([^"]*)" src="data:image/png;base64,([^"]+)"', page)
    assert [sid for sid, _ in images] == [r["sample_id"] for r in example_rows]
    for _, b64 in images:
        assert base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n"
    assert 'alt="bead calibration"' in page


def test_the_summary_puts_failures_then_warnings_first_and_counts_them(example_report, example_rows):
    page = (example_report / "report.html").read_text(encoding="utf-8")
    summary = page.split('<table class=summary>')[1].split("</table>")[0]
    linked = re.findall(r'<a href="#s(\d+)">([^<]+)</a>', summary)
    qcs = [example_rows[int(k) - 1]["qc"] for k, _ in linked]
    assert sorted(qcs, key=["fail", "warn", "pass"].index) == qcs and len(linked) == len(example_rows)
    assert [sid for _, sid in linked] == [example_rows[int(k) - 1]["sample_id"] for k, _ in linked]
    for q in ("pass", "warn", "fail"):
        n = sum(r["qc"] == q for r in example_rows)
        assert re.search(rf'<span id=n-{q}><span class="qc qc-{q}">{q}</span> {n}</span>', page), q


def test_the_report_names_markers_and_shows_the_reference_lines_words(example_report):
    page = (example_report / "report.html").read_text(encoding="utf-8")
    assert "5,000, 8,000 and 15,000 AB/C" in page
    for fact in ("run folder", "instrument", "serial number", "operator", "bead lot", "calibration", "software",
                 "rule set"):
        assert f"<td>{fact}" in page, fact
    figs = json.loads((example_report / FIGURES_FILE).read_text(encoding="utf-8"))
    steps = figs["samples"][0]["figure"]["steps"]
    assert [s["name"] for s in steps] == ["cells", "singlets", "leukocytes", "monocytes"]
    assert steps[3]["x"]["label"].startswith("CD14") and steps[2]["x"]["label"].startswith("CD45")


def test_the_pdf_has_a_run_page_and_one_page_per_sample(example_report, example_rows):
    pages = _pdf_pages(example_report / "report.pdf")
    assert len(pages) == 1 + len(example_rows)
    assert "HLA-DR run report" in pages[0]
    for q in ("pass", "warn", "fail"):
        assert f"{q} {sum(r['qc'] == q for r in example_rows)}" in pages[0]
    for page, row in zip(pages[1:], example_rows, strict=True):
        assert page.startswith(f"{row['sample_id']}   QC {row['qc']}"), page[:80]
        assert row["file"] in page


def test_hladr_report_draws_the_same_report_again_without_the_tubes(example_report, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(example_report, out)
    before = {n: (out / n).read_bytes() for n in ("report.html", "report.pdf")}
    for n in before:
        (out / n).unlink()
    assert main(["report", str(out)]) == 0
    assert "nothing was re-analysed" in capsys.readouterr().out
    for n, data in before.items():
        assert (out / n).read_bytes() == data, f"{n} differs from the run's"


def test_hladr_report_refuses_figures_of_another_run(example_report, tmp_path, capsys):
    out = tmp_path / "mixed"
    shutil.copytree(example_report, out)
    figs = json.loads((out / FIGURES_FILE).read_text(encoding="utf-8"))
    figs["run_id"] = "20260101T000000Z-000000000000"
    (out / FIGURES_FILE).write_text(json.dumps(figs), encoding="utf-8")
    html = (out / "report.html").read_bytes()
    assert main(["report", str(out)]) == 2
    err = capsys.readouterr().err
    assert "mixes two runs" in err and len(err.strip().splitlines()) == 1
    assert (out / "report.html").read_bytes() == html  # nothing replaced


def test_hladr_report_without_figure_data_draws_the_words_and_says_so(example_report, tmp_path, capsys):
    out = tmp_path / "old"
    shutil.copytree(example_report, out)
    (out / FIGURES_FILE).unlink()
    assert main(["report", str(out)]) == 0
    assert f"{FIGURES_FILE} not in" in capsys.readouterr().err
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "gating of" not in page and page.count('<section class="sample"') == 10
    assert f"{FIGURES_FILE} not in" in page


@pytest.mark.parametrize("what", ["missing", "not_json"])
def test_hladr_report_of_a_folder_that_is_not_an_output_is_one_line(tmp_path, capsys, what):
    if what == "not_json":
        (tmp_path / "results.json").write_text("{not json", encoding="utf-8")
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "results.json" in err[0] and "Traceback" not in err[0]
