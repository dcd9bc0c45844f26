"""Fixtures of the export tests: the bundled example run, analysed once, and its four exports, read from the
output folder and from the results store (every test of the exported files runs on both)."""

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
        # P009 fails (too few monocytes): exit 1
        assert main(["run", "example_fcs", "--out", str(out), "--quiet", "--db", str(out.parent / "hladr.sqlite")]) \
            in (0, 1)
    finally:
        os.chdir(cwd)
    return out


@pytest.fixture(scope="session", params=["folder", "store"])
def exported(request, example_out, tmp_path_factory) -> dict[str, Path]:
    """The example run exported in all four formats through the command line, from its output folder or from
    the results store (by its run id); format -> file."""
    from hladr.cli import main

    d = tmp_path_factory.mktemp(f"exports_files_{request.param}")
    run_id = json.loads((example_out / "results.json").read_text(encoding="utf-8"))["run_id"]
    store = ["--db", str(example_out.parent / "hladr.sqlite")]
    source = [str(example_out)] if request.param == "folder" else [run_id, *store]
    files = {}
    for fmt in FORMATS:
        out = d / f"example.{fmt}"
        args = ["export", *source, "--format", fmt, "--out", str(out)]
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
