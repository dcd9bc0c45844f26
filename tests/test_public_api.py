"""The public API in ``hladr/__init__``: every name resolves to its module's object, loading lazily."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import hladr

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(hladr._PUBLIC))
def test_each_public_name_is_its_modules_object(name):
    assert getattr(hladr, name) is getattr(importlib.import_module(hladr._PUBLIC[name]), name)
    assert name in hladr.__all__ and name in dir(hladr)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        _ = hladr.nothing_here


def test_import_hladr_loads_neither_numba_nor_scikit_learn():
    code = "import sys, hladr; print(any(m.split('.')[0] in ('numba', 'sklearn', 'matplotlib') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_one_tube_through_the_public_api():
    """The README's two calls: a bead calibration, then one tube -- the example run's P001 value."""
    import csv

    from hladr.beads.lots import find_lot

    cal = hladr.calibrate_beads(str(REPO / "example_fcs" / "beads.fcs"), find_lot("96597"))
    assert isinstance(cal, hladr.Calibration) and cal.accepted
    res = hladr.analyze_sample(hladr.SampleInput(path=str(REPO / "example_fcs" / "P001_HLADR.fcs")), cal)
    assert isinstance(res, hladr.SampleResult)
    text = (REPO / "tests" / "expected" / "example_run" / "results.csv").read_text()
    want = next(r for r in csv.DictReader(text.splitlines()) if r["file"] == "P001_HLADR.fcs")
    assert res.monocyte_count == int(want["monocyte_count"]) and round(res.hladr_abc) == int(want["hladr_abc"])
