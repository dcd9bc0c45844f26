"""The cases hladr validate ships (src/hladr/data/validation): made reproducibly, small, and right by
readers other than hladr's (flowio for the FCS values, flowkit for the Gating-ML memberships)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from hladr.validate.oq_units import data_folder

sys.path.insert(0, str(Path(__file__).parent))
import make_validation_data as maker  # noqa: E402

SHIPPED = data_folder()


def test_shipped_cases_are_small():
    total = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file())
    fcs = sum(p.stat().st_size for p in (SHIPPED / "fcs").glob("*.fcs"))
    assert fcs < 400_000 and total < 1_000_000, (fcs, total)


def test_fcs_cases_are_what_the_maker_writes(tmp_path):
    """Run the maker again: the same files, byte for byte, and the same manifest."""
    made = maker.write_fcs_cases(tmp_path / "fcs")
    shipped = json.loads((SHIPPED / "fcs" / "manifest.json").read_text())
    assert made == shipped
    for case in shipped["cases"]:
        assert (tmp_path / "fcs" / case["file"]).read_bytes() == (SHIPPED / "fcs" / case["file"]).read_bytes()


def test_fcs_cases_cover_each_convention_datatype_order_and_version():
    cases = json.loads((SHIPPED / "fcs" / "manifest.json").read_text())["cases"]
    raw = {c["file"]: (SHIPPED / "fcs" / c["file"]).read_bytes() for c in cases}
    versions = {b[:6].decode() for b in raw.values()}
    assert versions == {"FCS2.0", "FCS3.0", "FCS3.1"}
    text = b"".join(raw.values())
    for kw in (b"$DATATYPE/I/", b"$DATATYPE/F/", b"$DATATYPE/D/", b"$BYTEORD/1,2,3,4/", b"$BYTEORD/4,3,2,1/"):
        assert kw in text, kw
    assert {c["convention"] for c in cases} >= {"canto", "cytoflex", "navios"}


def test_fcs_case_values_agree_with_flowio():
    """The expected values (SHA-256 of the decoded events) are those flowio decodes from the same bytes, with
    the time channel in seconds ($TIMESTEP, FCS 3.1), which flowio leaves in ticks."""
    import flowio

    for case in json.loads((SHIPPED / "fcs" / "manifest.json").read_text())["cases"]:
        fd = flowio.FlowData(str(SHIPPED / "fcs" / case["file"]), ignore_offset_error=True)
        events = np.reshape(np.asarray(fd.events, dtype=np.float64), (-1, fd.channel_count))
        if "timestep" in fd.text:
            t = [k for k, ch in fd.channels.items() if ch["pnn"].lower() == "time"]
            assert len(t) == 1, case["file"]
            events[:, int(t[0]) - 1] *= float(fd.text["timestep"])
        assert events.shape == (case["events"], case["channels"]), case["file"]
        assert maker.values_sha256(events) == case["values_sha256"], case["file"]


def test_gatingml_expected_agrees_with_flowkit():
    """Every gate's shipped membership is what FlowKit's GatingStrategy gives on the shipped file."""
    import flowkit as fk

    folder = SHIPPED / "gatingml"
    expected = json.loads((folder / "expected.json").read_text())
    strategy = fk.parse_gating_xml(str(folder / expected["template"]))
    res = strategy.gate_sample(fk.Sample(str(folder / expected["fcs"])))
    assert len(expected["gates"]) == 49
    for gate_id, want in expected["gates"].items():
        mask = np.asarray(res.get_gate_membership(gate_id), dtype=bool)
        assert mask.size == expected["n_events"]
        assert int(mask.sum()) == want["events"], gate_id
        assert hashlib.sha256(np.packbits(mask).tobytes()).hexdigest() == want["membership_sha256"], gate_id


@pytest.mark.corpus
def test_gatingml_cases_are_the_compliance_suite(corpus, tmp_path):
    made = maker.write_gatingml_cases(corpus, tmp_path / "gml")
    assert made == json.loads((SHIPPED / "gatingml" / "expected.json").read_text())
    for name in ("data1.fcs", "gml_all_gates.xml"):
        assert (tmp_path / "gml" / name).read_bytes() == (SHIPPED / "gatingml" / name).read_bytes()
