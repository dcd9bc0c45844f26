"""Proofs the reader asks of a file before reading it (issue 12, round 3), each on small files built here.

- FCS 3.1 CRC after DATA: verified when not zero;
- HEADER and TEXT DATA offsets that disagree: only a segment starting right after TEXT is read;
- a dataset that follows the last one of the $NEXTDATA chain: the default read is refused;
- no $DATATYPE and integers beyond $PnR: floats read as integers, refused;
- an event counter that counts +1 per event and then breaks: refused;
- a TEXT overrun repaired only when DATA where the offsets put it is impossible;
- two shifts that cancel out (TEXT shortened in place, bytes inserted into DATA; fuzzer seed 12,
  Sample_Well_A02.fcs), and short misaligned runs at either end of DATA: the alignment check.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from hladr.errors import ReadError
from hladr.fcs import _align as fa
from hladr.fcs.read import read_fcs
from hladr.fcs.write import write_fcs


def _events(n: int = 2000, d: int = 4, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(1, 1000, (n, d)).astype(np.float32)


def _write(tmp_path: Path, data: np.ndarray, name: str = "f.fcs", **kw) -> bytes:
    path = tmp_path / name
    write_fcs(path, data, [f"C{j}" for j in range(data.shape[1])], **kw)
    return path.read_bytes()


def _read(tmp_path: Path, buf: bytes, name: str = "m.fcs", **kw):
    (tmp_path / name).write_bytes(buf)
    return read_fcs(tmp_path / name, sha256=False, **kw)


def _refused(tmp_path: Path, buf: bytes, pattern: str, **kw) -> str:
    with pytest.raises(ReadError, match=r"^m\.fcs: " + pattern) as info:
        _read(tmp_path, buf, **kw)
    assert "\n" not in str(info.value)
    return str(info.value)


def _data_span(buf: bytes) -> tuple[int, int]:
    return int(buf[26:34]), int(buf[34:42]) + 1


# ----------------------------------------------------------------------------- CRC


def _crc16(data: bytes, start: int = 0) -> int:
    """CRC-16-CCITT (polynomial 0x1021), bit by bit: independent of the reader's binascii.crc_hqx."""
    crc = start
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


@pytest.mark.parametrize(("start", "fmt"), [(0, "{:08X}"), (0xFFFF, "{:08X}"), (0, "{:08d}"), (0xFFFF, "{:08x}")])
def test_correct_crc_reads_right_and_a_flipped_data_byte_is_refused(tmp_path, start, fmt):
    data = _events()
    buf = _write(tmp_path, data)
    d0, d1 = _data_span(buf)
    assert d1 == len(buf)
    crc = fmt.format(_crc16(buf, start)).encode()
    ev, _ = _read(tmp_path, buf + crc)
    np.testing.assert_array_equal(ev.data, data)
    for at in (d0, (d0 + d1) // 2, d1 - 1):
        flipped = bytearray(buf)
        flipped[at] ^= 0x10
        _refused(tmp_path, bytes(flipped) + crc, r"the CRC after DATA does not match")


def test_crc_after_padding_and_a_zero_crc(tmp_path):
    data = _events(500)
    buf = _write(tmp_path, data)
    padded = buf + b"\x00" * 6
    ev, _ = _read(tmp_path, padded + f"{_crc16(padded):08X}".encode())  # over HEADER..the byte before the CRC
    np.testing.assert_array_equal(ev.data, data)
    ev, _ = _read(tmp_path, padded + f"{_crc16(buf):08X}".encode())  # over HEADER..DATA end
    np.testing.assert_array_equal(ev.data, data)
    flipped = bytearray(buf)
    flipped[-3] ^= 1
    ev, _ = _read(tmp_path, bytes(flipped) + b"00000000")  # zero: not computed, nothing to verify
    assert not np.array_equal(ev.data, data)


def test_crc_of_a_changed_text_is_refused(tmp_path):
    buf = _write(tmp_path, _events(300), keywords={"$FIL": "tube_01.fcs"})
    crc = f"{_crc16(buf):08X}".encode()
    _refused(tmp_path, buf.replace(b"tube_01", b"tube_02") + crc, r"the CRC after DATA does not match")


def test_crc_candidates_agree_with_the_bitwise_crc():
    raw = bytes(range(256)) * 3
    assert fa.crc_candidates(raw, 0, len(raw), len(raw)) == {_crc16(raw), _crc16(raw, 0xFFFF)}


# ----------------------------------------------------------------------------- HEADER vs TEXT offsets


def _disagreeing(tmp_path: Path, k: int = 6) -> tuple[bytes, np.ndarray]:
    """HEADER's DATA offsets right after TEXT (right); TEXT's k bytes later, k NULs appended so both fit."""
    data = _events(1000)
    buf = _write(tmp_path, data)
    d0, d1 = _data_span(buf)
    text = re.sub(
        rb"(\$BEGINDATA.)(\d{20})(.\$ENDDATA.)(\d{20})",
        lambda m: m[1] + str(d0 + k).zfill(20).encode() + m[3] + str(d1 - 1 + k).zfill(20).encode(),
        buf[:d0],
    )
    assert len(text) == d0 and text != buf[:d0]
    return text + buf[d0:] + b"\x00" * k, data


def test_disagreeing_offsets_read_the_segment_right_after_text(tmp_path):
    buf, data = _disagreeing(tmp_path)
    ev, rep = _read(tmp_path, buf)
    np.testing.assert_array_equal(ev.data, data)
    assert "header_text_offset_mismatch" in ev.quirks


@pytest.mark.parametrize("field", [b"%8d", b"%8d+1"])
def test_disagreeing_offsets_with_a_damaged_header_are_refused(tmp_path, field):
    """CyAn (seed 13): HEADER's DATA start damaged, TEXT's offset (inside DATA, fitting $TOT) was read."""
    buf, _ = _disagreeing(tmp_path)
    d0 = int(buf[26:34])
    damaged = buf[:26] + (b"%8d" % (d0 + 1 if field.endswith(b"+1") else 58)) + buf[34:]
    _refused(tmp_path, damaged, r"(HEADER and TEXT give different DATA offsets|DATA segment)")


# ----------------------------------------------------------------------------- cut $NEXTDATA chain


def test_dataset_after_the_chain_is_refused_by_default(tmp_path):
    """coulter.lmd / Gallios.LMD with $NEXTDATA=0: their FCS 2.0 dataset was read as if alone."""
    first = _write(tmp_path, _events(400, 3, seed=2), "a.fcs", keywords={"$NEXTDATA": "0" * 10})
    second = _write(tmp_path, _events(400, 5, seed=3), "b.fcs")
    pad = b"\x00" * 300
    key = b"$NEXTDATA" + first[58:59]  # and the writer's delimiter
    chained = first.replace(key + b"0" * 10, key + str(len(first) + len(pad)).zfill(10).encode())
    assert chained != first
    ev, _ = _read(tmp_path, chained + pad + second)
    assert ev.data.shape == (400, 3) and ev.n_datasets == 2
    unchained = first + pad + second
    _refused(tmp_path, unchained, r"another dataset \(3\.1\) starts at byte \d+ but \$NEXTDATA")
    ev, _ = _read(tmp_path, unchained, dataset=1)  # asked for explicitly: read
    assert ev.data.shape == (400, 3)


# ----------------------------------------------------------------------------- $DATATYPE damaged


def _no_datatype(buf: bytes) -> bytes:
    out = buf.replace(b"$DATATYPE", b"$XATATYPE", 1)
    assert out != buf
    return out


def test_floats_without_datatype_are_refused(tmp_path):
    buf = _write(tmp_path, _events(500))
    _refused(tmp_path, _no_datatype(buf), r"no \$DATATYPE, and read as integers the values exceed \$PnR")


def test_integers_without_datatype_still_read(tmp_path):
    data = np.rint(_events(500)).astype(np.float32)
    buf = _write(tmp_path, data, datatype="I", bits=16, pnr=[1024] * 4)
    ev, _ = _read(tmp_path, _no_datatype(buf))
    np.testing.assert_array_equal(ev.data, data)
    assert "no_datatype_assumed_I" in ev.quirks


# ----------------------------------------------------------------------------- event counter


def _counted(tmp_path: Path, n: int = 3000, name: str = "Event Count", tail: int = 2000) -> tuple[bytes, np.ndarray]:
    """16-bit integers with an event counter (2, 3, 4, ... as CyAn's) and a long unexplained tail."""
    rng = np.random.default_rng(5)
    # the other channels span the counter's range: a rotation by one channel keeps the byte profile, so
    # the alignment check cannot see the break (as in CyAn)
    data = rng.integers(0, n, (n, 4)).astype(np.float32)
    data[:, 2] = np.arange(2, n + 2)
    path = tmp_path / "c.fcs"
    write_fcs(path, data, ["FS", "SS", name, "FL1"], datatype="I", bits=16, pnr=[65536] * 4)
    return path.read_bytes() + bytes(rng.integers(1, 256, tail, dtype=np.uint8)), data


def test_counter_reads_right(tmp_path):
    buf, data = _counted(tmp_path)
    np.testing.assert_array_equal(_read(tmp_path, buf)[0].data, data)


@pytest.mark.parametrize(("where", "k"), [(0.5, 2), (0.9, 8), (0.999, 2), (0.3, -4)])
def test_cut_or_insertion_hidden_by_the_tail_breaks_the_counter(tmp_path, where, k):
    """CyAn (seeds 12-15): 2,418 unexplained bytes after DATA hide a cut; the alignment ratio stays low."""
    buf, _ = _counted(tmp_path)
    d0, d1 = _data_span(buf)
    at = d0 + int((d1 - d0) * where)
    mutant = buf[:at] + buf[at + k :] if k > 0 else buf[:at] + b"\x00" * -k + buf[at:]
    message = _refused(tmp_path, mutant, r"(the event counter|the last events' bytes line up)")
    if where >= 0.9:  # a break in the last block: the alignment ratio stays low, the counter sees it
        assert "the event counter 'Event Count' counts +1 per event, then jumps" in message


def test_a_channel_that_only_looks_like_a_counter_is_not_checked(tmp_path):
    """FlowKit's diamond example counts +1 in channel_A with one jump: data, not a counter; it reads."""
    rng = np.random.default_rng(6)
    data = rng.integers(0, 3000, (3000, 2)).astype(np.float32)
    data[:, 0] = np.r_[np.arange(1500), np.arange(1500) + 5000]
    path = tmp_path / "d.fcs"
    write_fcs(path, data, ["channel_A", "channel_B"], datatype="I", bits=16, pnr=[65536] * 2)
    np.testing.assert_array_equal(_read(tmp_path, path.read_bytes())[0].data, data)
    write_fcs(path, data, ["Event Count", "channel_B"], datatype="I", bits=16, pnr=[65536] * 2)
    _refused(tmp_path, path.read_bytes(),
             r"the event counter 'Event Count' counts .1 per event, then jumps at event 1501")


def test_counter_may_wrap_at_its_range(tmp_path):
    n = 70_000
    data = np.zeros((n, 2), np.float32)
    data[:, 0] = np.arange(n) % 65536
    data[:, 1] = 7
    path = tmp_path / "w.fcs"
    write_fcs(path, data, ["Event #", "FL1"], datatype="I", bits=16, pnr=[65536, 65536])
    np.testing.assert_array_equal(_read(tmp_path, path.read_bytes())[0].data, data)


# ----------------------------------------------------------------------------- TEXT overrun repair


def test_text_end_moved_back_with_bytes_appended_is_refused(tmp_path):
    """B01 (seed 12): HEADER's TEXT end one byte early and 4 bytes appended was read one byte late."""
    data = _events(800)
    data[0, 0] = 0.0  # DATA starts with a NUL byte, as B01's does: no padding check sees the move
    buf = _write(tmp_path, data)
    t1 = int(buf[18:26])
    mutant = buf[:18] + b"%8d" % (t1 - 1) + buf[26:] + b"\x00" * 4
    _refused(tmp_path, mutant, r"TEXT runs 1 bytes past the end HEADER gives, but DATA fits where the offsets say")


def test_text_lengthened_in_place_is_still_repaired(tmp_path):
    data = _events(800)
    buf = _write(tmp_path, data, keywords={"$FIL": "a.fcs"})
    ev, _ = _read(tmp_path, buf.replace(b"a.fcs", b"a_renamed_by_a_tool.fcs"))
    np.testing.assert_array_equal(ev.data, data)
    assert "text_overran_header_offsets" in ev.quirks


# ----------------------------------------------------------------------------- shifts that cancel out


def _blanks_before_data(buf: bytes, blanks: int) -> bytes:
    """``buf`` with ``blanks`` blanks between TEXT and DATA (offsets updated), as Sample_Well_A02.fcs is written."""
    d0, d1 = _data_span(buf)
    moved = (str(d0 + blanks).zfill(20).encode(), str(d1 - 1 + blanks).zfill(20).encode())
    text = re.sub(
        rb"(\$BEGINDATA.)(\d{20})(.\$ENDDATA.)(\d{20})", lambda m: m[1] + moved[0] + m[3] + moved[1], buf[58:d0]
    )
    header = buf[:26] + b"%8d%8d" % (d0 + blanks, d1 - 1 + blanks) + buf[42:58]
    return header + text + b" " * blanks + buf[d0:]


def _integer_tube(tmp_path: Path, n: int = 4000) -> tuple[bytes, np.ndarray]:
    """10-bit values in 16-bit words (FACSCalibur, Sample_Well_A02.fcs), no time channel, blanks before DATA,
    nothing after it: a misaligned word stays within $PnR once masked, so no value looks impossible. The
    channels differ in range, as a cytometer's do (a rotation onto a like channel leaves no trace)."""
    rng = np.random.default_rng(7)
    data = np.column_stack([rng.integers(0, top, n) for top in (1024, 700, 400, 200, 100, 50)]).astype(np.float32)
    buf = _write(tmp_path, data, datatype="I", bits=16, pnr=[1024] * 6, keywords={"$FIL": "tube_0001.fcs"})
    return _blanks_before_data(buf, 200), data


def _shortened_and_inserted(buf: bytes, k: int, event: int) -> bytes:
    """$FIL shortened by ``k`` bytes in place (DATA then starts ``k`` bytes before its offsets: the blanks
    after TEXT hide it) and ``k`` NULs inserted in the word of ``event`` (the file's size is restored)."""
    shorter = buf.replace(b"tube_0001.fcs", b"tube_0001.fcs"[:-k], 1)
    at = _data_span(buf)[0] - k + event * 12 + 5
    return shorter[:at] + b"\x00" * k + shorter[at:]


def test_integer_tube_with_blanks_before_data_reads_right(tmp_path):
    buf, data = _integer_tube(tmp_path)
    np.testing.assert_array_equal(_read(tmp_path, buf)[0].data, data)


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("event", [1000, 2000, 3200])
def test_text_shortened_and_bytes_inserted_into_data_are_refused(tmp_path, k, event):
    """Fuzzer seed 12, Sample_Well_A02.fcs (text_shorten & data_insert): the two shifts cancel out, HEADER,
    TEXT, $TOT and the file's size agree, nothing follows DATA, and the events before the insertion were
    read misaligned with values in range. The alignment check now runs whatever follows DATA."""
    buf, _ = _integer_tube(tmp_path)
    mutant = _shortened_and_inserted(buf, k, event)
    assert len(mutant) == len(buf)
    _refused(tmp_path, mutant, r"the .*events' bytes line up with .* only at another offset")


@pytest.mark.parametrize("k", [1, 2, 4])
@pytest.mark.parametrize("event", [60, 100, 200])
def test_short_misaligned_run_at_the_start_of_data_is_refused(tmp_path, k, event):
    """The same damage with the insertion among the first events: fewer than half of the first block (500
    events here) misaligned leave the first/last ratio under its limit; the first 64/128 events compared
    with the events after them see it."""
    buf, _ = _integer_tube(tmp_path)
    _refused(tmp_path, _shortened_and_inserted(buf, k, event), r"the first \d+ events' bytes line up with the events")


@pytest.mark.parametrize("k", [1, 2, 4, -1, -2])
@pytest.mark.parametrize("back", [60, 100, 200])
def test_short_misaligned_run_at_the_end_of_data_hidden_by_padding_is_refused(tmp_path, k, back):
    """Bytes inserted (or cut) among the last events, NUL padding after DATA absorbing the shift."""
    buf, data = _integer_tube(tmp_path)
    padded = buf + b"\x00" * 500
    np.testing.assert_array_equal(_read(tmp_path, padded)[0].data, data)
    at = _data_span(buf)[1] - back * 12 + 3
    mutant = padded[:at] + b"\x00" * k + padded[at:] if k > 0 else padded[:at] + padded[at - k :]
    _refused(tmp_path, mutant, r"the last \d+ events' bytes line up with the events before them")


@pytest.mark.corpus
def test_sample_well_a02_shortened_text_and_inserted_byte_are_refused(corpus, tmp_path):
    """The fuzzer's case itself: 'BD$WORD42' 100 -> 10, then a NUL inserted at byte 78022 (inside DATA)."""
    buf = (corpus / "fcsparser/Sample_Well_A02.fcs").read_bytes()
    m = re.search(rb"\\BD\$WORD42\\(100)\\", buf)
    mutant = buf[: m.end(1) - 1] + buf[m.end(1) :]
    mutant = mutant[:78022] + b"\x00" + mutant[78022:]
    assert len(mutant) == len(buf)
    _refused(tmp_path, mutant, r"the .*events' bytes line up with .* only at another offset")
