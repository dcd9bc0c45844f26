"""Benchmark 1 (one child process per case): one tube through the template gates, hladr or FlowKit.

Both tools do the same work per tube, timed from the file name to the number:

1. read the FCS file (``hladr.fcs.read.read_fcs`` / ``flowkit.Sample``);
2. evaluate the four gates of ``data/monocytes_template.xml`` (``hladr.gating.gatingml.engine.apply_monocyte_template``
   / ``GatingStrategy.gate_sample``), compensating with the file's $SPILLOVER;
3. the median compensated PE of the monocytes (``hladr.compensate.compensated_channel`` on the monocyte rows /
   ``Sample.apply_compensation`` + ``get_channel_events(source="comp")``);
4. hladr only, unless ``--no-sha256``: wait for the file's SHA-256 (every hladr result carries it).

The template is parsed once per process, outside the timed loop (a run parses it once for all its
tubes); its parse time is reported separately. One untimed warm-up run comes first (page cache,
Numba cache load), then ``--repeats`` timed runs. Prints one JSON line.

hladr's variants: ``--threads N`` (default: by cores and size, as ``hladr run``) and ``--no-sha256``
(skip the file's SHA-256, which FlowKit does not compute: the same work as FlowKit's).

Usage: python benchmarks/bench_template.py {hladr,flowkit} FILE.fcs [--repeats N] [--template XML]
       [--threads N] [--no-sha256]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from _common import GATE_IDS, PE_CHANNEL, TEMPLATE, maxrss_mb


def _hladr(path: str, template_path: str, rss: dict, threads: int | None = None, sha256: bool = True):
    t = time.perf_counter()
    from hladr.cli import template_cache_dir
    from hladr.compensate import compensated_channel
    from hladr.fcs.read import read_fcs, spillover_of
    from hladr.gating.gatingml.engine import apply_monocyte_template, load_template

    import_s = time.perf_counter() - t
    rss["after_import"] = maxrss_mb()
    t = time.perf_counter()
    template = load_template(template_path, cache_dir=template_cache_dir())  # as `hladr run` does
    template_s = time.perf_counter() - t

    def once(rss: dict | None = None) -> tuple[dict, float, dict]:
        t0 = time.perf_counter()
        events = read_fcs(path, threads=threads, sha256=sha256)[0]
        t1 = time.perf_counter()
        if rss is not None:
            rss["first_tube_after_read"] = maxrss_mb()
        res = apply_monocyte_template(template, events, threads=threads)
        t2 = time.perf_counter()
        if rss is not None:
            rss["first_tube_after_gate"] = maxrss_mb()
        pe = compensated_channel(events, spillover_of(events), PE_CHANNEL, res.indices, threads=threads)
        pe_median = float(np.median(pe))
        if sha256:
            assert len(events.sha256) == 64  # the input's digest belongs to the result (traceability)
        t3 = time.perf_counter()
        stages = {"read": t1 - t0, "gate": t2 - t1, "quantify": t3 - t2}
        return {g: int(res.counts[g]) for g in GATE_IDS}, pe_median, stages

    return import_s, template_s, once


def _flowkit(path: str, template_path: str, rss: dict):
    t = time.perf_counter()
    import flowkit as fk

    import_s = time.perf_counter() - t
    rss["after_import"] = maxrss_mb()
    t = time.perf_counter()
    strategy = fk.parse_gating_xml(template_path)
    template_s = time.perf_counter() - t

    def once(rss: dict | None = None) -> tuple[dict, float, dict]:
        t0 = time.perf_counter()
        sample = fk.Sample(path)
        t1 = time.perf_counter()
        if rss is not None:
            rss["first_tube_after_read"] = maxrss_mb()
        res = strategy.gate_sample(sample)
        t2 = time.perf_counter()
        if rss is not None:
            rss["first_tube_after_gate"] = maxrss_mb()
        meta = sample.get_metadata()
        sample.apply_compensation(meta.get("spillover") or meta["spill"])
        mask = res.get_gate_membership("Monocytes")
        pe = sample.get_channel_events(PE_CHANNEL, source="comp")[mask]  # a number would be 1-based
        pe_median = float(np.median(pe))
        t3 = time.perf_counter()
        stages = {"read": t1 - t0, "gate": t2 - t1, "quantify": t3 - t2}
        return {g: int(res.get_gate_count(g)) for g in GATE_IDS}, pe_median, stages

    return import_s, template_s, once


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tool", choices=("hladr", "flowkit"))
    ap.add_argument("fcs")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--template", default=str(TEMPLATE))
    ap.add_argument("--threads", type=int, default=None, help="hladr: threads per tube (default: by cores and size)")
    ap.add_argument("--no-sha256", action="store_true", help="hladr: skip the file's SHA-256 (FlowKit's work only)")
    args = ap.parse_args(argv)
    rss = {"start": maxrss_mb()}
    if args.tool == "hladr":
        import_s, template_s, once = _hladr(args.fcs, args.template, rss, args.threads, not args.no_sha256)
    else:
        import_s, template_s, once = _flowkit(args.fcs, args.template, rss)
    rss["after_template"] = maxrss_mb()
    t = time.perf_counter()
    counts, pe_median, _ = once(rss)  # warm-up, with peak RSS after each stage
    warmup_s = time.perf_counter() - t
    rss["first_tube_after_quantify"] = maxrss_mb()
    totals, stages = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        c, m, st = once()
        totals.append(time.perf_counter() - t)
        stages.append(st)
        if c != counts or m != pe_median:
            raise SystemExit(f"results changed between repeats: {c} {m} vs {counts} {pe_median}")
    rss["end"] = maxrss_mb()
    n_events = int(_n_events(args.fcs))
    print(json.dumps({
        "ok": True, "tool": args.tool, "file": args.fcs, "n_events": n_events,
        "counts": counts, "pe_median": pe_median,
        "import_s": import_s, "template_s": template_s, "warmup_s": warmup_s,
        "total_s": totals, "stages_s": {k: [s[k] for s in stages] for k in stages[0]},
        "rss_checkpoints_mb": rss,
    }))
    return 0


def _n_events(path: str) -> int:
    """$TOT from the TEXT segment (no third reader involved)."""
    with open(path, "rb") as fh:
        head = fh.read(58)
        start, end = int(head[10:18]), int(head[18:26])
        fh.seek(start)
        text = fh.read(end - start + 1).decode("latin-1")
    delim = text[0]
    parts = text[1:].split(delim)
    keys = {parts[i].upper(): parts[i + 1] for i in range(0, len(parts) - 1, 2)}
    return int(keys["$TOT"])


if __name__ == "__main__":
    raise SystemExit(main())
