"""The gate's Gaussian-mixture fits: our EM (``hladr.gating._em``) against scikit-learn's
``GaussianMixture``, side by side.

The rows are those the gate fits: simulated tubes (``hladr.simulate.simulator``, seeds 2026...) are gated
once with ``_gmm`` recorded, which gives per tube the coarse debris mixture's 5,000 rows
(6 components, tol 1e-2) and the main mixture's ~10,000-row density sample (10 components,
tol 1e-3). Each fit is then timed both ways, BLAS pinned to one thread, same start (k-means++
with the same seed): scikit-learn's ``fit`` + ``predict_proba``, and ``gate_populations._gmm``
(scikit-learn's ``kmeans_plusplus``, then ``_em.em_fit``, whose result includes the
responsibilities). Reported per fit kind: median ms of each, iterations, and the largest
relative difference of the fitted means and weights.

Usage: python benchmarks/bench_em.py [--tubes N] [--events N] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _samples(n_tubes: int, n_events: int) -> list[tuple[np.ndarray, int, int, float]]:
    from hladr.channels import find_panel
    from hladr.compensate import compensate
    from hladr.fcs.read import read_events, spillover_of
    from hladr.gating import mixture as gm
    from hladr.gating.automated import fit_monocyte_gate
    from hladr.simulate.tube_events import simulate_sample_events
    from hladr.simulate.tube_files import write_tube

    calls = []
    real = gm.gaussian_mixture

    def record(X, k, seed, tol):
        calls.append((X.copy(), k, seed, tol))
        return real(X, k, seed, tol)

    gm.gaussian_mixture = record
    profiles = ("healthy", "sepsis", "severe-sepsis")
    instruments = ("canto", "cytoflex", "navios")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(n_tubes):
                ev = simulate_sample_events(rng=np.random.default_rng(2026 + i), instrument=instruments[i % 3],
                                            hladr_abc=2000, n_events=n_events, profile=profiles[i % 3])
                path = Path(tmp) / f"t{i}.fcs"
                write_tube(path, ev, sample_id=f"t{i}")
                e = read_events(path)
                fit_monocyte_gate(compensate(e, spillover_of(e)), find_panel(e))
    finally:
        gm.gaussian_mixture = real
    return calls


def _time(f, repeats: int) -> tuple[float, object]:
    out = f()
    best = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = f()
        best.append(time.perf_counter() - t)
    return statistics.median(best) * 1e3, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tubes", type=int, default=6)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    from sklearn.mixture import GaussianMixture

    from hladr._parallel import blas_threads
    from hladr.gating import mixture as gm

    rows: dict[str, list[dict]] = {}
    for X, k, seed, tol in _samples(args.tubes, args.events):
        def sk(X=X, k=k, seed=seed, tol=tol):
            g = GaussianMixture(n_components=k, covariance_type="full", random_state=seed, max_iter=300,
                                reg_covar=1e-3, init_params="k-means++", tol=tol).fit(X)
            return g, g.predict_proba(X)

        with blas_threads().limit(limits=1):
            t_sk, (g, _) = _time(sk, args.repeats)
            t_ours, ours = _time(lambda X=X, k=k, seed=seed, tol=tol: gm.gaussian_mixture(X, k, seed, tol),
                                 args.repeats)
        rel = max(float(np.max(np.abs(ours.means - g.means_) / np.abs(g.means_))),
                  float(np.max(np.abs(ours.weights - g.weights_) / g.weights_)))
        kind = "coarse" if k == 6 else "main"
        rows.setdefault(kind, []).append({"rows": X.shape[0], "k": k, "sklearn_ms": t_sk, "ours_ms": t_ours,
                                          "iter_sklearn": int(g.n_iter_), "iter_ours": ours.n_iter,
                                          "max_rel_diff": rel})
    summary = {}
    for kind, rs in rows.items():
        summary[kind] = {
            "fits": len(rs),
            "rows_median": statistics.median(r["rows"] for r in rs),
            "sklearn_ms_median": round(statistics.median(r["sklearn_ms"] for r in rs), 2),
            "ours_ms_median": round(statistics.median(r["ours_ms"] for r in rs), 2),
            "sklearn_ms_per_iter": round(statistics.median(r["sklearn_ms"] / r["iter_sklearn"] for r in rs), 3),
            "ours_ms_per_iter": round(statistics.median(r["ours_ms"] / r["iter_ours"] for r in rs), 3),
            "same_iterations": all(r["iter_sklearn"] == r["iter_ours"] for r in rs),
            "max_rel_diff": max(r["max_rel_diff"] for r in rs),
        }
    print(json.dumps({"summary": summary, "fits": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
