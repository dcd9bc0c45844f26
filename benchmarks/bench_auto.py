"""Benchmark 2 (one child process per tube size): the automated-gating path of one tube, fits included.

Timed unit: ``hladr.pipeline.analyze_sample(SampleInput(path), calibration)``, the function ``hladr run``
calls per tube (read, compensate, gate fit, gate apply, quantify, figure data, phenotype); its own
per-stage clock (``SampleResult.timings_ms``) gives the breakdown. The bead calibration is fitted
once, untimed (a run fits it once for all tubes).

Phase 1 times the automated path alone (``--repeats`` runs after one warm-up), so the peak RSS
checkpoint ``after_auto`` is that of the automated path only. Phase 2 then alternates the template
path (read, ``apply_monocyte_template`` with ``data/monocytes_template.xml``, compensated PE of the
monocytes, ``summarise_monocytes``) with the automated path, so that the extra cost of automated
gating is the median of paired differences taken under the same machine load.

Usage: python benchmarks/bench_auto.py FILE.fcs BEADS.fcs [--repeats N] [--template XML]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from _common import PE_CHANNEL, TEMPLATE, maxrss_mb


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fcs")
    ap.add_argument("beads")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--template", default=str(TEMPLATE))
    args = ap.parse_args(argv)
    rss = {"start": maxrss_mb()}
    t = time.perf_counter()
    from hladr.beads.lots import find_lot
    from hladr.beads.record import Calibration, calibrate_beads
    from hladr.pipeline import analyze_sample
    from hladr.results import SampleInput

    import_s = time.perf_counter() - t
    rss["after_import"] = maxrss_mb()
    cal = calibrate_beads(args.beads, find_lot("96597"))
    if not isinstance(cal, Calibration) or not cal.accepted:
        raise SystemExit(f"bead calibration failed: {cal}")
    inp = SampleInput(path=args.fcs)

    def auto() -> tuple[float, dict, dict]:
        t0 = time.perf_counter()
        r = analyze_sample(inp, cal)
        dt = time.perf_counter() - t0
        if r.qc == "fail":
            raise SystemExit(f"automated path failed: {[f.message for f in r.flags]}")
        return dt, dict(r.timings_ms), {"counts": r.gate_counts, "hladr_abc": r.hladr_abc, "median_pe": r.median_pe}

    t = time.perf_counter()
    _, _, first = auto()
    warmup_s = time.perf_counter() - t
    auto_s, auto_stages = [], []
    for _ in range(args.repeats):
        dt, st, res = auto()
        auto_s.append(dt)
        auto_stages.append(st)
        if res != first:
            raise SystemExit(f"automated results changed between repeats: {res} vs {first}")
    rss["after_auto"] = maxrss_mb()

    # ---- phase 2: template path alternated with the automated path
    from hladr.cli import template_cache_dir
    from hladr.compensate import compensate
    from hladr.fcs.read import read_events, spillover_of
    from hladr.gating.gatingml.engine import apply_monocyte_template, load_template
    from hladr.quantify import summarise_monocytes

    template = load_template(args.template, cache_dir=template_cache_dir())  # as `hladr run` does
    rss["after_template_load"] = maxrss_mb()

    def templ() -> tuple[float, dict, dict]:
        t0 = time.perf_counter()
        events = read_events(args.fcs)
        t1 = time.perf_counter()
        res = apply_monocyte_template(template, events)
        t2 = time.perf_counter()
        mono = compensate(events.with_data(events.data[res.indices]), spillover_of(events))
        summary = summarise_monocytes(mono.column(PE_CHANNEL), cal.curve)
        t3 = time.perf_counter()
        stages = {"read": 1000 * (t1 - t0), "gate": 1000 * (t2 - t1), "quantify": 1000 * (t3 - t2)}
        return t3 - t0, stages, {"monocytes": res.n_monocytes, "hladr_abc": summary.hladr_abc}

    templ()  # warm-up
    pair_auto, pair_templ, pair_templ_stages, pair_auto_stages = [], [], [], []
    for _ in range(args.repeats):
        dt_t, st_t, tres = templ()
        dt_a, st_a, _ = auto()
        pair_templ.append(dt_t)
        pair_auto.append(dt_a)
        pair_templ_stages.append(st_t)
        pair_auto_stages.append(st_a)
    deltas = [a - t for a, t in zip(pair_auto, pair_templ, strict=True)]
    fig = [s.get("figure_data", 0.0) / 1000.0 for s in pair_auto_stages]
    rss["end"] = maxrss_mb()
    print(json.dumps({
        "ok": True, "file": args.fcs, "n_events": first["counts"].get("events"),
        "auto_result": first, "template_result": tres,
        "import_s": import_s, "warmup_s": warmup_s,
        "auto_s": auto_s, "auto_stages_ms": {k: [s.get(k, 0.0) for s in auto_stages] for k in auto_stages[0]},
        "paired_auto_s": pair_auto, "paired_template_s": pair_templ,
        "paired_template_stages_ms": {k: [s[k] for s in pair_templ_stages] for k in pair_templ_stages[0]},
        "delta_s": deltas,
        "delta_s_median": statistics.median(deltas),
        "delta_without_figure_data_s_median": statistics.median([d - f for d, f in zip(deltas, fig, strict=True)]),
        "rss_checkpoints_mb": rss,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
