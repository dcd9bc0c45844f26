"""The example run's output folder, made once for the report's tests."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from hladr.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def example_report(tmp_path_factory) -> Path:
    """``hladr run example_fcs --out OUT`` as the README runs it (exit 1: P009 fails on purpose)."""
    out = tmp_path_factory.mktemp("report") / "out"
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        assert main(["run", "example_fcs", "--out", str(out), "--quiet", "--db", str(out.parent / "h.sqlite")]) == 1
    finally:
        os.chdir(cwd)
    return out


@pytest.fixture(scope="session")
def example_rows(example_report) -> list[dict]:
    return list(csv.DictReader(io.StringIO((example_report / "results.csv").read_text(encoding="utf-8"))))


@pytest.fixture(scope="session")
def example_doc(example_report) -> dict:
    return json.loads((example_report / "results.json").read_text(encoding="utf-8"))
