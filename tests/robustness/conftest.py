"""Shared inputs of the robustness tests: one small simulated run and its clean result (issue 12)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def sim_run(tmp_path_factory) -> Path:
    """Beads and three sample tubes, 40k events each: every sample passes or warns (exit 0)."""
    from hladr.simulate import simulate_run

    d = tmp_path_factory.mktemp("robust_run")
    simulate_run(d, seed=3, instrument="canto", n_samples=3, events_per_tube=40_000)
    return d


@pytest.fixture(scope="session")
def clean_rows(sim_run, tmp_path_factory) -> dict[str, dict[str, str]]:
    """results.csv rows of the unmodified run, by file."""
    from robust_helpers import run_cli

    out = tmp_path_factory.mktemp("robust_clean") / "out"
    rc, _, err = run_cli(["run", str(sim_run), "--out", str(out), "--quiet"])
    assert rc == 0, err
    with open(out / "results.csv", newline="", encoding="utf-8") as fh:
        return {r["file"]: r for r in csv.DictReader(fh)}
