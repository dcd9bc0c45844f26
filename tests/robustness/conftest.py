"""Shared fixtures of the robustness tests: one small simulated run and its clean outputs.

Small on purpose (3 sample tubes of 20,000 events): every test here is about what
happens around the analysis (faults, kills, locks, arguments), not about its numbers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> Path:
    """A simulated run folder: beads.fcs, three sample tubes and worklist.csv."""
    from hladr.simulate import simulate_run

    d = tmp_path_factory.mktemp("robust_run")
    simulate_run(d, seed=11, instrument="canto", n_samples=3, events_per_tube=20_000)
    return d


@pytest.fixture(scope="session")
def clean_outputs(small_run, tmp_path_factory) -> Path:
    """The outputs of an undisturbed ``hladr run`` of :func:`small_run` (the reference)."""
    from hladr.cli import main

    out = tmp_path_factory.mktemp("robust_clean") / "out"
    assert main(["run", str(small_run), "--out", str(out), "--quiet"]) in (0, 1)
    return out


@pytest.fixture
def run_copy(small_run, tmp_path) -> Path:
    """A private copy of :func:`small_run` that a test may change."""
    dst = tmp_path / "run"
    shutil.copytree(small_run, dst)
    return dst
