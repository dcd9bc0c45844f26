"""One run id across the output set (issue 12, left over from the output-set work).

Before: the four files of a run carried nothing in common, so a reader that opened
OUT/results.csv and, later, OUT/results.json (while the next run switched its set in)
could pair two runs without noticing. Now every file of a set carries the same
``run_id``; results.csv has it as its last column, after every column it had before.
"""

from __future__ import annotations

import csv
import json
import re

import pytest
from robust_helpers import run_cli, write_worklist

from hladr.batch.worklist import PROVENANCE_COLUMNS, SPEC_RESULT_COLUMNS, read_worklist
from hladr.errors import ConfigError

RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{12}")


def _ids(out) -> dict[str, set[str]]:
    """The run id(s) each file of the set in ``out`` carries."""
    with open(out / "results.csv", newline="", encoding="utf-8") as fh:
        csv_ids = {r["run_id"] for r in csv.DictReader(fh)}
    html = (out / "report.html").read_text(encoding="utf-8")
    meta = re.search(r'<meta name="hladr-run-id" content="([^"]*)">', html)
    return {
        "results.csv": csv_ids,
        "results.json": {json.loads((out / "results.json").read_text())["run_id"]},
        "calibration.json": {json.loads((out / "calibration.json").read_text())["run_id"]},
        "report.html": {meta.group(1)} if meta else set(),
    }


def test_every_file_of_the_set_carries_one_run_id(clean_outputs):
    ids = _ids(clean_outputs)
    assert all(len(v) == 1 for v in ids.values()), ids
    run_id = ids["results.json"].pop()
    assert RUN_ID.fullmatch(run_id), run_id
    assert all(v == {run_id} for k, v in ids.items() if k != "results.json"), ids
    assert f"Run id: <code>{run_id}</code>" in (clean_outputs / "report.html").read_text()


def test_run_id_is_the_last_column_and_the_spec_columns_keep_their_places(clean_outputs):
    header = (clean_outputs / "results.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header[: len(SPEC_RESULT_COLUMNS)] == list(SPEC_RESULT_COLUMNS)
    assert header[len(SPEC_RESULT_COLUMNS): len(SPEC_RESULT_COLUMNS) + len(PROVENANCE_COLUMNS)] \
        == list(PROVENANCE_COLUMNS)
    assert header[-1] == "run_id" and header.count("run_id") == 1


def test_two_runs_can_be_told_apart_and_a_reused_calibration_says_where_it_came_from(small_run, clean_outputs,
                                                                                      tmp_path):
    """A second run (reusing the first one's calibration.json) has its own id in all four files."""
    out = tmp_path / "out"
    rc, _, err = run_cli(["run", str(small_run), "--out", str(out), "--quiet",
                          "--calibration", str(clean_outputs / "calibration.json")])
    assert rc in (0, 1), err
    first, second = _ids(clean_outputs)["results.json"].pop(), _ids(out)["results.json"].pop()
    assert first != second
    assert all(v == {second} for v in _ids(out).values())
    cal = json.loads((out / "calibration.json").read_text())
    assert cal["calibration_run_id"] == first  # the fit was made by the first run


def test_a_worklist_column_named_run_id_is_refused(tmp_path):
    wl = write_worklist(tmp_path / "wl.csv", ["P001_HLADR.fcs,sample,P001,S,D1,10,ng/mL,forged"],
                        header="file,role,sample_id,subject_id,visit,ferritin,ferritin_unit,Run_ID")
    with pytest.raises(ConfigError, match="'run_id' is written by hladr"):
        read_worklist(wl)
