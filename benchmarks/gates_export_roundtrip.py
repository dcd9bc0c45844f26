"""Round trip of the exported gates (issue 15): automated gate -> Gating-ML 2.0 -> ``--gates`` template.

For each tube: fit the automated gate on the compensated events, export it
(``hladr.gating.export.export_gatingml``), read the file back with the Gating-ML engine (as
``hladr run --gates`` does: raw events, compensation per dimension) and compare the monocytes
each selects: count, median compensated HLA-DR PE (AB/C is a monotone function of PE, so its
median moves with it) and the events' Jaccard index.

Tubes: the example run (``example_fcs/``) and simulated septic runs (profiles sepsis and
severe-sepsis on each instrument, written once into ``benchmarks/out/gates_export/``).

    PYTHONPATH=src .venv/bin/python benchmarks/gates_export_roundtrip.py [--quick] [--bins N] [--vertices N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hladr.channels import find_panel
from hladr.compensate import compensate, compensated_channel
from hladr.fcs.read import read_events, spillover_of
from hladr.gating import export as gx
from hladr.gating.automated import fit_monocyte_gate
from hladr.gating.gatingml.engine import apply_monocyte_template, load_template
from hladr.simulate.simulator import simulate_run

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out" / "gates_export"


def tubes(quick: bool) -> list[Path]:
    """The example run's sample tubes, then simulated septic tubes (written once)."""
    out = sorted((ROOT / "example_fcs").glob("P*_HLADR.fcs"))
    n = 2 if quick else 5
    for instrument in ("canto", "cytoflex", "navios"):
        for profile in ("sepsis", "severe-sepsis"):
            folder = OUT / f"{instrument}_{profile}"
            if not (folder / "worklist.csv").is_file():
                simulate_run(folder, seed=15, instrument=instrument, n_samples=5, events_per_tube=100_000,
                             profile=profile)
            out += sorted(p for p in folder.iterdir() if p.suffix.lower() in (".fcs", ".lmd")
                          and p.name.startswith("P"))[:n]
    return out


def roundtrip(path: Path, bins: int, vertices: int) -> dict | None:
    """One tube's comparison, or None when the automated gate fails on it."""
    raw = read_events(str(path))
    spill = spillover_of(raw)
    panel = find_panel(raw, require=("cd14", "hladr"))
    ev = compensate(raw, spill)
    gate = fit_monocyte_gate(ev, panel)
    if not gate:
        return None
    auto = gate.apply(ev).mask
    gx.GRID_BINS = bins
    t0 = time.perf_counter()
    xml = gx.export_gatingml(gate, ev, spillover=spill, monocytes=auto, max_vertices=vertices)
    t_export = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "g.xml"
        f.write_text(xml, encoding="utf-8")
        res = apply_monocyte_template(load_template(f), raw)
    back = res.mask
    pe_a = np.median(compensated_channel(raw, spill, panel.hladr, np.flatnonzero(auto)))
    pe_b = np.median(compensated_channel(raw, spill, panel.hladr, res.indices))
    n_a, n_b = int(auto.sum()), int(back.sum())
    return {"tube": f"{path.parent.name}/{path.name}", "auto": n_a, "exported": n_b,
            "count_rel": (n_b - n_a) / n_a, "pe_rel": (pe_b - pe_a) / pe_a,
            "jaccard": float((auto & back).sum() / (auto | back).sum()), "export_s": t_export}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="the example run and 2 tubes per simulated run")
    ap.add_argument("--bins", type=int, default=gx.GRID_BINS)
    ap.add_argument("--vertices", type=int, default=gx.MAX_VERTICES)
    args = ap.parse_args()
    rows = []
    for p in tubes(args.quick):
        r = roundtrip(p, args.bins, args.vertices)
        if r is None:
            print(f"{p.parent.name}/{p.name}: automated gate failed; skipped")
            continue
        rows.append(r)
        print(f"{r['tube']:<40} auto {r['auto']:>6} exported {r['exported']:>6} count {100 * r['count_rel']:+6.2f} % "
              f"median PE {100 * r['pe_rel']:+6.2f} % Jaccard {r['jaccard']:.3f} ({r['export_s']:.2f} s)")
    c = np.abs([r["count_rel"] for r in rows]) * 100
    pe = np.abs([r["pe_rel"] for r in rows]) * 100
    j = np.array([r["jaccard"] for r in rows])
    print(f"\n{len(rows)} tubes; |count difference| median {np.median(c):.2f} %, worst {c.max():.2f} %; "
          f"|median PE difference| median {np.median(pe):.2f} %, worst {pe.max():.2f} %; "
          f"Jaccard median {np.median(j):.3f}, worst {j.min():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
