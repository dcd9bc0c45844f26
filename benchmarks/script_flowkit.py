"""The FlowKit script of benchmark 4 (whole process, one tube): template gates, then the monocytes' PE median.

Usage: python benchmarks/script_flowkit.py TEMPLATE.xml FILE.fcs
"""

import json
import sys

import flowkit as fk
import numpy as np

template, path = sys.argv[1:3]
strategy = fk.parse_gating_xml(template)
sample = fk.Sample(path)
res = strategy.gate_sample(sample)
meta = sample.get_metadata()
sample.apply_compensation(meta.get("spillover") or meta["spill"])
pe = sample.get_channel_events("PE-A", source="comp")[res.get_gate_membership("Monocytes")]
print(json.dumps({"ok": True, "monocytes": int(res.get_gate_count("Monocytes")), "pe_median": float(np.median(pe))}))
