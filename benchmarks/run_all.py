"""Run every benchmark of issue #5, print the tables and write ``benchmarks/out/results.json``.

Usage::

    .venv/bin/python benchmarks/run_all.py            # full: 100k / 1M / 5M events, 96-tube run (~10 min)
    .venv/bin/python benchmarks/run_all.py --quick    # smoke version (< 2 min): 100k / 1M, 12-tube run
    .venv/bin/python benchmarks/run_all.py --only template auto

1. template: one tube through the same Gating-ML gates, hladr vs FlowKit (``bench_template.py``);
2. auto: hladr's automated-gating path of one tube, fits included (``bench_auto.py``);
3. run: whole ``hladr run`` processes with a per-stage breakdown, and the Numba cache (``bench_run.py``);
4. process: whole processes on one 1M-event tube, the FlowKit script vs the hladr script, and the
   import cost of the heavy modules.

Every case runs in its own child process; its peak RSS is that child's ``ru_maxrss``. Simulated
input files are written once into ``benchmarks/out/data`` (git-ignored) and reused.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import bench_run
from _common import (
    BENCH,
    GATE_IDS,
    HLADR,
    OUT,
    PYTHON,
    ROOT,
    TEMPLATE,
    child_env,
    fmt,
    loadavg,
    many_tube_run,
    median_ms,
    run_child,
    table,
    tube_path,
    tube_run,
    warm_page_cache,
)

ALL = ("template", "auto", "run", "process")
N_CHANNELS = 8  # the simulated Canto tube: 7 measured channels + Time, float32
RATIO_TARGET, RATE_TARGET, PROCESS_TARGET, AUTO_TARGET_MS, FIRST_RESULT_TARGET_S = 25.0, 15e6, 4.0, 100.0, 2.0


def _label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"


def _matrix_mb(n: int) -> float:
    return n * N_CHANNELS * 4 / 2**20


def _check(r: dict, what: str) -> dict:
    if r["returncode"] != 0 or not r.get("ok"):
        raise RuntimeError(f"{what} failed (exit {r['returncode']}):\n{r.get('stderr', '')}")
    return r


def _case(argv: list[str], *, single_thread: bool, what: str) -> dict:
    load_before = loadavg()
    r = _check(run_child([PYTHON, *argv], env=child_env(single_thread), cwd=ROOT), what)
    r["loadavg_before"], r["loadavg_after"] = load_before, loadavg()
    return r


# --------------------------------------------------------------------------- 1. template gates
# hladr's variants of the same per-tube work: (key, extra arguments, label)
HLADR_VARIANTS = (
    ("same_work", ["--no-sha256"], "same work as FlowKit (threads: auto)"),
    ("with_sha256", [], "+ SHA-256 of the file (as hladr run)"),
    ("one_thread", ["--no-sha256", "--threads", "1"], "same work, 1 thread"),
)


def bench_template(sizes: list[int], repeats_hladr: int, repeats_fk: int) -> dict:
    out = {}
    for n in sizes:
        path = tube_path(n)
        warm_page_cache(path)
        script = str(BENCH / "bench_template.py")
        hl = {}
        for key, extra, _ in HLADR_VARIANTS:
            print(f"  template {_label(n)}: hladr {key} ...", file=sys.stderr, flush=True)
            hl[key] = _case([script, "hladr", str(path), "--repeats", str(repeats_hladr), *extra], single_thread=True,
                            what=f"hladr template {n} {key}")
        print(f"  template {_label(n)}: flowkit ...", file=sys.stderr, flush=True)
        f = _case([script, "flowkit", str(path), "--repeats", str(repeats_fk)], single_thread=False,
                  what=f"flowkit template {n}")
        f_ms = median_ms(f["total_s"])
        f_stage = {k: median_ms(v) for k, v in f["stages_s"].items()}
        variants = {}
        for key, h in hl.items():
            h_ms = median_ms(h["total_s"])
            stage = {k: median_ms(v) for k, v in h["stages_s"].items()}
            diff = {g: h["counts"][g] - f["counts"][g] for g in GATE_IDS if h["counts"][g] != f["counts"][g]}
            variants[key] = {
                "run": h, "hladr_ms": h_ms, "ratio": f_ms / h_ms, "stages_ms": stage,
                "gate_ratio": f_stage["gate"] / stage["gate"],
                "events_per_s": n / (h_ms / 1000), "gate_events_per_s": n / (stage["gate"] / 1000),
                "counts_identical": not diff, "count_differences": diff, "counts": h["counts"],
                "pe_median": h["pe_median"],
                "pe_median_rel_diff": abs(h["pe_median"] - f["pe_median"]) / abs(f["pe_median"]),
                "maxrss_mb": h["maxrss_mb"],
            }
        out[str(n)] = {
            "n_events": n, "flowkit": f, "flowkit_ms": f_ms, "flowkit_stages_ms": f_stage, "hladr": variants,
            "counts_identical": all(v["counts_identical"] for v in variants.values()),
            "counts": variants["same_work"]["counts"], "pe_median_flowkit": f["pe_median"],
            "matrix_mb": _matrix_mb(n), "rss_limit_mb": 2 * _matrix_mb(n) + 150,
        }
    return out


def print_template(res: dict) -> str:
    rows = []
    for r in res.values():
        for key, _, label in HLADR_VARIANTS:
            v = r["hladr"][key]
            s = v["stages_ms"]
            rows.append([
                _label(r["n_events"]), label, fmt(v["hladr_ms"]), fmt(r["flowkit_ms"]), fmt(v["ratio"]) + "x",
                f"{v['events_per_s'] / 1e6:.1f}", "/".join(fmt(s[k]) for k in ("read", "gate", "quantify")),
                fmt(v["gate_ratio"]) + "x", f"{v['maxrss_mb']:.0f}", f"{r['rss_limit_mb']:.0f}",
                f"{v['counts']['Monocytes']:,}" + ("" if v["counts_identical"] else f" DIFF {v['count_differences']}"),
                f"{v['pe_median_rel_diff']:.1e}", f"{v['run']['loadavg_before'][0]:.1f}",
            ])
        fs = r["flowkit_stages_ms"]
        rows.append([_label(r["n_events"]), "FlowKit 1.3.2", "", fmt(r["flowkit_ms"]), "", "",
                     "/".join(fmt(fs[k], ".0f") for k in ("read", "gate", "quantify")), "",
                     f"{r['flowkit']['maxrss_mb']:.0f}", "", f"{r['flowkit']['counts']['Monocytes']:,}", "",
                     f"{r['flowkit']['loadavg_before'][0]:.1f}"])
    return table(
        ["events", "hladr variant", "hladr ms", "FlowKit ms", "ratio", "Mev/s", "read/gate/quant ms", "gate ratio",
         "RSS MB", "RSS limit", "monocytes (=)", "PE med rel diff", "load"],
        rows, "1. One tube, template gates (medians; counts asserted identical to FlowKit's)")


# --------------------------------------------------------------------------- 2. automated gating
def bench_auto(sizes: list[int], repeats: int) -> dict:
    out = {}
    for n in sizes:
        run_dir = tube_run(n)
        warm_page_cache(run_dir / "P001_HLADR.fcs")
        print(f"  auto {_label(n)} ...", file=sys.stderr, flush=True)
        r = _case([str(BENCH / "bench_auto.py"), str(run_dir / "P001_HLADR.fcs"), str(run_dir / "beads.fcs"),
                   "--repeats", str(repeats)], single_thread=True, what=f"auto {n}")
        r["n_events"] = n
        r["auto_ms"] = median_ms(r["auto_s"])
        r["stages_ms"] = {k: statistics.median(v) for k, v in r["auto_stages_ms"].items()}
        r["paired_auto_ms"], r["paired_template_ms"] = median_ms(r["paired_auto_s"]), median_ms(r["paired_template_s"])
        r["delta_ms"] = 1000 * r["delta_s_median"]
        r["delta_without_figure_data_ms"] = 1000 * r["delta_without_figure_data_s_median"]
        r["events_per_s"] = n / (r["auto_ms"] / 1000)
        r["rss_auto_mb"] = r["rss_checkpoints_mb"]["after_auto"]
        r["matrix_mb"], r["rss_limit_mb"] = _matrix_mb(n), 2 * _matrix_mb(n) + 150
        out[str(n)] = r
    return out


def print_auto(res: dict) -> str:
    rows = []
    for r in res.values():
        s = r["stages_ms"]
        rows.append([
            _label(r["n_events"]), fmt(r["auto_ms"]), f"{r['events_per_s'] / 1e6:.1f}",
            *(fmt(s.get(k)) for k in ("read", "compensate", "gate_fit", "gate_apply", "quantify", "figure_data")),
            fmt(r["paired_template_ms"]), fmt(r["paired_auto_ms"]), fmt(r["delta_ms"]),
            fmt(r["delta_without_figure_data_ms"]), f"{r['rss_auto_mb']:.0f}", f"{r['rss_limit_mb']:.0f}",
            f"{r['auto_result']['counts']['monocytes']:,}", f"{r['loadavg_before'][0]:.1f}",
        ])
    return table(
        ["events", "auto ms", "Mev/s", "read", "comp", "fit", "apply", "quant", "fig", "paired templ ms",
         "paired auto ms", "auto-templ ms", "w/o fig", "RSS MB", "RSS limit", "monocytes", "load"],
        rows, "2. One tube, automated gating (analyze_sample as hladr run calls it, fits included; medians)")


# --------------------------------------------------------------------------- 3. whole run
def bench_whole_run(n_samples: int, events: int, repeats: int) -> dict:
    run_dir = many_tube_run(n_samples, events)
    for p in run_dir.glob("*.fcs"):
        warm_page_cache(p)
    print(f"  hladr run {n_samples} x {_label(events)} ({repeats} cold processes) ...", file=sys.stderr, flush=True)
    load_before = loadavg()
    res = bench_run.whole_run(run_dir, repeats=repeats)
    res.update(n_samples=n_samples, events_per_tube=events, loadavg_before=load_before, loadavg_after=loadavg())
    print("  numba cache: two runs of example_fcs with an empty NUMBA_CACHE_DIR ...", file=sys.stderr, flush=True)
    res["numba_cache"] = bench_run.numba_cache(ROOT / "example_fcs")
    return res


def print_whole_run(res: dict) -> str:
    st = res["stages_ms_median"]
    wall = 1000 * res["wall_s_median"]
    keys = ["startup+other", "calibrate", "analyse", *(f"analyse.{s}" for s in bench_run.SAMPLE_STAGES),
            "report", "write"]
    rows = [[k, fmt(st[k], ".0f"), f"{100 * st[k] / wall:.0f}%",
             fmt(st[k] / res["n_samples"], ".1f") if k.startswith("analyse") or k == "report" else ""] for k in keys]
    rows.append(["total (wall)", fmt(wall, ".0f"), "100%", fmt(wall / res["n_samples"], ".1f")])
    nc = res["numba_cache"]
    qc = res["runs"][0]["qc"]
    title = (f"3. Whole `hladr run`, {res['n_samples']} tubes x {_label(res['events_per_tube'])} events, cold process "
             f"(median of {len(res['runs'])}; peak RSS {res['maxrss_mb_max']:.0f} MB; "
             f"{res['n_samples'] * res['events_per_tube'] / res['wall_s_median'] / 1e6:.2f} M events/s overall; "
             f"qc {qc}; load {res['loadavg_before'][0]:.1f})")
    text = table(["stage", "ms", "share", "ms/tube"], rows, title)
    first, second = nc["first_run"], nc["second_run"]
    text += ("\n   Numba cache (example_fcs, fresh NUMBA_CACHE_DIR): first result after "
             f"{fmt(first['first_result_s'], '.2f')} s (run 1, compiles; {fmt(first['wall_s'], '.1f')} s total), "
             f"{fmt(second['first_result_s'], '.2f')} s (run 2, cached; {fmt(second['wall_s'], '.1f')} s total)")
    return text


# --------------------------------------------------------------------------- 4. whole process
IMPORTS = {
    "python (empty)": "pass",
    "numpy": "import numpy",
    "flowkit": "import flowkit",
    "flowio": "import flowio",
    "numba": "import numba",
    "scipy.signal": "import scipy.signal",
    "sklearn.mixture": "import sklearn.mixture",
    "matplotlib.pyplot": "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot",
    "hladr.fcs.read": "import hladr.fcs.read",
    "hladr.gating.gatingml.engine": "import hladr.gating.gatingml.engine",
    "hladr.gating.gatingml.engine + load_template":
        f"import hladr.gating.gatingml.engine as g; from hladr.cli import template_cache_dir; "
        f"g.load_template({str(TEMPLATE)!r}, cache_dir=template_cache_dir())",
    "hladr.batch.daily (hladr run)": "import hladr.batch.daily",
}


def bench_process(repeats: int, import_repeats: int) -> dict:
    path = tube_path(1_000_000)
    warm_page_cache(path)
    env = child_env(False)
    cases = {
        "flowkit_script": [PYTHON, str(BENCH / "script_flowkit.py"), str(TEMPLATE), str(path)],
        "hladr_script": [PYTHON, str(BENCH / "script_hladr.py"), str(TEMPLATE), str(path)],
        "hladr_script_no_sha256": [PYTHON, str(BENCH / "script_hladr.py"), str(TEMPLATE), str(path), "--no-sha256"],
        "hladr_gate_auto_cli": [HLADR, "gate", str(path), "--json"],
        "hladr_gate_template_cli": [HLADR, "gate", "--gates", str(TEMPLATE), str(path), "--json"],
    }
    print(f"  whole processes on one 1M tube ({repeats} each, interleaved) ...", file=sys.stderr, flush=True)
    load_before = loadavg()
    runs: dict[str, list[dict]] = {k: [] for k in cases}
    unavailable: dict[str, str] = {}
    for argv in cases.values():  # one untimed run each: bytecode and Numba caches written, as after a first use
        run_child(argv, env=env, cwd=ROOT)
    for _ in range(repeats):
        for name, argv in cases.items():
            if name in unavailable:
                continue
            r = run_child(argv, env=env, cwd=ROOT)
            if "gates" in r:  # hladr gate --json
                r["monocytes"] = r["gates"].get("monocytes")
            if r["returncode"] != 0:
                unavailable[name] = (r.get("stderr") or "").strip().splitlines()[-1:] or [f"exit {r['returncode']}"]
                continue
            runs[name].append(r)
    out = {"file": str(path.relative_to(ROOT)), "loadavg_before": load_before, "loadavg_after": loadavg(),
           "unavailable": unavailable, "cases": {}}
    for name, rs in runs.items():
        if rs:
            out["cases"][name] = {"wall_s": [r["wall_s"] for r in rs], "wall_s_median": statistics.median(
                r["wall_s"] for r in rs), "maxrss_mb_max": max(r["maxrss_mb"] for r in rs),
                "result": {k: rs[0].get(k) for k in ("monocytes", "pe_median")}}
    fk_case, h_case = out["cases"].get("flowkit_script"), out["cases"].get("hladr_script")
    if fk_case and h_case:
        out["ratio"] = fk_case["wall_s_median"] / h_case["wall_s_median"]
        out["same_result"] = fk_case["result"]["monocytes"] == h_case["result"]["monocytes"]
    same = out["cases"].get("hladr_script_no_sha256")
    if fk_case and same:
        out["ratio_same_work"] = fk_case["wall_s_median"] / same["wall_s_median"]
    print("  import times (fresh interpreters) ...", file=sys.stderr, flush=True)
    imports = {}
    for name, code in IMPORTS.items():
        walls, rss = [], []
        for _ in range(import_repeats):
            r = run_child([PYTHON, "-c", code], env=env, cwd=ROOT, parse_json=False)
            walls.append(r["wall_s"])
            rss.append(r["maxrss_mb"])
        imports[name] = {"wall_s_median": statistics.median(walls), "maxrss_mb": max(rss)}
    out["imports"] = imports
    return out


def print_process(res: dict) -> str:
    rows = [[name, fmt(c["wall_s_median"], ".2f"), f"{c['maxrss_mb_max']:.0f}",
             "" if c["result"]["monocytes"] is None else f"{c['result']['monocytes']:,}"]
            for name, c in res["cases"].items()]
    rows += [[name, "not available", "", ""] for name in res["unavailable"]]
    text = table(["process", "wall s", "peak RSS MB", "monocytes"], rows,
                 f"4. Whole process, one 1M-event tube, cold interpreter (medians; FlowKit/hladr script = "
                 f"{fmt(res.get('ratio'), '.2f')}x, without hladr's SHA-256 {fmt(res.get('ratio_same_work'), '.2f')}x; "
                 f"load {res['loadavg_before'][0]:.1f})")
    base = res["imports"]["python (empty)"]["wall_s_median"]
    rows = [[name, fmt(v["wall_s_median"], ".2f"), fmt(v["wall_s_median"] - base, ".2f"), f"{v['maxrss_mb']:.0f}"]
            for name, v in res["imports"].items()]
    text += "\n\n" + table(["python -c", "wall s", "minus empty", "peak RSS MB"], rows,
                           "   Import cost in a fresh interpreter (median)")
    return text


# --------------------------------------------------------------------------- acceptance
def acceptance(results: dict) -> list[dict]:
    checks = []

    def add(name: str, value, target: str, met: bool | None, note: str = "") -> None:
        checks.append({"criterion": name, "measured": value, "target": target, "met": met, "note": note})

    tpl = results.get("template", {})
    for key in ("1000000", "5000000"):
        r = tpl.get(key)
        if r is None:
            continue
        lab = _label(int(key))
        same, full, one = (r["hladr"][k] for k in ("same_work", "with_sha256", "one_thread"))
        add(f"template {lab}: FlowKit/hladr in-process, same work", f"{same['ratio']:.1f}x", f">= {RATIO_TARGET:.0f}x",
            same["ratio"] >= RATIO_TARGET, f"gate stage alone {same['gate_ratio']:.1f}x")
        add(f"template {lab}: ... and hladr also hashing the file", f"{full['ratio']:.1f}x", f">= {RATIO_TARGET:.0f}x",
            full["ratio"] >= RATIO_TARGET, "SHA-256 of every input, which FlowKit does not compute")
        add(f"template {lab}: identical counts", str(r["counts"]), "identical (4 gates)", r["counts_identical"],
            f"PE median rel. diff {same['pe_median_rel_diff']:.1e}")
        add(f"template {lab}: hladr events/s single-threaded", f"{one['events_per_s'] / 1e6:.1f} M/s",
            ">= 15 M/s", one["events_per_s"] >= RATE_TARGET, f"gate alone {one['gate_events_per_s'] / 1e6:.1f} M/s")
    for key, r in tpl.items():
        if key not in ("1000000", "5000000"):
            add(f"template {_label(int(key))}: identical counts", str(r["counts"]), "identical (4 gates)",
                r["counts_identical"])
    r = tpl.get("5000000")
    if r:
        worst = max(r["hladr"].values(), key=lambda v: v["maxrss_mb"])
        add("template 5M: hladr peak RSS", f"{worst['maxrss_mb']:.0f} MB", f"<= {r['rss_limit_mb']:.0f} MB",
            worst["maxrss_mb"] <= r["rss_limit_mb"],
            "checkpoints " + ", ".join(f"{k} {v:.0f}" for k, v in worst["run"]["rss_checkpoints_mb"].items()))
    au = results.get("auto", {})
    r = au.get("1000000")
    if r:
        add("auto 1M: extra time over the template path", f"{r['delta_ms']:.0f} ms", f"<= {AUTO_TARGET_MS:.0f} ms",
            r["delta_ms"] <= AUTO_TARGET_MS, f"without figure_data {r['delta_without_figure_data_ms']:.0f} ms")
    r = au.get("5000000")
    if r:
        add("auto 5M: peak RSS", f"{r['rss_auto_mb']:.0f} MB", f"<= {r['rss_limit_mb']:.0f} MB",
            r["rss_auto_mb"] <= r["rss_limit_mb"])
    pr = results.get("process")
    if pr and "ratio" in pr:
        add("whole process 1M: FlowKit script / hladr script", f"{pr['ratio']:.2f}x", f">= {PROCESS_TARGET:.0f}x",
            pr["ratio"] >= PROCESS_TARGET,
            f"{pr['cases']['flowkit_script']['wall_s_median']:.2f} s vs "
            f"{pr['cases']['hladr_script']['wall_s_median']:.2f} s (hladr hashes the file too; without: "
            f"{fmt(pr.get('ratio_same_work'), '.2f')}x)")
    wr = results.get("run")
    if wr:
        s = wr["numba_cache"]["second_run"]["first_result_s"]
        add("second `hladr run` of example_fcs: first result", f"{fmt(s, '.2f')} s",
            f"<= {FIRST_RESULT_TARGET_S:.0f} s",
            s is not None and s <= FIRST_RESULT_TARGET_S,
            f"first run (empty cache) {fmt(wr['numba_cache']['first_run']['first_result_s'], '.2f')} s")
    return checks


def print_acceptance(checks: list[dict]) -> str:
    rows = [[c["criterion"], c["measured"] if len(c["measured"]) < 40 else c["measured"][:37] + "...", c["target"],
             {True: "MET", False: "NOT MET", None: "-"}[c["met"]]] for c in checks]
    return table(["acceptance (issue #5)", "measured", "target", ""], rows, "Acceptance")


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="hladr benchmarks (issue #5)")
    ap.add_argument("--quick", action="store_true", help="smoke version, under 2 minutes")
    ap.add_argument("--only", nargs="+", choices=ALL, default=list(ALL), metavar="NAME",
                    help=f"benchmarks to run (default all: {' '.join(ALL)})")
    ap.add_argument("--out", default=str(OUT / "results.json"),
                    help="JSON output (default benchmarks/out/results.json)")
    args = ap.parse_args(argv)
    quick = args.quick
    sizes = [100_000, 1_000_000] if quick else [100_000, 1_000_000, 5_000_000]
    t0 = time.perf_counter()
    results: dict = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_start": loadavg()},
        "versions": _versions(),
    }
    texts = []
    print(f"hladr benchmarks ({'quick' if quick else 'full'}); load average {loadavg()}", file=sys.stderr)
    if "template" in args.only:
        results["template"] = bench_template(sizes, 3 if quick else 7, 3 if quick else 5)
        texts.append(print_template(results["template"]))
        print("\n" + texts[-1] + "\n", flush=True)
    if "auto" in args.only:
        results["auto"] = bench_auto(sizes, 3 if quick else 5)
        texts.append(print_auto(results["auto"]))
        print("\n" + texts[-1] + "\n", flush=True)
    if "run" in args.only:
        results["run"] = bench_whole_run(12 if quick else 96, 100_000, 1 if quick else 3)
        texts.append(print_whole_run(results["run"]))
        print("\n" + texts[-1] + "\n", flush=True)
    if "process" in args.only:
        results["process"] = bench_process(2 if quick else 5, 1 if quick else 3)
        texts.append(print_process(results["process"]))
        print("\n" + texts[-1] + "\n", flush=True)
    results["acceptance"] = acceptance(results)
    results["machine"]["loadavg_end"] = loadavg()
    results["elapsed_s"] = time.perf_counter() - t0
    print(print_acceptance(results["acceptance"]))
    print(f"\nload average start {results['machine']['loadavg_start']}, end {results['machine']['loadavg_end']} "
          f"({os.cpu_count()} CPUs); {results['elapsed_s']:.0f} s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    (out.with_suffix(".txt")).write_text("\n\n".join(texts + [print_acceptance(results["acceptance"])]) + "\n",
                                         encoding="utf-8")
    print(f"wrote {out} and {out.with_suffix('.txt')}")
    return 0


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("hladr", "flowkit", "flowio", "numpy", "numba", "scikit-learn", "scipy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


if __name__ == "__main__":
    raise SystemExit(main())
