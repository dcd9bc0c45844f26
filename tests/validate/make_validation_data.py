"""Write the files ``hladr validate`` ships under ``src/hladr/data/validation/`` (run once per change).

Usage: python tests/validate/make_validation_data.py [--corpus DIR] [--out DIR]

- ``fcs/``: small FCS files of each instrument convention the simulator knows (canto, cytoflex:
  float; navios: integer) and of each $DATATYPE (I 16 and 32 bits, F, D), both byte orders and
  FCS 2.0, 3.0 and 3.1, with ``fcs/manifest.json``: each file's events, channels, the SHA-256 of
  its decoded values (float32, little-endian, row-major) and the channel roles found. The
  re-encoded variants' expected values are those written (integers rounded and clipped as the
  writer does), not what the reader gives; the instrument files' are what the reader gave when
  they were made, checked against flowio by ``tests/validate/test_cases.py``.
- ``gatingml/``: the Gating-ML 2.0 compliance suite's FCS file and its all-gates template (from
  FlowKit's ``gate_ref``, the corpus's ``FlowKit/gate_ref``) with ``gatingml/expected.json``: per
  gate the event count and the SHA-256 of its packed membership from the suite's truth files;
  ``tests/validate/test_cases.py`` checks them against flowkit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
DEFAULT_OUT = HERE.parents[2] / "src" / "hladr" / "data" / "validation"
SEED = 17
NATIVE_EVENTS = 1000
VARIANT_EVENTS = 400

# (file, datatype, bits, byteorder, FCS version, $PnR) of the re-encoded variants of the canto tube
VARIANTS = (
    ("f32_big_fcs30.fcs", "F", 32, "big", "3.0", None),
    ("f32_little_fcs20.fcs", "F", 32, "little", "2.0", None),
    ("f64_little_fcs31.fcs", "D", 64, "little", "3.1", None),
    ("f64_big_fcs20.fcs", "D", 64, "big", "2.0", None),
    ("i16_big_fcs30.fcs", "I", 16, "big", "3.0", 65536.0),
    ("i16_little_fcs20.fcs", "I", 16, "little", "2.0", 65536.0),
    ("i32_little_fcs31.fcs", "I", 32, "little", "3.1", None),
    ("i32_big_fcs30.fcs", "I", 32, "big", "3.0", None),
)


def values_sha256(data: np.ndarray) -> str:
    """SHA-256 of an event matrix as float32, little-endian, row-major (what ``hladr validate`` compares)."""
    return hashlib.sha256(np.ascontiguousarray(data, dtype="<f4").tobytes()).hexdigest()


def _set_version(path: Path, version: str) -> None:
    raw = bytearray(path.read_bytes())
    assert raw[:6] == b"FCS3.1"
    raw[:6] = f"FCS{version}".encode()
    path.write_bytes(bytes(raw))


def _roles(events) -> dict:
    from hladr.channels import find_panel

    p = find_panel(events)
    return {"fsc_a": p.fsc_a, "ssc_a": p.ssc_a, "cd45": p.cd45, "cd14": p.cd14, "hladr": p.hladr}


def write_fcs_cases(out: Path) -> dict:
    """The FCS files and their manifest, in ``out`` (cleared first)."""
    from hladr.fcs.read import read_events
    from hladr.fcs.write import write_fcs
    from hladr.simulate.simulator import simulate_sample_tube

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    cases = []
    for k, inst in enumerate(("canto", "cytoflex", "navios")):
        path = out / f"{inst}.fcs"
        simulate_sample_tube(path, rng=np.random.default_rng(SEED + k), instrument=inst, hladr_abc=3000.0,
                             n_events=NATIVE_EVENTS, sample_id=f"VAL-{inst}")
        ev = read_events(path)
        cases.append({"file": path.name, "convention": inst, "events": ev.n_events, "channels": len(ev.pnn),
                      "values_sha256": values_sha256(ev.data), "roles": _roles(ev), "source": "simulator, read"})
    base = read_events(out / "canto.fcs")
    data = base.data[:VARIANT_EVENTS].astype(np.float64)
    keep = {k: v for k, v in base.keywords.items() if k.upper() in ("$CYT", "$SPILLOVER", "$FIL", "CREATOR")}
    for name, datatype, bits, order, version, pnr in VARIANTS:
        path = out / name
        d = data if pnr is None else data / 4.0  # a 16-bit tube: the 18-bit scale divided down
        ranges = [pnr or r for r in base.pnr]
        write_fcs(path, d, list(base.pnn), pns=list(base.pns), pnr=ranges, datatype=datatype, bits=bits,
                  byteorder=order, keywords=keep)
        if version != "3.1":
            _set_version(path, version)
        if datatype == "I":
            expect = np.stack([np.clip(np.rint(d[:, j]), 0, min(ranges[j], 2.0**bits) - 1)
                               for j in range(d.shape[1])], axis=1)
        else:
            expect = d
        ev = read_events(path)
        cases.append({"file": name, "convention": f"$DATATYPE {datatype}, {bits} bits, {order}-endian, FCS {version}",
                      "events": int(d.shape[0]), "channels": int(d.shape[1]), "values_sha256": values_sha256(expect),
                      "roles": _roles(ev), "source": "written"})
    manifest = {"about": "FCS files hladr validate reads; values_sha256: decoded values as float32 little-endian, "
                         "row-major", "cases": cases}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


def write_gatingml_cases(corpus: Path, out: Path) -> dict:
    """The compliance suite's file, template and per-gate expected membership, in ``out`` (cleared first)."""
    from hladr.gating.gatingml.engine import load_template

    ref = corpus / "FlowKit" / "gate_ref"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copyfile(ref / "data1.fcs", out / "data1.fcs")
    shutil.copyfile(ref / "gml" / "gml_all_gates.xml", out / "gml_all_gates.xml")
    os.chmod(out / "data1.fcs", 0o644)
    os.chmod(out / "gml_all_gates.xml", 0o644)
    gates = {}
    for gate_id in load_template(out / "gml_all_gates.xml").gate_ids:
        truth = np.loadtxt(ref / "truth" / f"Results_{gate_id}.txt", dtype=np.int64).astype(bool)
        gates[gate_id] = {"events": int(truth.sum()), "membership_sha256": membership_sha256(truth)}
    expected = {"about": "Gating-ML 2.0 compliance suite (FlowKit gate_ref: data1.fcs, gml_all_gates.xml); per gate "
                         "the events in it and the SHA-256 of numpy.packbits(membership), from the suite's truth files",
                "fcs": "data1.fcs", "template": "gml_all_gates.xml", "n_events": int(truth.size), "gates": gates}
    (out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n", encoding="utf-8")
    return expected


def membership_sha256(mask: np.ndarray) -> str:
    return hashlib.sha256(np.packbits(np.asarray(mask, dtype=bool)).tobytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=os.environ.get("HLADR_CORPUS", str(HERE.parents[3] / "shared" / "realdata")))
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args(argv)
    out = Path(args.out)
    write_fcs_cases(out / "fcs")
    write_gatingml_cases(Path(args.corpus), out / "gatingml")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
