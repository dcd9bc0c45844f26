"""Automated monocyte gate on simulated tubes with known truth, and its building blocks."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from hladr.channels import find_panel
from hladr.compensate import compensate, spillover_of
from hladr.gate import GateFailure, density_peaks_2d, fit_monocyte_gate, valley_below_first_peak
from hladr.read import read_events


def _gate(path):
    ev = read_events(path)
    panel = find_panel(ev)
    ev = compensate(ev, spillover_of(ev))
    return ev, fit_monocyte_gate(ev, panel)


def test_monocytes_are_not_merged_with_granulocytes(tmp_path):
    """Regression: with a random EM start, this tube's monocytes (2058, high AB/C) were merged
    with the granulocytes (20,940 'monocytes', median AB/C 68). Density-peak starts keep them apart."""
    from hladr.simulate import simulate_run

    simulate_run(tmp_path, seed=301, instrument="canto", n_samples=20, events_per_tube=40_000)
    with open(tmp_path / "truth.csv", newline="") as fh:
        truth = {r["sample_id"]: r for r in csv.DictReader(fh)}
    ev, gate = _gate(tmp_path / "P004_HLADR.fcs")
    n = gate.apply(ev).n_monocytes
    assert abs(n / int(truth["P004"]["true_monocytes"]) - 1) < 0.03


def test_gate_kernel_and_reference_agree_on_a_real_tube(corpus):
    ev, gate = _gate(corpus / "flowWorkspaceData" / "a2004_O1T2pb05i_A2_A02.fcs")
    fast, ref = gate.apply(ev), gate.apply(ev, reference=True)
    np.testing.assert_array_equal(fast.mask, ref.mask)
    assert fast.counts == ref.counts


def test_density_peaks_find_separate_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [4.0, 1.0], [2.0, 5.0]])
    X = np.concatenate([rng.normal(c, 0.3, size=(n, 2)) for c, n in zip(centres, (6000, 3000, 400), strict=True)])
    peaks = density_peaks_2d(X)
    assert len(peaks) == 3
    for c in centres:   # every cluster, even the small one, has a peak near its centre
        assert np.min(np.linalg.norm(peaks - c, axis=1)) < 0.3
    assert np.linalg.norm(peaks[0] - centres[0]) < 0.3   # highest first


def test_valley_below_first_peak():
    rng = np.random.default_rng(1)
    debris = rng.normal(1.0, 0.3, 3000)
    cells = rng.normal(4.0, 0.3, 20000)
    t = valley_below_first_peak(np.concatenate([debris, cells]))
    assert t is not None and 1.8 < t < 3.2
    assert valley_below_first_peak(cells) is None        # one population: no valley, no cut


def test_no_cd14_population_is_a_failure_not_a_gate(tmp_path):
    from hladr.simulate import simulate_sample_tube

    path = tmp_path / "unstained.fcs"
    simulate_sample_tube(path, rng=np.random.default_rng(3), instrument="canto", hladr_abc=8000,
                         n_events=30_000, monocyte_fraction=0.0)
    _, gate = _gate(path)
    # without this check the granulocytes (CD14-dim, ~60 % of leukocytes) were taken as monocytes:
    # AB/C ~60, a false 'immunoparalysis'
    assert isinstance(gate, GateFailure) and gate.code == "monocytes_implausible"

    from hladr.run import SampleInput, analyze_sample

    r = analyze_sample(SampleInput(str(path), ferritin="300"), None)
    assert r.qc == "fail" and r.hladr_abc is None and r.phenotype == "indeterminate"
    assert "monocytes_implausible" in [f.code for f in r.flags]


@pytest.mark.parametrize("inst", ["canto", "cytoflex", "navios"])
def test_gate_counts_close_to_truth_for_each_instrument(tmp_path, inst):
    from hladr.simulate import simulate_sample_tube

    path = tmp_path / f"{inst}.fcs"
    truth = simulate_sample_tube(path, rng=np.random.default_rng(5), instrument=inst, hladr_abc=3000,
                                 n_events=40_000)
    ev, gate = _gate(path)
    n = gate.apply(ev).n_monocytes
    assert abs(n / truth.n_monocytes - 1) < 0.03
