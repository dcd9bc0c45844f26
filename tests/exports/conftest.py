"""Fixtures of the export tests: the bundled example run, analysed once, and its four exports."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MAPPINGS = REPO / "examples" / "mappings"
FORMATS = ("csv", "redcap", "odm", "fhir")


@pytest.fixture(scope="session")
def example_out(tmp_path_factory) -> Path:
    """The output folder of ``hladr run example_fcs`` (as the README runs it, from the repository)."""
    from hladr.cli import main

    out = tmp_path_factory.mktemp("exports_example") / "out"
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        assert main(["run", "example_fcs", "--out", str(out), "--quiet"]) in (0, 1)  # P009 fails (too few monocytes)
    finally:
        os.chdir(cwd)
    return out


@pytest.fixture(scope="session")
def exported(example_out, tmp_path_factory) -> dict[str, Path]:
    """The example run exported in all four formats through the command line; format -> file."""
    from hladr.cli import main

    d = tmp_path_factory.mktemp("exports_files")
    files = {}
    for fmt in FORMATS:
        out = d / f"example.{fmt}"
        args = ["export", str(example_out), "--format", fmt, "--out", str(out)]
        if fmt in ("redcap", "odm"):
            args += ["--mapping", str(MAPPINGS / f"{fmt}.toml")]
        assert main(args) == 0
        files[fmt] = out
    return files


@pytest.fixture(scope="session")
def results_rows(example_out) -> dict[str, dict]:
    """results.csv of the example run as rows keyed by sample_id (the reference of every comparison)."""
    rows = list(csv.DictReader(io.StringIO((example_out / "results.csv").read_text(encoding="utf-8"))))
    assert len({r["sample_id"] for r in rows}) == len(rows) == 10
    return {r["sample_id"]: r for r in rows}


@pytest.fixture(scope="session")
def results_doc(example_out) -> dict:
    return json.loads((example_out / "results.json").read_text(encoding="utf-8"))


@pytest.fixture
def run_copy(example_out, tmp_path):
    """A writable copy of the example output folder and a function rewriting its results.json samples."""
    dst = tmp_path / "run"
    shutil.copytree(example_out, dst)

    def edit(change) -> Path:
        doc = json.loads((dst / "results.json").read_text(encoding="utf-8"))
        change(doc["samples"])
        (dst / "results.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
        return dst

    return dst, edit
