"""Fuzz the reader: seeded mutants of real corpus files and simulated tubes, read right or refused.

Usage::

    python benchmarks/fuzz_reader.py [--cases 2400] [--seeds 12,13,14,15,16] [--corpus DIR] [--show 10]

Prints, for each seed and then in total, per outcome (read right / refused / changed / misread / traceback / hang),
how many mutants ended so, the mutation kinds behind each misread, and the peak
memory of the process. "changed" means the reader did what the mutant declares
(a keyword value edited, a DATA byte flipped), checked against the clean file
read with the edited keywords. See tests/robustness/fcs_mutations.py for the
mutations and the exact rule.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "robustness"))

import fcs_mutations as fm  # noqa: E402

# Real files of varied layout (FCS 2.0/3.0/3.1, float/int, both byte orders, LMD pairs, quirks).
CORPUS_FILES = [
    "cytoflow/beads.fcs",
    "cytoflow/module_examples/itn_02.fcs",
    "FlowIO/100715.fcs",
    "FlowIO/3FITC_4PE_004.fcs",
    "FlowIO/B01 KC-A-W---91-US.fcs",
    "FlowIO/G11.fcs",
    "FlowIO/coulter.lmd",
    "FlowIO/variable_int_example.fcs",
    "FlowKit/index_sorted_example.fcs",
    "FlowKit/simple_line_example/data_set_simple_line_100.fcs",
    "cytoflow/instruments/Beckman Coulter - Cyan.fcs",
    "cytoflow/instruments/Beckman Coulter - Gallios.LMD",
    "cytoflow/instruments/Cytek NL-2000.fcs",
    "cytoflow/instruments/Miltenyi Biotec - MACSQuant Analyzer.fcs",
    "cytoflow/instruments/Partec - PAS.FCS",
    "cytoflow/instruments/System II listmode with extra info in bits D10-D15.LMD",
    "fcsparser/cyflow_cube_8.fcs",
    "fcsparser/Sample_Well_A02.fcs",
]


def simulated_files(out: Path, samples: int = 2, events: int = 3000, seed: int = 7) -> list[Path]:
    from hladr.cli import main

    main(["simulate", str(out), "--samples", str(samples), "--events", str(events), "--seed", str(seed)])
    return sorted(p for p in out.iterdir() if p.suffix.lower() == ".fcs")


def seeds(corpus: Path | None, work: Path) -> list[Path]:
    files = [corpus / rel for rel in CORPUS_FILES if corpus and (corpus / rel).is_file()]
    return files + simulated_files(work / "sim")


def run(
    cases: int, seed: int, corpus: Path | None, show: int, files: list[Path], work: Path, dump=None  # noqa: ANN001
) -> dict:
    real = [f for f in files if corpus and str(f).startswith(str(corpus))]
    counts: collections.Counter = collections.Counter()
    misread_kinds: collections.Counter = collections.Counter()
    examples: list[str] = []
    by_kind: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    t0 = time.perf_counter()
    per_file = max(1, cases // len(files))
    for i, path in enumerate(files):
        buf = path.read_bytes()
        clean = clean_of(path)
        rng = random.Random(f"{seed}:{path.name}")
        for k in range(per_file):
            mutant, label, edits = fm.mutate(buf, rng)
            outcome, detail = fm.judge(
                mutant, clean, f"m{i}_{k}{path.suffix}", work, label=label, edits=edits, source=buf
            )
            counts[outcome] += 1
            if dump is not None:
                dump.write(f"{seed}\t{path.name}\t{k}\t{label}\t{outcome}\t{detail[:200]}\n")
            if " & " not in label:
                by_kind[label.split(":", 1)[0]][outcome] += 1
            if outcome in ("misread", "traceback", "hang"):
                misread_kinds.update(fm.kinds(label))
                if len(examples) < show:
                    examples.append(f"{outcome}: {path.name} case {k}: {label} -> {detail[:160]}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    total = sum(counts.values())
    print(f"{total} mutants of {len(files)} files ({len(real)} real corpus files, {len(files) - len(real)} "
          f"simulated), seed {seed}, {time.perf_counter() - t0:.0f} s")
    for key in ("right", "refused", "changed", "misread", "traceback", "hang"):
        print(f"  {key:20s} {counts[key]}")
    print(f"  peak memory (RSS)    {peak_mb:.0f} MB")
    print("  single mutations by kind (right/refused/changed/misread):")
    for kind, c in sorted(by_kind.items()):
        print(f"    {kind:16s} {c['right']:5d} {c['refused']:5d} {c['changed']:5d} {c['misread']:5d}")
    if misread_kinds:
        print("  kinds behind misread/traceback/hang:", dict(misread_kinds.most_common()))
    for line in examples:
        print("   ", line)
    return {"counts": dict(counts), "peak_mb": peak_mb, "files": len(files), "real": len(real)}


_CLEAN: dict[Path, object] = {}


def clean_of(path: Path):
    if path not in _CLEAN:
        _CLEAN[path] = fm.clean_events(path)
    return _CLEAN[path]


OUTCOMES = ("right", "refused", "changed", "misread", "traceback", "hang")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=2400, help="mutants per seed")
    ap.add_argument("--seeds", default=None, help="comma-separated seeds (default 12)")
    ap.add_argument("--seed", type=int, default=None, help="one seed (same as --seeds N)")
    ap.add_argument("--corpus", default=os.environ.get("HLADR_CORPUS", str(HERE.parents[1] / "shared" / "realdata")))
    ap.add_argument("--show", type=int, default=10, help="misread/traceback/hang examples shown per seed")
    ap.add_argument("--dump", default=None, help="write one tab-separated line per mutant to this file")
    args = ap.parse_args()
    if args.seeds:
        seed_list = [int(s) for s in args.seeds.split(",") if s.strip()]
    else:
        seed_list = [args.seed if args.seed is not None else 12]
    corpus = Path(args.corpus) if Path(args.corpus).is_dir() else None
    work = Path(tempfile.mkdtemp(prefix="hladr_fuzz_"))
    files = seeds(corpus, work)
    total: collections.Counter = collections.Counter()
    rows = []
    dump = open(args.dump, "w") if args.dump else None  # noqa: SIM115
    for seed in seed_list:
        result = run(args.cases, seed, corpus, args.show, files, work, dump)
        total.update(result["counts"])
        rows.append((seed, result))
        print()
    if len(seed_list) > 1:
        print(f"{'seed':>6s} " + " ".join(f"{k:>9s}" for k in OUTCOMES) + "  peak MB")
        for seed, result in rows:
            c = result["counts"]
            print(f"{seed:>6d} " + " ".join(f"{c.get(k, 0):>9d}" for k in OUTCOMES) + f"  {result['peak_mb']:7.0f}")
        print(f"{'total':>6s} " + " ".join(f"{total[k]:>9d}" for k in OUTCOMES)
              + f"  {max(r['peak_mb'] for _, r in rows):7.0f}")
    if dump is not None:
        dump.close()
    bad = sum(total.get(k, 0) for k in ("misread", "traceback", "hang"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
