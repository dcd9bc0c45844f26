"""Fixtures of the store's tests: small simulated runs (three tubes of 20,000 events) and a run in a store."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest


def simulated_run(folder: Path, *, seed: int, prefix: str = "P") -> Path:
    """A canto run folder: beads and three sample tubes; sample ids ``{prefix}001`` ... in the worklist."""
    from hladr.simulate.simulator import simulate_run

    simulate_run(folder, seed=seed, instrument="canto", n_samples=3, events_per_tube=20_000)
    if prefix != "P":
        wl = folder / "worklist.csv"
        with wl.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        for r in rows:
            if r["sample_id"].startswith("P0"):
                r["sample_id"] = prefix + r["sample_id"][1:]
        with wl.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return folder


@pytest.fixture(scope="session")
def run_a(tmp_path_factory) -> Path:
    return simulated_run(tmp_path_factory.mktemp("store_run_a"), seed=21)


@pytest.fixture(scope="session")
def run_b(tmp_path_factory) -> Path:
    """Another day, its samples named Q001 ... (no sample in common with :func:`run_a`)."""
    return simulated_run(tmp_path_factory.mktemp("store_run_b"), seed=22, prefix="Q")
