"""DATA shifted inside the file (issue 12, round 2): bytes cut from or inserted into DATA, or TEXT edited in
place, where the file's size still fits $TOT because bytes follow DATA. Refused, never misread.

Mutants are built at test time from a simulated tube (float32, no bytes after DATA) given the tails
real files have: an FCS 3.x CRC field "00000000", NUL padding, an ANALYSIS segment.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import fcs_mutations as fm
import numpy as np
import pytest

from hladr.cli import main
from hladr.errors import ReadError
from hladr.fcs import _align as fa
from hladr.fcs.read import read_fcs

CRC = b"00000000"


@pytest.fixture(scope="module")
def tube(tmp_path_factory) -> tuple[bytes, np.ndarray, int, int]:
    """(bytes, events, DATA start, DATA end) of a simulated 3,000-event tube; DATA runs to the end."""
    out = tmp_path_factory.mktemp("sim")
    assert main(["simulate", str(out), "--samples", "1", "--events", "3000", "--seed", "4"]) == 0
    path = next(p for p in sorted(out.glob("*.fcs")) if "bead" not in p.name.lower())
    ev, rep = read_fcs(path, sha256=False)
    buf = path.read_bytes()
    assert rep.data_offset + rep.data_bytes == len(buf)
    return buf, ev.data.copy(), rep.data_offset, rep.data_offset + rep.data_bytes


def _read(tmp_path: Path, buf: bytes, name: str = "m.fcs") -> np.ndarray:
    (tmp_path / name).write_bytes(buf)
    return read_fcs(tmp_path / name, sha256=False)[0].data


def _refused(tmp_path: Path, buf: bytes, pattern: str) -> str:
    with pytest.raises(ReadError, match=r"^m\.fcs: " + pattern) as info:
        _read(tmp_path, buf)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("tail", [CRC, b"\x00" * 6 + CRC, b"\x00" * 5000, b"\x00" * 300 + CRC + b"\n"])
def test_clean_file_with_a_tail_reads_right(tube, tmp_path, tail):
    buf, clean, _, _ = tube
    np.testing.assert_array_equal(_read(tmp_path, buf + tail), clean)


@pytest.mark.parametrize("k", [1, 2, 4, 7])
def test_cut_inside_data_breaks_the_crc_and_is_refused(tube, tmp_path, k):
    buf, _, start, end = tube
    at = (start + end) // 2
    _refused(tmp_path, buf[:at] + buf[at + k :] + CRC, r".* bytes after DATA are neither padding nor a CRC")


def test_cut_of_the_crcs_length_is_refused(tube, tmp_path):
    buf, _, start, end = tube
    at = (start + end) // 2
    _refused(tmp_path, buf[:at] + buf[at + 8 :] + CRC, r"DATA ends with what looks like the CRC field")


@pytest.mark.parametrize("k", [1, 3, 4, 8])
def test_insertion_into_data_is_refused(tube, tmp_path, k):
    """With a CRC after DATA, or nothing: the end of DATA pushed out is a short tail of data bytes."""
    buf, _, start, end = tube
    at = start + (end - start) // 3
    mutant = buf[:at] + bytes(range(200, 200 + k)) + buf[at:]
    _refused(tmp_path, mutant, r".* bytes after DATA are neither padding nor a CRC")
    _refused(tmp_path, mutant + CRC, r".* bytes after DATA are neither padding nor a CRC")


@pytest.mark.parametrize("k", [1, 2, 4, 8, -1, -2, -4])
def test_shift_hidden_by_padding_is_refused_by_alignment(tube, tmp_path, k):
    """5,000 NULs after DATA absorb the shift; the last events then line up at another rotation."""
    buf, _, start, end = tube
    at = start + (end - start) // 4
    mutant = buf[:at] + b"\x17" * k + buf[at:] if k > 0 else buf[:at] + buf[at - k :]
    _refused(tmp_path, mutant + b"\x00" * 5000, r"the last events' bytes line up .* only at another offset")


@pytest.mark.corpus
def test_alignment_ratio_of_clean_corpus_files_is_below_the_limit(corpus):
    """The calibration of ALIGNMENT['max_ratio'] (see its comment), kept as a guard."""
    from hladr.fcs import _locate as floc
    from hladr.fcs import _parse as fp

    worst = 0.0
    for path in sorted(corpus.rglob("*")):
        if path.suffix.lower() not in (".fcs", ".lmd"):
            continue
        try:
            ev, rep = read_fcs(path, sha256=False)
        except ReadError:
            continue
        buf = memoryview(np.frombuffer(path.read_bytes(), np.uint8))
        datasets = fp.scan_datasets(buf, path.name)
        _, _, layout, _ = floc.locate(buf, datasets, ev.dataset, path.name, False, ev.dataset > 1)
        worst = max(worst, fa.alignment_ratio(buf, layout) or 0.0)
    assert 0.5 < worst < fa.ALIGNMENT["max_ratio"] / 1.25


@pytest.mark.corpus
def test_text_shortened_in_place_moves_analysis_and_is_refused(corpus, tmp_path):
    """System II LMD: TEXT, 870 blanks, DATA, blanks, ANALYSIS; a shorter $P4S moves ANALYSIS away."""
    buf = (corpus / "cytoflow/instruments/System II listmode with extra info in bits D10-D15.LMD").read_bytes()
    m = re.search(rb"!\$P4S!([^!]{3,})!", buf)
    mutant = buf[: m.start(1)] + m.group(1)[:-2] + buf[m.end(1) :]
    _refused(tmp_path, mutant, r"the ANALYSIS segment declared at byte \d+ does not start with the TEXT delimiter")


def test_damaged_delimiter_pairing_values_as_keywords_is_refused(tube, tmp_path):
    buf, _, _, _ = tube
    m = re.search(rb"/\$TOT/\d+/", buf)
    mutant = buf[: m.start() + 5] + b"Q" + buf[m.start() + 6 :]  # "/$TOT/3000/" -> "/$TOTQ3000/"
    _refused(tmp_path, mutant, r"TEXT has an odd number of keywords and values, and values where keywords")


def test_judge_tells_a_declared_change_from_a_misread(tube, tmp_path):
    """A valid new $PnG is 'changed' (the reader did what the file says); a shifted DATA never is."""
    buf, clean, start, end = tube
    m = re.search(rb"/\$P3G/([^/]*)/", buf)
    if m is None:  # the simulator writes no gain: declare one of the same length
        pytest.skip("no $P3G")
    new = b"2".ljust(len(m.group(1)), b"0") if len(m.group(1)) > 1 else b"2"
    mutant = buf[: m.start(1)] + new + buf[m.end(1) :]
    label = f"png_valid:$P3G={new.decode()}"
    outcome, _ = fm.judge(mutant, clean, "g.fcs", tmp_path, label=label, edits={"p3g": new.decode()}, source=buf)
    assert outcome == "changed"
    wrong = np.array(clean, copy=True)
    wrong[:, 0] += 1
    mutant = buf[: m.start(1)] + new + buf[m.end(1) :]
    # the same label and edits cannot excuse values that are not the declared reading
    (tmp_path / "w.fcs").write_bytes(mutant)
    assert fm.declared_events(buf, {"p3g": new.decode()}, "w.fcs") is not None
    at = (start + end) // 2
    shifted = buf[:at] + b"\x00" * 4 + buf[at:] + CRC
    outcome, _ = fm.judge(shifted, clean, "s.fcs", tmp_path, label="data_insert:x+4", edits={}, source=buf)
    assert outcome == "refused"


def test_fuzzed_data_cuts_and_insertions_never_misread(tube, tmp_path):
    """The two kinds that gave 52 of round 1's 92 misreads, on the tube ending with a CRC or nothing."""
    buf, clean, _, _ = tube
    rng = random.Random(12)
    for tail in (b"", CRC):
        source = buf + tail
        for k in range(40):
            mutant, label, edits = (fm.data_cut if k % 2 else fm.data_insert)(source, rng)
            outcome, detail = fm.judge(mutant, clean, f"f{k}.fcs", tmp_path, label=label, edits=edits, source=source)
            assert outcome in ("right", "refused"), f"{label} ({len(tail)}-byte tail): {outcome} {detail}"


def test_fuzzed_shifts_hidden_by_padding_are_mostly_refused(tube, tmp_path):
    """Behind NUL padding only the alignment check sees a shift; a rotation by one float32 channel onto a
    like channel (FSC-A onto FSC-H) can pass it. Documented limit (notes/12-reader2.md): at most 1 in 8."""
    buf, clean, _, _ = tube
    rng = random.Random(12)
    source = buf + b"\x00" * 3000
    outcomes = []
    for k in range(40):
        mutant, label, edits = (fm.data_cut if k % 2 else fm.data_insert)(source, rng)
        outcomes.append(fm.judge(mutant, clean, f"p{k}.fcs", tmp_path, label=label, edits=edits, source=source)[0])
    assert "traceback" not in outcomes and outcomes.count("misread") <= 5, outcomes


def test_huge_nextdata_in_a_large_file_is_refused_not_a_traceback(tube, tmp_path):
    """Fuzzer seed 13: $NEXTDATA lengthened to 25 digits made the extent reader's pread overflow."""
    buf, _, _, _ = tube
    m = re.search(rb"/\$NEXTDATA/([^/]*)/", buf)
    mutant = buf[: m.start(1)] + b"7" * 25 + buf[m.end(1) :] + b"\x00" * (2 << 20)
    with pytest.raises(ReadError) as info:
        _read(tmp_path, mutant)
    assert not getattr(info.value, "internal", False) and "\n" not in str(info.value)
