"""The run report's per-sample figures: one reused figure draws each sample exactly as a new one would."""

import base64
import re
import struct

import numpy as np
import pytest

from hladr.report import SampleFigure, render_report, sample_figure_png, sample_figures
from hladr.results import SampleResult


def _sample(sample_id: str, *, seed: int, hist: bool, median: float | None, gated: bool) -> SampleResult:
    rng = np.random.default_rng(seed)
    density = rng.poisson(rng.uniform(0.5, 30.0), size=(48, 48)).tolist()
    figure = {"density": density, "x_range": [0.2 + seed, 6.0 + seed], "y_range": [2.0, 7.0 + seed / 10],
              "x_label": f"x{seed}", "y_label": f"y{seed}"}
    if hist:
        figure["abc_hist"] = {"counts": rng.poisson(50 * (seed + 1), size=60).tolist(), "log10_edges": [1.0, 6.0]}
    gate = {}
    if gated:  # the gated monocytes' outline (a contour: a new artist each time, removed for the next sample)
        g = np.zeros((48, 48), dtype=int)
        g[30 + seed: 40, 20: 28 + seed] = 5
        figure["gated"] = g.tolist()
    return SampleResult(sample_id=sample_id, subject_id="", visit="", file=f"{sample_id}.fcs", sha256=None,
                        qc="pass", phenotype="intermediate", phenotype_reasons=(), monocyte_count=1000 + seed,
                        hladr_abc=median, gate=gate, figure=figure)


SAMPLES = [
    _sample("A", seed=0, hist=True, median=12000.0, gated=True),
    _sample("B", seed=1, hist=False, median=None, gated=False),
    _sample("C", seed=2, hist=True, median=None, gated=True),
    _sample("D", seed=3, hist=True, median=800.0, gated=False),
]


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def test_each_sample_figure_is_a_png_of_the_report_size():
    for r in SAMPLES:
        assert _png_size(sample_figure_png(r)) == (504, 201)  # 7.0 x 2.8 in at 72 dpi


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [3, 2, 1, 0], [1, 0, 3, 2], [2, 0, 1, 3]])
def test_reused_figure_draws_each_sample_as_a_new_figure_does(order):
    fresh = [sample_figure_png(r) for r in SAMPLES]
    assert len(set(fresh)) == len(fresh)  # the samples really differ
    drawer = SampleFigure()
    try:
        for k in order:
            assert drawer.png(SAMPLES[k]) == fresh[k], f"sample {SAMPLES[k].sample_id} after {order}"
    finally:
        drawer.close()


def test_sample_without_figure_data_has_no_image():
    bare = SampleResult(sample_id="X", subject_id="", visit="", file="x.fcs", sha256=None, qc="fail",
                        phenotype="", phenotype_reasons=())
    assert sample_figure_png(bare) is None
    page = render_report([bare, SAMPLES[0]], None, notes=[])
    images = re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)"', page)
    assert [alt for alt, _ in images] == ["A"]
    assert base64.b64decode(images[0][1]) == sample_figure_png(SAMPLES[0])


def test_figures_drawn_on_several_processes_are_the_ones_drawn_on_one():
    bare = SampleResult(sample_id="X", subject_id="", visit="", file="x.fcs", sha256=None, qc="fail",
                        phenotype="", phenotype_reasons=())
    results = [bare] + SAMPLES * 5 + [bare]  # 20 figures: enough for 2 processes
    one = sample_figures(results, processes=1)
    two = sample_figures(results, processes=2)
    assert one == two
    assert one[0] is None and one[-1] is None
    assert one[1:-1] == [sample_figure_png(r) for r in SAMPLES * 5]
