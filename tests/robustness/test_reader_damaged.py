"""Damaged files (issue 12): read with the file's own values, or refused with one line; never misread."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hladr.cli import main
from hladr.errors import ReadError
from hladr.fcs.read import read_events, read_fcs, spillover_of
from hladr.fcs.write import write_fcs


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    assert main(["simulate", str(out), "--samples", "1", "--events", "20000", "--seed", "1"]) == 0
    return out


def _edit(buf: bytes, key: bytes, new: bytes) -> bytes:
    """Replace the value of TEXT keyword ``key`` in place (offsets untouched)."""
    m = re.search(rb"/" + re.escape(key) + rb"/([^/]*)/", buf)
    assert m, key
    return buf[: m.start(1)] + new + buf[m.end(1) :]


def _lengthen_fil(buf: bytes, k: int = 24) -> bytes:
    m = re.search(rb"/\$FIL/([^/]*)/", buf)
    return _edit(buf, b"$FIL", m.group(1) + b"X" * k)


def test_text_lengthened_in_place_reads_the_files_values(sim, tmp_path):
    """$FIL 24 bytes longer, offsets not updated: before, DATA was read 24 bytes early (misaligned)."""
    clean = read_events(sim / "P001_HLADR.fcs")
    bad = tmp_path / "P001_HLADR.fcs"
    bad.write_bytes(_lengthen_fil((sim / "P001_HLADR.fcs").read_bytes()))
    ev, report = read_fcs(bad)
    np.testing.assert_array_equal(ev.data, clean.data)
    assert "text_overran_header_offsets" in ev.quirks and report.reader == "hladr"


def test_text_lengthened_tube_is_not_a_plain_pass_in_a_run(sim, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for p in sim.iterdir():
        if p.is_file():
            (run / p.name).write_bytes(p.read_bytes())
    (run / "P001_HLADR.fcs").write_bytes(_lengthen_fil((sim / "P001_HLADR.fcs").read_bytes()))
    main(["run", str(sim), "--out", str(tmp_path / "clean"), "--quiet"])
    main(["run", str(run), "--out", str(tmp_path / "edited"), "--quiet"])
    rows = {n: list(csv.DictReader((tmp_path / n / "results.csv").read_text().splitlines()))
            for n in ("clean", "edited")}
    clean, edited = rows["clean"][0], rows["edited"][0]
    assert edited["hladr_abc"] == clean["hladr_abc"]  # the very value, not a misaligned one
    assert edited["qc"] != "pass" and "read_repaired" in edited["flags"].split(";")


def test_text_lengthened_without_moved_data_is_refused(sim, tmp_path):
    """The overrun is proven only if DATA moved by as much holds exactly $TOT events."""
    buf = _lengthen_fil((sim / "P001_HLADR.fcs").read_bytes())[:-24]
    bad = tmp_path / "cut.fcs"
    bad.write_bytes(buf)
    with pytest.raises(ReadError, match=r"^cut\.fcs: ") as info:
        read_events(bad)
    assert "\n" not in str(info.value)


def test_shifted_offsets_refused_by_plausibility(sim, tmp_path):
    """HEADER and TEXT DATA offsets all 4 bytes late, 4 bytes appended: the counts fit, columns rotate."""
    buf = (sim / "P001_HLADR.fcs").read_bytes()
    b0, b1 = int(buf[26:34]), int(buf[34:42])
    buf = buf[:26] + str(b0 + 4).rjust(8).encode() + str(b1 + 4).rjust(8).encode() + buf[42:]
    for key, v in ((b"$BEGINDATA", b0 + 4), (b"$ENDDATA", b1 + 4)):
        old = re.search(rb"/" + re.escape(key) + rb"/([^/]*)/", buf).group(1)
        buf = _edit(buf, key, str(v).rjust(len(old), "0").encode())
    bad = tmp_path / "late.fcs"
    bad.write_bytes(buf + b"\0\0\0\0")
    with pytest.raises(ReadError, match=r"^late\.fcs: .*(time channel|NaN)"):
        read_events(bad)


REAL = [
    "cytoflow/beads.fcs", "FlowIO/100715.fcs", "FlowIO/G11.fcs", "FlowIO/B01 KC-A-W---91-US.fcs",
    "cytoflow/instruments/Miltenyi Biotec - MACSQuant Analyzer.fcs", "FlowIO/3FITC_4PE_004.fcs",
    "cytoflow/instruments/Cytek NL-2000.fcs", "flowWorkspaceData/a2004_O1T2pb05i_A2_A02.fcs",
]  # fmt: skip


@pytest.mark.corpus
@pytest.mark.parametrize("rel", REAL)
@pytest.mark.parametrize("k", [1, 4, 24])
def test_real_file_text_lengthened_reads_right_or_is_refused(corpus, tmp_path, rel, k):
    src = corpus / rel
    buf = src.read_bytes()
    key = next(key for key in (b"$FIL", b"$DATE", b"$CYT", b"CREATOR", b"$SRC")
               if re.search(rb"[/\\|\x0c]" + re.escape(key) + rb"[/\\|\x0c]", buf))  # fmt: skip
    d = buf[int(buf[10:18]) : int(buf[10:18]) + 1]
    m = re.search(re.escape(d + key + d) + rb"([^" + re.escape(d) + rb"]*)" + re.escape(d), buf)
    bad = tmp_path / src.name
    bad.write_bytes(buf[: m.start(1)] + m.group(1) + b"Q" * k + buf[m.end(1) :])
    try:
        ev = read_events(bad)
    except ReadError as exc:
        assert str(exc).startswith(src.name) and not getattr(exc, "internal", False)
        return
    np.testing.assert_array_equal(ev.data, read_events(src).data)
    assert "text_overran_header_offsets" in ev.quirks


def test_tot_zero_over_full_data_is_refused(sim, tmp_path):
    buf = (sim / "P001_HLADR.fcs").read_bytes()
    bad = tmp_path / "tot0.fcs"
    bad.write_bytes(_edit(buf, b"$TOT", b"00000"))
    with pytest.raises(ReadError, match=r"^tot0\.fcs: \$TOT=0 but the DATA segment has 640000 bytes"):
        read_events(bad)


def test_empty_tube_still_reads_zero_events(tmp_path):
    write_fcs(tmp_path / "empty.fcs", np.zeros((0, 2)), ["FSC-A", "SSC-A"])
    assert read_events(tmp_path / "empty.fcs").data.shape == (0, 2)


LMD = ["cytoflow/instruments/Beckman Coulter - Gallios.LMD",
       "cytoflow/instruments/Beckman Coulter - Cytomics FC500.LMD", "FlowIO/coulter.lmd"]  # fmt: skip


@pytest.mark.corpus
@pytest.mark.parametrize("rel", LMD)
def test_truncated_lmd_is_refused_not_read_from_its_fcs2_dataset(corpus, tmp_path, rel):
    src = corpus / rel
    buf = src.read_bytes()
    second = read_fcs(src)[1].datasets[1].offset
    for cut in (len(buf) - 5000, second + 20):
        bad = tmp_path / src.name
        bad.write_bytes(buf[:cut])
        with pytest.raises(ReadError, match=r"(FCS 3\.0 dataset 2|second dataset that is missing)") as info:
            read_events(bad)
        assert str(info.value).startswith(src.name) and "\n" not in str(info.value)
        assert read_events(bad, dataset=1).n_events == read_events(src, dataset=1).n_events  # on request


@pytest.mark.parametrize("timestep", ["0", "-1"])
def test_timestep_not_positive_is_recorded(tmp_path, timestep):
    data = np.column_stack([np.arange(200.0), np.linspace(1, 1000, 200)])
    write_fcs(tmp_path / "t.fcs", data, ["Time", "FSC-A"], keywords={"$TIMESTEP": timestep})
    ev = read_events(tmp_path / "t.fcs")
    assert "timestep_malformed_ignored" in ev.quirks
    np.testing.assert_array_equal(ev.column("Time"), np.arange(200.0, dtype=np.float32))


@pytest.mark.parametrize("gain", ["-1", "1e308", "-0.5"])
def test_implausible_gain_is_refused(tmp_path, gain):
    data = np.column_stack([np.arange(200.0), np.linspace(1, 1000, 200)])
    write_fcs(tmp_path / "g.fcs", data, ["Time", "PE-A"], keywords={"$P2G": gain})
    with pytest.raises(ReadError, match=r"^g\.fcs: \$P2G=.* is not a plausible gain"):
        read_events(tmp_path / "g.fcs")


def test_padded_file_reads_with_memory_bounded_by_its_data(sim, tmp_path):
    """A 641 KB tube padded (sparse) to 2 GiB: before, the whole file was read (peak RSS > 2 GB)."""
    padded = tmp_path / "padded.fcs"
    padded.write_bytes((sim / "P001_HLADR.fcs").read_bytes())
    subprocess.run(["truncate", "-s", "2G", str(padded)], check=True)
    code = (
        "import resource, sys; from hladr.fcs.read import read_events; "
        f"ev = read_events({str(padded)!r}); "
        "print(ev.n_events, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    n, peak_mb = map(int, out.stdout.split())
    assert n == 20000 and peak_mb < 1024, peak_mb


def test_non_numeric_spillover_reason_names_the_file(sim, tmp_path):
    buf = (sim / "P001_HLADR.fcs").read_bytes()
    old = re.search(rb"/\$SPILLOVER/([^/]*)/", buf).group(1)
    bad = tmp_path / "spill.fcs"
    bad.write_bytes(_edit(buf, b"$SPILLOVER", old[:-6] + b"abcdef"))
    with pytest.raises(ReadError, match=r"^spill\.fcs: \$SPILLOVER holds a value that is not a number"):
        spillover_of(read_events(bad))
