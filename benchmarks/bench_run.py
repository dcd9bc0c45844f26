"""Benchmark 3: whole ``hladr run`` processes (cold: a new interpreter each time), and the Numba cache.

``whole_run`` times ``hladr run RUN_DIR --out OUT --quiet`` on a simulated daily run and splits
the wall time with the ``timings_ms`` that the run writes into ``results.json`` (calibrate,
analyse and its per-sample stages summed over tubes, report, write); what is left (interpreter
start-up, imports, worklist, Numba cache loading) is shown as ``startup+other``.

``numba_cache`` runs ``hladr run example_fcs`` twice with a fresh ``NUMBA_CACHE_DIR``: the first run
compiles the kernels and fills the cache, the second loads them. Each run is attached to a
pseudo-terminal so that its progress bar is on; the time to the first ``1/N`` is when the run
starts producing results.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _common import HLADR, OUT, ROOT, child_env, run_child

TOP_STAGES = ("calibrate", "analyse", "report", "write")
SAMPLE_STAGES = ("read", "compensate", "gate_fit", "gate_apply", "quantify", "figure_data")


def whole_run(run_dir: Path, *, repeats: int) -> dict:
    """``repeats`` cold ``hladr run`` processes on ``run_dir``; per run: wall, peak RSS, stages."""
    runs = []
    for k in range(repeats):
        out = OUT / "runs" / f"{run_dir.name}_{k}"
        shutil.rmtree(out, ignore_errors=True)
        r = run_child([HLADR, "run", str(run_dir), "--out", str(out), "--quiet"], env=child_env(False, {
                      "HLADR_DB": str(OUT / "stores" / f"{run_dir.name}.sqlite")}), parse_json=False, cwd=ROOT)
        if r["returncode"] not in (0, 1):
            raise RuntimeError(f"hladr run failed ({r['returncode']}): {r.get('stderr')}")
        doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
        ms = dict(doc.get("timings_ms", {}))
        samples = doc.get("samples") or doc.get("results") or []
        qc = [s.get("qc") for s in samples]
        accounted = sum(ms.get(s, 0.0) for s in TOP_STAGES)
        ms["startup+other"] = 1000.0 * r["wall_s"] - accounted
        runs.append({"wall_s": r["wall_s"], "maxrss_mb": r["maxrss_mb"], "returncode": r["returncode"],
                     "timings_ms": ms, "n_samples": len(samples), "qc": {q: qc.count(q) for q in set(qc)}})
    keys = [*TOP_STAGES, *(f"analyse.{s}" for s in SAMPLE_STAGES), "startup+other"]
    return {
        "run_dir": str(run_dir.relative_to(ROOT)),
        "runs": runs,
        "wall_s_median": statistics.median(r["wall_s"] for r in runs),
        "maxrss_mb_max": max(r["maxrss_mb"] for r in runs),
        "stages_ms_median": {k: statistics.median(r["timings_ms"].get(k, 0.0) for r in runs) for k in keys},
    }


def _run_on_pty(argv: list[str], env: dict[str, str], marker: bytes, timeout: float = 600.0) -> dict:
    """Run ``argv`` on a pseudo-terminal; seconds to the first ``marker`` in its output, and to exit."""
    import pty
    import select
    import subprocess

    leader, follower = pty.openpty()
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env, cwd=ROOT)
    os.close(follower)
    seen, first, buf = b"", None, b""
    try:
        while True:
            if time.perf_counter() - t0 > timeout:
                proc.kill()
                raise RuntimeError(f"timed out: {' '.join(argv)}")
            ready, _, _ = select.select([leader], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk:
                    break
                buf += chunk
                seen = (seen + chunk)[-256:]
                if first is None and marker in seen:
                    first = time.perf_counter() - t0
            elif proc.poll() is not None:
                break
    finally:
        os.close(leader)
    proc.wait()
    total = time.perf_counter() - t0
    return {"first_result_s": first, "wall_s": total, "returncode": proc.returncode,
            "tail": buf.decode(errors="replace").strip().splitlines()[-1:] if proc.returncode not in (0, 1) else []}


def numba_cache(run_dir: Path) -> dict:
    """First and second ``hladr run`` of ``run_dir`` with an empty Numba cache to start with."""
    with tempfile.TemporaryDirectory(prefix="hladr-bench-numba-") as cache:
        env = child_env(False, {"NUMBA_CACHE_DIR": cache, "HLADR_DB": str(OUT / "stores" / f"{run_dir.name}.sqlite")})
        n = sum(1 for _ in run_dir.glob("*.fcs")) - 1
        marker = f" 1/{n} ".encode()
        runs = []
        for k in range(2):
            out = OUT / "runs" / f"numba_cache_{k}"
            shutil.rmtree(out, ignore_errors=True)
            runs.append(_run_on_pty([HLADR, "run", str(run_dir), "--out", str(out)], env, marker))
        n_cached = sum(1 for _ in Path(cache).rglob("*.nbi"))
    return {"run_dir": str(run_dir.relative_to(ROOT)), "first_run": runs[0], "second_run": runs[1],
            "cache_index_files": n_cached}
