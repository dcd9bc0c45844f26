"""Benchmark: the per-tube work of a run fanned out -- 1 local worker vs 2 local workers vs a 2-worker Dask
``LocalCluster`` (issue 16): tubes per second and scaling efficiency.

``N`` tubes (``--tubes``, default 1000) of 50,000 events each: ``--distinct`` simulated tubes (default 25)
named again and again, so that the data fit in the page cache and only the analysis is measured (the
checks across tubes, which would flag the copies, are not part of it). The calibration is fitted once
from the simulated bead tube. Each case runs in a fresh child process and times ``batch.daily._analyse_all``
as ``hladr run`` calls it -- start-up of its workers included, since a run pays it:

- ``1 worker``: in the process, one tube after another, one thread per tube (NUMBA/BLAS threads 1);
- ``2 workers``: ``--workers 2`` (a process pool, one thread per tube);
- ``LocalCluster 2x1``: ``--scheduler`` on a ``LocalCluster`` of 2 worker processes x 1 thread started
  before the clock and warmed by 4 untimed tubes (an existing cluster that has run before: its spawned
  workers have imported hladr and loaded Numba's cache, ~2-4 s, where the forked local workers inherit the
  parent's modules); once with the workers' environment the README advises (no ``MALLOC_TRIM_THRESHOLD_``),
  once with Dask's default.

Scaling efficiency = (tubes/s with 2) / (2 x tubes/s with 1). The results are compared: every case must
give the same values for every tube. Run: ``python benchmarks/bench_scale.py [--tubes N]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _common import OUT, PYTHON, child_env, loadavg, many_tube_run, run_child, table

EVENTS = 50_000
CASES = ("serial", "pool2", "cluster2", "cluster2-trim")
LABELS = {"serial": "1 worker", "pool2": "2 workers", "cluster2": "LocalCluster 2x1",
          "cluster2-trim": "LocalCluster 2x1, Dask's malloc"}
# Dask's nanny starts its workers with MALLOC_TRIM_THRESHOLD_=65536, which also fixes glibc's mmap threshold at
# 128 KiB: every array of a tube is then a fresh mmap and its pages faulted in again. The README advises workers
# without it (keeping the nanny's thread pins); "cluster2-trim" keeps Dask's default to show what it costs.


def _inputs(run_dir: Path, n: int):
    from hladr.results import SampleInput

    tubes = sorted(p for p in run_dir.glob("P*_HLADR.fcs"))
    return [SampleInput(path=str(tubes[k % len(tubes)]), sample_id=f"T{k:05d}", file_label=f"T{k:05d}.fcs")
            for k in range(n)]


def _fingerprint(results) -> list:
    return [(r.sample_id, r.sha256, r.qc, r.monocyte_count, r.hladr_abc, r.phenotype) for r in results]


def case(name: str, run_dir: Path, n: int) -> dict:
    """One case, in this (child) process: seconds for the N tubes, and their results' fingerprint."""
    from hladr.batch import daily
    from hladr.beads.lots import find_lot
    from hladr.beads.record import calibrate_beads
    from hladr.results import RunConfig

    config = RunConfig()
    calibration = calibrate_beads(str(run_dir / "beads.fcs"), find_lot("96597"), config)
    inputs = _inputs(run_dir, n)
    done, warmup = [], None
    if name.startswith("cluster2"):
        import dask
        from distributed import LocalCluster

        from hladr.batch.cluster import connect

        if name == "cluster2":
            dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None, worker_dashboard_address=None) as lc:
            with connect(lc.scheduler_address) as session:
                t0 = time.perf_counter()  # an existing cluster that has run before: its workers are warm
                daily._analyse_all(inputs[:4], calibration, config, 1, done.append, session=session)
                warmup = time.perf_counter() - t0
                t0 = time.perf_counter()
                results = daily._analyse_all(inputs, calibration, config, 1, done.append, session=session)
                seconds = time.perf_counter() - t0
    else:
        workers = 2 if name == "pool2" else 1
        t0 = time.perf_counter()
        if workers == 1:  # one thread per tube, as each worker of the other cases
            from hladr.pipeline import analyze_sample

            results = [analyze_sample(inp, calibration, config, threads=1) for inp in inputs]
        else:
            results = daily._analyse_all(inputs, calibration, config, workers, done.append)
        seconds = time.perf_counter() - t0
    return {"ok": True, "case": name, "seconds": seconds, "tubes": n, "fingerprint": _fingerprint(results),
            "warmup_s": warmup}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tubes", type=int, default=1000)
    ap.add_argument("--distinct", type=int, default=25)
    ap.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # a child's one case
    ap.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(case(args.case, Path(args.run_dir), args.tubes)))
        return 0
    run_dir = many_tube_run(args.distinct, EVENTS)
    rows, out, base = [], {}, None
    for name in CASES:
        load = loadavg()
        r = run_child([PYTHON, __file__, "--case", name, "--run-dir", str(run_dir), "--tubes", str(args.tubes)],
                      env=child_env(True))
        if not r.get("ok"):
            print(f"{name} failed: {r.get('stderr')}", file=sys.stderr)
            return 1
        rate = r["tubes"] / r["seconds"]
        base = rate if name == "serial" else base
        eff = None if name == "serial" else rate / (2 * base)
        out[name] = {"seconds": r["seconds"], "tubes_per_s": rate, "efficiency": eff, "loadavg_before": load,
                     "maxrss_mb": r["maxrss_mb"], "cluster_warmup_s": r["warmup_s"]}
        out[name]["same_results"] = r["fingerprint"] == out.get("serial", {}).get("fingerprint", r["fingerprint"])
        if name == "serial":
            out[name]["fingerprint"] = r["fingerprint"]
        rows.append([LABELS[name], f"{r['seconds']:.1f}", f"{rate:.2f}", "" if eff is None else f"{eff:.0%}",
                     "yes" if out[name]["same_results"] else "NO", " ".join(f"{x:.1f}" for x in load)])
    out["serial"].pop("fingerprint")
    print(table(["case", "seconds", "tubes/s", "efficiency", "same results", "load before"], rows,
                title=f"{args.tubes} tubes x {EVENTS:,} events ({args.distinct} distinct), 1 thread per tube"))
    pool, cl, trim = (out[k]["tubes_per_s"] for k in ("pool2", "cluster2", "cluster2-trim"))
    print(f"LocalCluster / local workers: {cl / pool:.0%} ({trim / pool:.0%} with Dask's malloc setting)")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "scale.json").write_text(json.dumps({"tubes": args.tubes, "events": EVENTS, **out}, indent=1) + "\n")
    return 0 if all(v["same_results"] for v in out.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
