"""The hladr script of benchmark 4 (whole process, one tube): the same work as script_flowkit.py.

With ``--no-sha256`` the file's SHA-256 (which FlowKit does not compute) is skipped.

Usage: python benchmarks/script_hladr.py TEMPLATE.xml FILE.fcs [--no-sha256]
"""

import gc
import json
import sys

import numpy as np

from hladr.cli import template_cache_dir
from hladr.compensate import compensated_channel
from hladr.fcs.read import read_fcs, spillover_of
from hladr.gating.gatingml.engine import apply_monocyte_template, load_template

template_path, path = sys.argv[1:3]
sha256 = "--no-sha256" not in sys.argv[3:]
template = load_template(template_path, cache_dir=template_cache_dir())  # as `hladr gate` does
events = read_fcs(path, sha256=sha256)[0]
res = apply_monocyte_template(template, events)
pe = compensated_channel(events, spillover_of(events), "PE-A", res.indices)
out = {"ok": True, "monocytes": res.n_monocytes, "pe_median": float(np.median(pe)), "sha256": events.sha256}
print(json.dumps(out))
gc.freeze()  # what the hladr command does as its process ends (cli.main_cli): no final walk of Numba's objects
