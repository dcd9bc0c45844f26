"""Issue 16's whole-run comparison: one bead tube + one 1M-event tube, as whole processes on a quiet machine.

Usage::

    .venv/bin/python benchmarks/bench_whole_run.py [--repeats 5] [--events 1000000]

Three commands, interleaved (A B C A B C ...) after one untimed run each (bytecode, Numba and
template caches written, as after a first use), each in a fresh interpreter:

- ``hladr run DIR --out OUT --quiet --gates TEMPLATE`` (report.html and report.pdf included);
- ``hladr run DIR --out OUT --quiet`` (the automated gate);
- ``script_flowkit_run.py``: FlowKit doing the same calibration and template gating, without a report.

Prints each one's median wall time and peak RSS, and FlowKit's median over hladr's (target: >= 4x).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from _common import BENCH, HLADR, PYTHON, ROOT, TEMPLATE, child_env, loadavg, run_child, tube_run, warm_page_cache

TARGET = 4.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--events", type=int, default=1_000_000)
    args = ap.parse_args()
    run_dir = tube_run(args.events)
    for f in ("beads.fcs", "P001_HLADR.fcs"):
        warm_page_cache(run_dir / f)
    work = Path(tempfile.mkdtemp(prefix="hladr-whole-run-"))
    env = child_env(False, {"HLADR_DB": str(work / "store.sqlite")})
    counter = iter(range(10**6))

    def hladr(*extra: str) -> list[str]:  # a new output folder each run: nothing moved aside, nothing kept
        return [HLADR, "run", str(run_dir), "--out", str(work / f"out{next(counter)}"), "--quiet",
                "--reason", "benchmark", *extra]

    cases = {
        "hladr run, template": lambda: hladr("--gates", str(TEMPLATE)),
        "hladr run, automated": lambda: hladr(),
        "FlowKit script": lambda: [PYTHON, str(BENCH / "script_flowkit_run.py"), str(TEMPLATE),
                                   str(run_dir / "beads.fcs"), str(run_dir / "P001_HLADR.fcs")],
    }
    load = loadavg()
    for make in cases.values():  # untimed: caches written
        run_child(make(), env=env, cwd=ROOT, parse_json=False)
    walls: dict[str, list[float]] = {k: [] for k in cases}
    rss: dict[str, float] = {k: 0.0 for k in cases}
    for _ in range(args.repeats):
        for name, make in cases.items():
            r = run_child(make(), env=env, cwd=ROOT, parse_json=False)
            if r["returncode"] not in (0, 1):
                sys.exit(f"{name} failed: {r.get('stderr')}")
            walls[name].append(r["wall_s"])
            rss[name] = max(rss[name], r["maxrss_mb"])
    shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in walls.items()}
    print(f"one bead tube + one {args.events:,}-event tube, {args.repeats} interleaved runs each; "
          f"load {load} before, {loadavg()} after")
    for name in cases:
        print(f"  {name:24s} median {med[name]:6.2f} s  (min {min(walls[name]):.2f}, max {max(walls[name]):.2f})  "
              f"peak RSS {rss[name]:.0f} MB")
    fk = med["FlowKit script"]
    for name in ("hladr run, template", "hladr run, automated"):
        print(f"  FlowKit / {name}: {fk / med[name]:.2f}x  (target >= {TARGET:.0f}x)")


if __name__ == "__main__":
    main()
