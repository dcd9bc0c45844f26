"""Accuracy against simulator ground truth (issue 2 acceptance).

Simulated runs that are not the bundled example (other seeds, each instrument
convention, 20+ patients): hladr_abc within 5 % of truth for >= 95 % of samples
and within 10 % for all; phenotype equal to truth whenever the true AB/C is
more than 10 % away from 5000; calibration slope within 0.02 of the simulated one.
"""

from __future__ import annotations

import csv
import json

import pytest

from hladr.cli import main

INSTRUMENTS = ["canto", "cytoflex", "navios"]
N_PATIENTS = 20


@pytest.fixture(scope="module", params=INSTRUMENTS)
def analysed_run(request, tmp_path_factory):
    from hladr.simulate.simulator import simulate_run

    inst = request.param
    run_dir = tmp_path_factory.mktemp(f"run_{inst}")
    out = tmp_path_factory.mktemp(f"out_{inst}")
    seed = 100 + INSTRUMENTS.index(inst)
    simulate_run(run_dir, seed=seed, instrument=inst, n_samples=N_PATIENTS, events_per_tube=40_000)
    status = main(["run", str(run_dir), "--out", str(out), "--quiet"])
    with open(run_dir / "truth.csv", newline="") as fh:
        truth = {r["sample_id"]: r for r in csv.DictReader(fh)}
    with open(out / "results.csv", newline="") as fh:
        results = {r["sample_id"]: r for r in csv.DictReader(fh)}
    sim = json.loads((run_dir / "truth.json").read_text())
    cal = json.loads((out / "calibration.json").read_text())
    return inst, status, truth, results, sim, cal


def test_every_sample_reported(analysed_run):
    inst, status, truth, results, _, cal = analysed_run
    assert cal["accepted"], cal.get("reasons")
    assert set(results) == set(truth)
    failed = {k: r["flags"] for k, r in results.items() if r["qc"] == "fail"}
    assert not failed, f"{inst}: failed samples {failed}"
    assert status == 0


def test_hladr_abc_accuracy(analysed_run):
    inst, _, truth, results, _, _ = analysed_run
    errors = {}
    for sid, t in truth.items():
        got = float(results[sid]["hladr_abc"])
        errors[sid] = abs(got / float(t["true_hladr_abc"]) - 1.0)
    within5 = sum(e <= 0.05 for e in errors.values()) / len(errors)
    worst = max(errors.items(), key=lambda kv: kv[1])
    assert within5 >= 0.95, f"{inst}: only {within5:.0%} within 5 % (errors {errors})"
    assert worst[1] <= 0.10, f"{inst}: {worst[0]} off by {worst[1]:.1%}"


def test_phenotype_matches_truth_away_from_the_threshold(analysed_run):
    inst, _, truth, results, _, _ = analysed_run
    checked = 0
    for sid, t in truth.items():
        true_abc = float(t["true_hladr_abc"])
        if abs(true_abc / 5000.0 - 1.0) <= 0.10:
            continue
        checked += 1
        assert results[sid]["phenotype"] == t["expected_phenotype"], (inst, sid, t, results[sid])
    assert checked >= N_PATIENTS // 2


def test_calibration_slope_matches_the_simulated_response(analysed_run):
    inst, _, _, _, sim, cal = analysed_run
    true_slope = sim["beads"]["calibration_slope"] if "beads" in sim else sim["calibration_slope"]
    assert cal["fit"]["slope"] == pytest.approx(true_slope, abs=0.02), inst


def test_monocyte_counts_close_to_truth(analysed_run):
    inst, _, truth, results, _, _ = analysed_run
    for sid, t in truth.items():
        got, true = int(results[sid]["monocyte_count"]), int(t["true_monocytes"])
        # the gate holds the CD14-bright monocytes (classical and intermediate) and few others; the
        # non-classical CD14-dim monocytes (5-12 % in health) are not counted, as in a hand-drawn gate
        assert 0.85 * true <= got <= 1.05 * true, (inst, sid, got, true)
