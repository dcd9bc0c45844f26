"""The report's figure data: its 2-D histogram is NumPy's, bin for bin; each gating step's plot holds
the events its parent kept and, coloured, those it kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hladr.figures import histogram2d as _histogram2d
from hladr.pipeline import analyze_sample
from hladr.results import RunConfig, SampleInput


@pytest.mark.parametrize("seed", range(6))
def test_histogram2d_is_numpys(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 5000))
    x, y = rng.normal(5, 1, n), rng.normal(6, 1, n)
    xr = [4.0, 6.0] if seed % 2 else ([float(x.min()), float(x.max())] if n else [0.0, 1.0])
    yr = [5.0, 7.0]
    if n > 20:
        x[:3] = [xr[0], xr[1], 100.0]  # on both outer edges, and outside
        y[3:20] = np.linspace(*yr, 49)[rng.integers(0, 49, 17)]  # on inner edges
    np.testing.assert_array_equal(_histogram2d(x, y, 48, xr, yr), np.histogram2d(x, y, bins=48, range=[xr, yr])[0])
    z = np.full(7, 3.0)  # a range of zero width, as histogram2d widens it
    np.testing.assert_array_equal(_histogram2d(z, z, 4, [3.0, 3.0], [3.0, 3.0]),
                                  np.histogram2d(z, z, bins=4, range=[[3.0, 3.0], [3.0, 3.0]])[0])


# --------------------------------------------------------------------------- the gating steps' figure data
TEMPLATE = Path(__file__).parents[1] / "data" / "monocytes_template.xml"


def _tube(tmp_path, seed: int, n: int, **kw) -> Path:
    from hladr.simulate.tube_events import simulate_sample_events
    from hladr.simulate.tube_files import write_tube

    ev = simulate_sample_events(rng=np.random.default_rng(seed), hladr_abc=3000, n_events=n, **kw)
    path = tmp_path / f"t{seed}.fcs"
    write_tube(path, ev, sample_id=f"t{seed}")
    return path


def _kept(step) -> int:
    return int(np.asarray(step["kept"]).sum())


@pytest.mark.parametrize(("instrument", "profile"), [("canto", "healthy"), ("cytoflex", "sepsis"),
                                                     ("navios", "severe-sepsis")])
def test_each_step_shows_exactly_the_events_the_gate_kept(tmp_path, instrument, profile):
    """Below 50,000 events every event is binned: each plot's kept events are the gate's count for that step
    (binned inside the plot's range: at most the 0.5 % + 0.1 % tails outside it are off the picture)."""
    res = analyze_sample(SampleInput(path=str(_tube(tmp_path, 7, 40_000, instrument=instrument, profile=profile))),
                         None)
    steps = res.figure["steps"]
    assert [s["name"] for s in steps] == ["cells", "singlets", "leukocytes", "monocytes"]
    assert [s["parent"] for s in steps] == ["all events", "cells", "singlets", "leukocytes"]
    for s in steps:
        n = res.gate_counts[s["name"]]
        parent = res.gate_counts["events" if s["parent"] == "all events" else s["parent"]]
        assert 0.99 * n <= _kept(s) <= n, (s["name"], _kept(s), n)
        assert 0.99 * parent <= int(np.asarray(s["density"]).sum()) <= parent
    assert steps[2]["lines"] == [["x", pytest.approx(np.arcsinh(res.gate["cd45_min"] / res.gate["cofactors"][3]))]]
    assert steps[3]["x"]["scale"] == "asinh" and steps[0]["x"]["scale"] == "linear"


def test_a_failed_gate_shows_all_events_in_the_four_views(tmp_path):
    path = _tube(tmp_path, 3, 20_000)  # the pipeline passes no gate when the gate failed
    from hladr.channels import find_panel
    from hladr.fcs.read import read_events
    from hladr.figures import gating_steps

    ev = read_events(str(path))
    steps = gating_steps(ev, find_panel(ev, require=("cd14",)), None, None)
    assert [s["name"] for s in steps] == ["cells", "singlets", "leukocytes", "monocytes"]
    assert all("kept" not in s and s["parent"] == "all events" for s in steps)
    assert all(int(np.asarray(s["density"]).sum()) >= 0.99 * ev.n_events for s in steps)


def test_a_templates_path_is_drawn_gate_by_gate(tmp_path):
    path = _tube(tmp_path, 11, 30_000)
    res = analyze_sample(SampleInput(path=str(path)), None, RunConfig(gates_file=str(TEMPLATE)))
    steps = res.figure["steps"]
    assert res.figure["manual"] is True
    assert [s["name"] for s in steps] == res.gate["gate_path"]
    for s in steps:
        assert 0.99 * res.gate_counts[s["name"]] <= _kept(s) <= res.gate_counts[s["name"]], s["name"]
