"""The hladr script of benchmark 4 (whole process, one tube): the same work as script_flowkit.py.

Usage: python benchmarks/script_hladr.py TEMPLATE.xml FILE.fcs
"""

import json
import sys

import numpy as np

from hladr.compensate import compensated_channel, spillover_of
from hladr.gatingml import apply_monocyte_template, load_template
from hladr.read import read_events

template_path, path = sys.argv[1:3]
template = load_template(template_path)
events = read_events(path)
res = apply_monocyte_template(template, events)
pe = compensated_channel(events, spillover_of(events), "PE-A", res.indices)
out = {"ok": True, "monocytes": res.n_monocytes, "pe_median": float(np.median(pe)), "sha256": events.sha256}
print(json.dumps(out))
