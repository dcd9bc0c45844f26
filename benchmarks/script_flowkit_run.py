"""The FlowKit script of issue 16's whole-run comparison: what ``hladr run`` does for one bead tube and one
sample tube, without a report: the bead tube's four PE levels fitted log-log against the lot's certificate,
the sample's monocytes gated with a Gating-ML template, their median PE turned into AB/C.

Usage: python benchmarks/script_flowkit_run.py TEMPLATE.xml BEADS.fcs SAMPLE.fcs
"""

import json
import sys

import flowkit as fk
import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks

PE_PER_BEAD = [638.0, 6930.0, 31008.0, 67601.0]  # BD QuantiBRITE PE lot 96597 (hladr's bundled lot)

template, beads_path, sample_path = sys.argv[1:4]

# the bead tube: compensated PE, four populations between the valleys of the smoothed log10 histogram
beads = fk.Sample(beads_path)
meta = beads.get_metadata()
spill = meta.get("spillover") or meta.get("spill")
if spill:
    beads.apply_compensation(spill)
pe = beads.get_channel_events("PE-A", source="comp" if spill else "raw")
lp = np.log10(pe[pe > 0])
hist, edges = np.histogram(lp, bins=512)
dens = gaussian_filter1d(hist.astype(float), 2.0)
peaks, _ = find_peaks(dens, prominence=0.05 * dens.max())
peaks = peaks[np.argsort(dens[peaks])[-4:]]
peaks.sort()
cuts = [edges[a + int(np.argmin(dens[a:b + 1]))] for a, b in zip(peaks[:-1], peaks[1:], strict=True)]
bounds = [-np.inf, *cuts, np.inf]
mfi = [float(np.median(10 ** lp[(lp >= lo) & (lp < hi)])) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
slope, intercept = np.polyfit(np.log10(mfi), np.log10(PE_PER_BEAD), 1)

# the sample: the template's monocytes, their compensated PE
strategy = fk.parse_gating_xml(template)
sample = fk.Sample(sample_path)
res = strategy.gate_sample(sample)
meta = sample.get_metadata()
sample.apply_compensation(meta.get("spillover") or meta["spill"])
mono = sample.get_channel_events("PE-A", source="comp")[
    res.get_gate_membership("Monocytes")]
median = float(np.median(mono))
print(json.dumps({"ok": True, "monocytes": int(res.get_gate_count("Monocytes")), "pe_median": median,
                  "slope": float(slope), "hladr_abc": float(10 ** (intercept + slope * np.log10(median)))}))
