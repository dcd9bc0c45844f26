"""Shared fixtures of the robustness tests (issue 12): small simulated runs and their clean outputs.

Small on purpose: every test here is about what happens around the analysis (faults, kills,
locks, arguments, hostile input), not about its numbers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def _simulated_run(tmp_path_factory, name: str, *, seed: int, events: int) -> Path:
    """A canto run folder of beads and three sample tubes with a worklist."""
    from hladr.simulate.simulator import simulate_run

    d = tmp_path_factory.mktemp(name)
    simulate_run(d, seed=seed, instrument="canto", n_samples=3, events_per_tube=events)
    return d


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> Path:
    """A simulated run folder: beads.fcs, three sample tubes of 20,000 events and worklist.csv."""
    return _simulated_run(tmp_path_factory, "robust_run", seed=11, events=20_000)


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


@pytest.fixture(scope="session")
def sim_run(tmp_path_factory) -> Path:
    """Beads and three sample tubes, 40k events each: every sample passes or warns (exit 0)."""
    return _simulated_run(tmp_path_factory, "robust_sim_run", seed=3, events=40_000)


@pytest.fixture(scope="session")
def clean_rows(sim_run, tmp_path_factory) -> dict[str, dict[str, str]]:
    """results.csv rows of the unmodified run, by file (without ``run_id``: see ``robust_helpers.result_rows``)."""
    from robust_helpers import result_rows, run_cli

    out = tmp_path_factory.mktemp("robust_clean_rows") / "out"
    rc, _, err = run_cli(["run", str(sim_run), "--out", str(out), "--quiet"])
    assert rc == 0, err
    return result_rows(out)
