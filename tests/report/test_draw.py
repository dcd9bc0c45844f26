"""The report's pictures: one reused drawer draws each sample exactly as a new one would, on any
number of processes; axes ticks as a cytometrist reads them."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from hladr.report import ReportRun, ReportSample, sample_pngs
from hladr.report.draw import SampleDrawer, _asinh_ticks, _linear_ticks, _rgb, draw_samples


def _axis(ch: str, scale: str, lo: float, hi: float) -> dict:
    return {"channel": ch, "label": f"{ch} label", "scale": scale, "cofactor": 262.144 if scale == "asinh" else None,
            "range": [lo, hi]}


def _step(rng, name: str, parent: str, kept: bool, lines: list) -> dict:
    dens = rng.poisson(rng.uniform(0.5, 30.0), size=(64, 64)).astype(np.uint32)
    step = {"name": name, "title": name, "parent": parent,
            "x": _axis("FSC-A", "linear", 0, 2.6e5 * rng.uniform(0.5, 1)),
            "y": _axis("CD14", "asinh", -1.0, 7.0 + rng.uniform()), "density": dens, "count_key": name,
            "lines": lines}
    if kept:
        k = np.zeros_like(dens)
        a = int(rng.integers(5, 40))
        k[a:a + 15, a:a + 12] = dens[a:a + 15, a:a + 12]
        step["kept"] = k
    return step


def _sample(sample_id: str, seed: int, *, n_steps: int, kept: bool, hist: bool, median: float | None) -> ReportSample:
    rng = np.random.default_rng(seed)
    names = ["cells", "singlets", "leukocytes", "monocytes_cd45_ssc", "monocytes", "extra"][:n_steps]
    parents = ["all events"] + names[:-1]
    lines = [[["seg", 1e4, 0, 1e4, 2e5]], [["x", 3.0]], [["y", 4.0], ["x", 2.0]], [], [], []]
    steps = [_step(rng, n, p, kept, lines[k]) for k, (n, p) in enumerate(zip(names, parents, strict=True))]
    fig = {"steps": steps, "manual": False}
    if hist:
        fig["abc_hist"] = {"counts": rng.poisson(50 * (seed + 1), size=60).tolist(), "log10_edges": [1.0, 6.0]}
    counts = {"events": 100_000, **{n: int(rng.integers(1000, 90_000)) for n in names}}
    rec = {"sample_id": sample_id, "file": f"{sample_id}.fcs", "qc": "pass" if median else "fail",
           "monocyte_count": counts.get("monocytes"), "hladr_abc": median, "gate_counts": counts, "flags": []}
    return ReportSample(record=rec, figure=fig)


SAMPLES = [
    _sample("A", 0, n_steps=4, kept=True, hist=True, median=12000.0),
    _sample("B", 1, n_steps=4, kept=False, hist=False, median=None),  # a failed gate: all events, no kept
    _sample("C", 2, n_steps=3, kept=True, hist=True, median=None),  # no CD45 step; HLA-DR not reported
    _sample("D", 3, n_steps=5, kept=True, hist=True, median=800.0),  # an exported-and-corrected chain: five gates
    _sample("F", 5, n_steps=6, kept=True, hist=True, median=9000.0),  # a longer template path: 4 + the monocytes
    _sample("E", 4, n_steps=2, kept=True, hist=True, median=3000.0),
]


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def test_each_sample_picture_is_a_png_of_the_report_size():
    for s in SAMPLES:
        assert _png_size(draw_samples([(s.record, s.figure)])[0]) == (960, 614)  # 10 x 6.4 in at 96 dpi


@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [1, 0, 3, 2, 5, 4], [3, 4, 0, 5, 1, 2]])
def test_a_reused_drawer_draws_each_sample_as_a_new_one_does(order):
    fresh = [draw_samples([(s.record, s.figure)])[0] for s in SAMPLES]
    assert len(set(fresh)) == len(fresh)  # the samples really differ
    drawer = SampleDrawer()
    try:
        for k in order:
            assert drawer.png(SAMPLES[k].record, SAMPLES[k].figure) == fresh[k], f"{SAMPLES[k].record['sample_id']}"
    finally:
        drawer.close()


def test_a_sample_without_figure_data_has_no_picture():
    bare = ReportSample(record={"sample_id": "X", "qc": "fail"}, figure={})
    run = ReportRun(run_id="r", samples=(bare, SAMPLES[0]), calibration={})
    pngs = sample_pngs(run, processes=1)
    assert pngs[0] is None and pngs[1] == draw_samples([(SAMPLES[0].record, SAMPLES[0].figure)])[0]


def test_pictures_drawn_on_several_processes_are_the_ones_drawn_on_one():
    bare = ReportSample(record={"sample_id": "X", "qc": "fail"}, figure={})
    run = ReportRun(run_id="r", samples=(bare, *SAMPLES * 4, bare), calibration={})  # 20 pictures: 2 processes
    one = sample_pngs(run, processes=1)
    two = sample_pngs(run, processes=2)
    assert one == two
    assert one[0] is None and one[-1] is None and all(one[1:-1])


def test_kept_events_are_coloured_and_the_others_grey():
    s = SAMPLES[0].figure["steps"][0]
    from matplotlib import colormaps

    img = _rgb(s, colormaps["viridis"])
    dens, kept = s["density"].T, s["kept"].T
    grey = (dens > 0) & (kept == 0)
    assert np.all(img[grey][:, 0] == img[grey][:, 1]) and np.all(img[grey][:, 1] == img[grey][:, 2])
    coloured = kept > 0
    assert coloured.any() and np.all(np.ptp(img[coloured], axis=1) > 0.05)  # not grey
    assert np.all(img[dens == 0] == 1.0)  # empty bins white


def test_asinh_ticks_are_zero_and_powers_of_ten_at_their_place():
    cof = 262.144
    pos, lab = _asinh_ticks(-1.0, 7.0, cof)
    assert lab == ["0", "10³", "10⁴", "10⁵"]
    np.testing.assert_allclose(pos, np.arcsinh(np.array([0, 1e3, 1e4, 1e5]) / cof))
    pos, lab = _asinh_ticks(-4.0, 7.0, cof)
    assert lab[0] == "−10³" and pos[0] == pytest.approx(np.arcsinh(-1e3 / cof))


def test_linear_ticks_read_in_thousands():
    pos, lab = _linear_ticks(-5000.0, 262_143.0)
    assert lab == ["0", "100K", "200K"] and pos == [0.0, 100_000.0, 200_000.0]
    assert _linear_ticks(0.0, 0.0) == ([], [])


def test_a_narrow_asinh_range_gets_ticks_at_two_and_five_times_ten():
    cof = 262.144
    pos, lab = _asinh_ticks(float(np.arcsinh(12_000 / cof)), float(np.arcsinh(60_000 / cof)), cof)
    assert lab == ["2×10⁴", "5×10⁴"]
    np.testing.assert_allclose(pos, np.arcsinh(np.array([2e4, 5e4]) / cof))
