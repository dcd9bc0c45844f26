"""A run does not load what it does not use: scikit-learn, scipy.signal and scipy.ndimage took ~2 s of
every one-tube run for three small functions, now ours (``_stats``, ``gating/_kmeans``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys
from hladr.beads.lots import find_lot
from hladr.beads.record import calibrate_beads
from hladr.pipeline import analyze_sample
from hladr.results import SampleInput
cal = calibrate_beads(sys.argv[1], find_lot("96597"))
res = analyze_sample(SampleInput(path=sys.argv[2]), cal)
heavy = sorted(m for m in sys.modules if m.split(".")[0] == "sklearn" or m in ("scipy.signal", "scipy.ndimage"))
print(json.dumps({"n": res.monocyte_count, "gate": res.gate.get("method"), "heavy": heavy}))
"""


def test_calibrating_and_gating_a_tube_loads_neither_scikit_learn_nor_scipy_signal():
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    out = subprocess.run([sys.executable, "-c", CHILD, str(REPO / "example_fcs" / "beads.fcs"),
                          str(REPO / "example_fcs" / "P001_HLADR.fcs")], capture_output=True, text=True, env=env,
                         timeout=300, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["gate"] == "mixture" and got["n"] > 1000  # the automated gate was fitted
    assert got["heavy"] == []
