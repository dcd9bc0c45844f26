"""The report's drawing time: per sample on one core (HTML and PDF together), and a whole run on every core.

Usage::

    .venv/bin/python benchmarks/bench_report.py [--samples 96] [--events 100000] [--repeats 3]

A simulated run of N sample tubes (septic and healthy mixed) is analysed once with ``hladr run``;
its output folder is then re-drawn from its records (as ``hladr report`` does), timing each part
in this process: the sample PNGs on one process and on every usable core, the calibration figure,
the HTML page and the PDF. Medians of ``--repeats``; matplotlib's import is paid before timing.
Issue 15's target: at most 0.3 s per sample on one core for HTML and PDF together.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out" / "report"
HLADR = str(Path(sys.executable).with_name("hladr"))


def _median_time(fn, repeats: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=96)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    run_dir = OUT / f"run_{args.samples}x{args.events}"
    out = OUT / f"out_{args.samples}x{args.events}"
    if not (out / "results.json").is_file():
        if not run_dir.is_dir():
            subprocess.run([HLADR, "simulate", str(run_dir), "--samples", str(args.samples), "--events",
                            str(args.events), "--profile", "sepsis", "--seed", "15"], check=True)
        subprocess.run([HLADR, "run", str(run_dir), "--out", str(out), "--quiet", "--workers", "2",
                        "--db", str(OUT / "store.sqlite"), "--reason", "benchmark"], check=False)

    from hladr._parallel import usable_cores
    from hladr.report import read_output, sample_pngs
    from hladr.report.draw import calibration_png
    from hladr.report.html import render_html
    from hladr.report.pdf import render_pdf

    run, _ = read_output(out)
    n = len(run.samples)
    sample_pngs(run, processes=1)  # imports and first-draw costs paid here
    t_png1, pngs = _median_time(lambda: sample_pngs(run, processes=1), args.repeats)
    t_pngn, _ = _median_time(lambda: sample_pngs(run, processes=None), args.repeats)
    t_cal, cal = _median_time(lambda: calibration_png(run.calibration, run.bead_figure), args.repeats)
    t_html, _ = _median_time(lambda: render_html(run, pngs, cal), args.repeats)
    t_pdf, _ = _median_time(lambda: render_pdf(run, pngs, cal), args.repeats)
    cores = usable_cores()
    one_core = t_png1 + t_pdf + t_html
    print(f"report of {n} samples ({args.events:,} events each), {cores} usable cores, load {os.getloadavg()[0]:.2f}")
    print(f"  sample PNGs, one process      {1000 * t_png1 / n:6.1f} ms/sample")
    print(f"  PDF pages (PNGs placed)       {1000 * t_pdf / n:6.1f} ms/sample")
    print(f"  HTML page                     {1000 * t_html / n:6.1f} ms/sample")
    print(f"  one core, HTML + PDF          {1000 * one_core / n:6.1f} ms/sample   (target <= 300)")
    print(f"  calibration figure            {1000 * t_cal:6.1f} ms/run")
    print(f"  sample PNGs on {cores} processes    {t_pngn:6.2f} s  vs {t_png1:.2f} s on one: x{t_png1 / t_pngn:.2f}")


if __name__ == "__main__":
    main()
