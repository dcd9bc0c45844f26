"""The report drawn by the background process is the report drawn in the main process, byte for byte."""

from __future__ import annotations

from unittest import mock

from hladr.report import read_output, render_report
from hladr.report.background import BackgroundReport


def test_the_background_process_draws_the_same_report(example_report):
    run, missing = read_output(example_report)
    want = render_report(run, missing=missing, processes=1)
    with mock.patch("hladr.report.background.usable_cores", return_value=2), BackgroundReport() as bg:
        assert bg._pool is not None
        bg.calibration(run.calibration, run.bead_figure)
        got = bg.render(run, missing=missing)
    assert got[0] == want[0] and got[1] == want[1]


def test_a_calibration_that_changed_after_it_was_drawn_is_drawn_again(example_report):
    run, missing = read_output(example_report)
    want = render_report(run, missing=missing, processes=1)
    with mock.patch("hladr.report.background.usable_cores", return_value=2), BackgroundReport() as bg:
        bg.calibration({**run.calibration, "levels": []}, {})  # not this run's: its figure is not used
        got = bg.render(run, missing=missing)
    assert got == want


def test_on_one_core_the_report_is_drawn_in_the_main_process(example_report):
    run, missing = read_output(example_report)
    with mock.patch("hladr.report.background.usable_cores", return_value=1), BackgroundReport() as bg:
        assert bg._pool is None
        bg.calibration(run.calibration, run.bead_figure)
        assert bg.render(run, missing=missing) == render_report(run, missing=missing, processes=1)
