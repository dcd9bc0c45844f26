"""Reader round trips on generated FCS files, against NumPy references.

Each datatype, width and byte order is written (by ``hladr.fcs.write`` or, for the
layouts it does not write, by the small byte-level builder below) and read back
through both engines: flowio where it applies, and hladr's own decoder.
"""

from __future__ import annotations

import io
import time
import tracemalloc
import warnings

import flowio
import numpy as np
import pytest

from hladr.errors import ReadError
from hladr.events import Events
from hladr.fcs import _decode as fd
from hladr.fcs import _layout as fl
from hladr.fcs import _parse as fp
from hladr.fcs.read import list_datasets, parse_spillover, read_events, read_fcs
from hladr.fcs.write import write_fcs

RNG_SEED = 20240601


# --------------------------------------------------------------------------- builder


def _text(kw: dict[str, str], delim: str = "/") -> bytes:
    parts = [delim]
    for k, v in kw.items():
        parts.append(f"{k.replace(delim, delim * 2)}{delim}{str(v).replace(delim, delim * 2)}{delim}")
    return "".join(parts).encode("latin-1")


def fcs_bytes(
    kw: dict[str, str],
    body: bytes,
    *,
    version: str = "3.1",
    header_data: str = "match",
    text_data: bool = True,
    end_adjust: int = 0,
    text_begin_adjust: int = 0,
) -> bytes:
    """One dataset: HEADER, TEXT at byte 58, DATA right after TEXT.

    ``header_data``: "match" (HEADER DATA offsets equal the true ones), "blank"
    (spaces), "zero". ``end_adjust`` is added to both declared DATA ends (the
    off-by-one bug is +1); ``text_begin_adjust`` shifts only TEXT $BEGINDATA.
    """
    kw = dict(kw)
    if text_data:
        kw["$BEGINDATA"] = "0" * 12
        kw["$ENDDATA"] = "0" * 12
    text = _text(kw)
    d0 = 58 + len(text)
    d1 = d0 + len(body) - 1 + end_adjust
    if text_data:
        kw["$BEGINDATA"] = str(d0 + text_begin_adjust).zfill(12)
        kw["$ENDDATA"] = str(d1).zfill(12)
        text = _text(kw)
        assert 58 + len(text) == d0
    if header_data == "match":
        hd = f"{d0:>8d}{d1:>8d}"
    elif header_data == "blank":
        hd = " " * 16
    else:
        hd = f"{0:>8d}{0:>8d}"
    header = f"FCS{version}    {58:>8d}{57 + len(text):>8d}{hd}{0:>8d}{0:>8d}".encode()
    assert len(header) == 58
    return header + text + body


def _channel_kw(names, bits, ranges, *, pne=None, png=None) -> dict[str, str]:
    kw = {}
    for j, name in enumerate(names, 1):
        kw[f"$P{j}N"] = name
        kw[f"$P{j}B"] = str(bits[j - 1])
        kw[f"$P{j}R"] = str(ranges[j - 1])
        kw[f"$P{j}E"] = "0,0" if pne is None else pne[j - 1]
        if png is not None:
            kw[f"$P{j}G"] = str(png[j - 1])
    return kw


def _base_kw(n: int, d: int, datatype: str, byteord: str) -> dict[str, str]:
    return {"$TOT": str(n), "$PAR": str(d), "$DATATYPE": datatype, "$BYTEORD": byteord,
            "$MODE": "L", "$NEXTDATA": "0"}  # fmt: skip


def _ints(rng, n, ranges):
    return np.stack([rng.integers(0, r, n) for r in ranges], axis=1).astype(np.uint64)


# --------------------------------------------------------------------------- fcswrite round trips


@pytest.mark.parametrize("byteorder", ["little", "big"])
@pytest.mark.parametrize("datatype", ["F", "D"])
def test_float_round_trip(tmp_path, datatype, byteorder):
    rng = np.random.default_rng(RNG_SEED)
    data = (rng.standard_normal((500, 4)) * 1000).astype(np.float32)
    path = tmp_path / "f.fcs"
    write_fcs(path, data, ["A", "B", "C", "D"], datatype=datatype, byteorder=byteorder)
    for engine in ("auto", "hladr"):
        ev, report = read_fcs(path, engine=engine)
        np.testing.assert_array_equal(ev.data, data)
        assert ev.data.dtype == np.float32 and ev.n_events == 500
    assert read_fcs(path)[1].reader == "flowio"


@pytest.mark.parametrize("byteorder", ["little", "big"])
@pytest.mark.parametrize(
    "bits", [8, 16, 32, 64, [16, 32, 8, 16], [32, 8, 64, 16]], ids=lambda b: str(b)
)
def test_int_round_trip(tmp_path, bits, byteorder):
    rng = np.random.default_rng(RNG_SEED)
    widths = [bits] * 4 if isinstance(bits, int) else bits
    ranges = [min(2**w, 2**20) for w in widths]
    ref = _ints(rng, 300, ranges)
    path = tmp_path / "i.fcs"
    write_fcs(path, ref, list("WXYZ"), datatype="I", bits=bits, byteorder=byteorder, pnr=ranges)
    for engine in ("auto", "hladr"):
        ev = read_fcs(path, engine=engine)[0]
        np.testing.assert_array_equal(ev.data, ref.astype(np.float32))
    assert ev.pnr == tuple(float(r) for r in ranges)


def test_mask_and_scaling_match_reference(tmp_path):
    """$PnR masks unused high bits; $PnE and $PnG follow the FCS formulas."""
    rng = np.random.default_rng(RNG_SEED)
    n = 1000
    values = rng.integers(0, 1024, (n, 3)).astype(np.uint16)
    flags = rng.integers(0, 64, (n, 3)).astype(np.uint16) << 10  # System II D10-D15
    kw = _base_kw(n, 3, "I", "1,2")
    kw |= _channel_kw(["FS", "FL1 LOG", "FL2"], [16] * 3, [1024] * 3,
                      pne=["0,0", "4,0.1", "0,0"], png=[1, 1, 2.5])  # fmt: skip
    path = tmp_path / "m.fcs"
    path.write_bytes(fcs_bytes(kw, (values | flags).astype("<u2").tobytes(), version="2.0"))
    raw = values.astype(np.float64)
    expected = raw.copy()
    expected[:, 1] = 10 ** (4 * raw[:, 1] / 1024) * 0.1
    expected[:, 2] = raw[:, 2] / 2.5
    for engine in ("auto", "hladr"):
        ev = read_fcs(path, engine=engine)[0]
        np.testing.assert_array_equal(ev.data, expected.astype(np.float32))
        assert "pnr_bitmask_applied" in ev.quirks
    assert ev.pnr == (1024.0, 10**4 * 0.1, 1024 / 2.5)


def test_timestep_scales_time_and_ignores_its_gain(tmp_path):
    data = np.array([[1, 2], [3, 4]], dtype=np.float32)
    path = tmp_path / "t.fcs"
    write_fcs(path, data, ["Time", "FSC-A"], keywords={"$TIMESTEP": "0.5", "$P1G": "0.01"})
    for engine in ("auto", "hladr"):
        ev = read_fcs(path, engine=engine)[0]
        np.testing.assert_allclose(ev.data[:, 0], [0.5, 1.5])
        assert ev.upper_limit("Time") == 262144 * 0.5


# --------------------------------------------------------------------------- layouts fcswrite does not write


@pytest.mark.parametrize("order", ["1,2,3", "3,2,1"])
def test_24_bit_integers(tmp_path, order):
    """Cytek xP5 writes 24-bit words ($PnB=24)."""
    rng = np.random.default_rng(RNG_SEED)
    ref = _ints(rng, 400, [2**24] * 3)
    u4 = ref.astype("<u4").view(np.uint8).reshape(400, 3, 4)
    body = (u4[:, :, :3] if order == "1,2,3" else u4[:, :, 2::-1]).tobytes()
    kw = _base_kw(400, 3, "I", order) | _channel_kw(list("ABC"), [24] * 3, [2**24] * 3)
    path = tmp_path / "x.fcs"
    path.write_bytes(fcs_bytes(kw, body, version="3.0"))
    ev, report = read_fcs(path)
    assert report.reader == "hladr"
    np.testing.assert_array_equal(ev.data, ref.astype(np.float32))


def test_10_bit_in_16_bit_words_with_off_by_one(tmp_path):
    """Beckman FC500 LMD: $PnB=10, values in 16-bit words, $ENDDATA one too far."""
    rng = np.random.default_rng(RNG_SEED)
    ref = rng.integers(0, 1024, (250, 4)).astype(np.uint16)
    kw = _base_kw(250, 4, "I", "1,2") | _channel_kw(list("ABCD"), [10] * 4, [1024] * 4)
    path = tmp_path / "b.lmd"
    body = ref.astype("<u2").tobytes()
    path.write_bytes(fcs_bytes(kw, body + b"\0", version="2.0", text_data=False))
    ev = read_events(path)
    np.testing.assert_array_equal(ev.data, ref.astype(np.float32))
    assert {"pnb_in_wider_words", "offset_off_by_one"} <= set(ev.quirks)


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_bit_packed_12_bit(tmp_path, byteorder):
    rng = np.random.default_rng(RNG_SEED)
    n, bits = 301, [12, 12, 10]
    ref = np.stack([rng.integers(0, 2**b, n) for b in bits], axis=1).astype(np.uint64)
    order = "big" if byteorder == ">" else "little"
    stream = []
    for j, b in enumerate(bits):
        shifts = np.arange(b, dtype=np.uint64)
        if order == "big":
            shifts = shifts[::-1]
        stream.append(((ref[:, j : j + 1] >> shifts) & np.uint64(1)).astype(np.uint8))
    body = np.packbits(np.concatenate(stream, axis=1).ravel(), bitorder=order).tobytes()
    kw = _base_kw(n, 3, "I", "1,2" if byteorder == "<" else "2,1")
    kw |= _channel_kw(list("ABC"), bits, [2**b for b in bits])
    path = tmp_path / "p.fcs"
    path.write_bytes(fcs_bytes(kw, body, version="2.0"))
    ev = read_events(path)
    assert "pnb_bit_packed" in ev.quirks
    np.testing.assert_array_equal(ev.data, ref.astype(np.float32))


def test_ascii_fixed_and_delimited(tmp_path):
    rng = np.random.default_rng(RNG_SEED)
    ref = rng.integers(0, 1000, (50, 3))
    fixed = "".join("".join(f"{v:>5d}" for v in row) for row in ref).encode()
    kw = _base_kw(50, 3, "A", "1,2,3,4") | _channel_kw(list("ABC"), [5] * 3, [1024] * 3)
    (tmp_path / "fixed.fcs").write_bytes(fcs_bytes(kw, fixed))
    np.testing.assert_array_equal(read_events(tmp_path / "fixed.fcs").data, ref)
    delimited = "\n".join(",".join(str(v) for v in row) for row in ref).encode()
    kw = _base_kw(50, 3, "A", "1,2,3,4") | _channel_kw(list("ABC"), ["*"] * 3, [1024] * 3)
    (tmp_path / "delim.fcs").write_bytes(fcs_bytes(kw, delimited))
    np.testing.assert_array_equal(read_events(tmp_path / "delim.fcs").data, ref)
    kw["$TOT"] = "51"
    (tmp_path / "short.fcs").write_bytes(fcs_bytes(kw, delimited))
    with pytest.raises(ReadError, match="ASCII DATA holds 150 values"):
        read_events(tmp_path / "short.fcs")


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_fcs32_per_channel_datatype(tmp_path, byteorder):
    """FCS 3.2 $PnDATATYPE: float and integer channels in one event."""
    rng = np.random.default_rng(RNG_SEED)
    n = 200
    rec = np.zeros(n, dtype=[("t", f"{byteorder}u4"), ("a", f"{byteorder}f4"),
                             ("b", f"{byteorder}u2"), ("c", f"{byteorder}f8")])  # fmt: skip
    rec["t"] = np.arange(n)
    rec["a"] = rng.standard_normal(n) * 100
    rec["b"] = rng.integers(0, 1024, n) | (1 << 12)  # a flag bit above $PnR
    rec["c"] = rng.standard_normal(n)
    kw = _base_kw(n, 4, "F", "1,2,3,4" if byteorder == "<" else "4,3,2,1")
    kw |= _channel_kw(["Time", "FSC-A", "FL1-H", "FL2-A"], [32, 32, 16, 64], [2**32, 2**18, 1024, 2**18])
    kw |= {"$P1DATATYPE": "I", "$P3DATATYPE": "I", "$P4DATATYPE": "D"}
    (tmp_path / "m.fcs").write_bytes(fcs_bytes(kw, rec.tobytes(), version="3.2"))
    ev, report = read_fcs(tmp_path / "m.fcs")
    assert report.reader == "hladr" and "pnr_bitmask_applied" in ev.quirks
    expected = np.stack([rec["t"], rec["a"], rec["b"] & 1023, rec["c"]], axis=1)
    np.testing.assert_array_equal(ev.data, expected.astype(np.float32))


def test_mixed_byteord(tmp_path):
    ref = np.arange(12, dtype=np.float32).reshape(4, 3) * 1.5
    le = ref.astype("<f4").view(np.uint8).reshape(-1, 4)
    body = le[:, [2, 3, 0, 1]].tobytes()  # $BYTEORD 3,4,1,2
    kw = _base_kw(4, 3, "F", "3,4,1,2") | _channel_kw(list("ABC"), [32] * 3, [1024] * 3)
    (tmp_path / "m.fcs").write_bytes(fcs_bytes(kw, body, version="3.0"))
    ev = read_events(tmp_path / "m.fcs")
    assert "byteord_mixed" in ev.quirks
    np.testing.assert_array_equal(ev.data, ref)


# --------------------------------------------------------------------------- offsets


def _float_file(tmp_path, name="o.fcs", n=100, **builder) -> tuple[object, np.ndarray]:
    ref = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    kw = _base_kw(n, 2, "F", "1,2,3,4") | _channel_kw(["A", "B"], [32, 32], [1024, 1024])
    path = tmp_path / name
    path.write_bytes(fcs_bytes(kw, ref.tobytes(), **builder))
    return path, ref


@pytest.mark.parametrize(
    "builder, quirk",
    [
        ({"end_adjust": 1}, "offset_off_by_one"),
        ({"header_data": "blank"}, "header_data_offsets_blank"),
        ({"text_begin_adjust": 8}, "header_text_offset_mismatch"),
        ({"version": "2.0", "text_data": False}, None),
        ({"header_data": "zero"}, None),
    ],
)
def test_offset_quirks(tmp_path, builder, quirk):
    path, ref = _float_file(tmp_path, **builder)
    ev = read_events(path)
    np.testing.assert_array_equal(ev.data, ref)
    if quirk:
        assert quirk in ev.quirks
    else:
        assert ev.quirks == ()


def test_off_by_one_at_end_of_file(tmp_path):
    """$ENDDATA equal to the file size (Partec PAS, Accuri C6)."""
    path, ref = _float_file(tmp_path, end_adjust=1)
    ev = read_events(path)  # the extra byte is not in the file
    np.testing.assert_array_equal(ev.data, ref)
    assert "offset_off_by_one" in ev.quirks


def test_truncated_file_is_rejected(tmp_path):
    path, _ = _float_file(tmp_path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ReadError, match=r"^o\.fcs: DATA segment ends at byte \d+ but the file"):
        read_events(path)
    ev, _ = read_fcs(path, allow_tot_mismatch=True)
    assert ev.n_events == 87 and "events_fewer_than_tot" in ev.quirks


def test_wrong_par_is_rejected_not_misread(tmp_path):
    """A segment with room for more events than $TOT says must not be read as $TOT events."""
    path, ref = _float_file(tmp_path)
    path.write_bytes(path.read_bytes().replace(b"/$TOT/100/", b"/$TOT/050/"))
    with pytest.raises(ReadError, match=r"room for 100 events, but \$TOT=50"):
        read_events(path)
    ev, _ = read_fcs(path, allow_tot_mismatch=True)
    np.testing.assert_array_equal(ev.data, ref[:50])
    assert "data_segment_longer_than_tot" in ev.quirks


def test_billions_of_events_rejected_before_allocating(tmp_path):
    path, _ = _float_file(tmp_path)
    raw = path.read_bytes().replace(b"/$TOT/100/", b"/$TOT/4000000000/")
    path.write_bytes(raw)
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(ReadError, match="4000000000"):
        read_events(path)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.0 and peak < 20 * len(raw) + 1_000_000
    path.write_bytes(raw.replace(b"/$TOT/4000000000/", b"/$TOT/9999999999999/"))
    with pytest.raises(ReadError, match="not plausible"):
        read_events(path)


def test_missing_datatype_assumed_integer(tmp_path):
    ref = np.arange(20, dtype=np.uint16).reshape(10, 2)
    kw = _base_kw(10, 2, "I", "1,2") | _channel_kw(["A", "B"], [16, 16], [1024, 1024])
    del kw["$DATATYPE"]
    (tmp_path / "n.fcs").write_bytes(fcs_bytes(kw, ref.astype("<u2").tobytes(), version="3.0"))
    ev = read_events(tmp_path / "n.fcs")
    assert "no_datatype_assumed_I" in ev.quirks
    np.testing.assert_array_equal(ev.data, ref)


# --------------------------------------------------------------------------- datasets


def _two_datasets(tmp_path) -> tuple[object, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(RNG_SEED)
    a = rng.integers(0, 1024, (60, 2)).astype(np.uint16)
    b = (a.astype(np.uint32) << 10) | rng.integers(0, 1024, (60, 2)).astype(np.uint32)
    kw1 = _base_kw(60, 2, "I", "1,2") | _channel_kw(["FL1 Lin", "FL2 Lin"], [16, 16], [1024] * 2)
    kw1 |= {"$CYT": "Cytomics FC 500", "$DATE": "01-Jan-24", "$NEXTDATA": "0" * 10,
            "$DFC1TO2": "12.5"}  # fmt: skip
    kw2 = _base_kw(60, 2, "I", "1,2,3,4") | _channel_kw(["FL1", "FL2"], [32, 32], [2**20] * 2)
    first = fcs_bytes(kw1, a.astype("<u2").tobytes(), version="2.0", text_data=False)
    kw1["$NEXTDATA"] = str(len(first)).zfill(10)
    first = fcs_bytes(kw1, a.astype("<u2").tobytes(), version="2.0", text_data=False)
    path = tmp_path / "pair.lmd"
    path.write_bytes(first + fcs_bytes(kw2, b.astype("<u4").tobytes(), version="3.0"))
    return path, a, b


def test_lmd_pair_reads_fcs3_dataset_by_default(tmp_path):
    path, a, b = _two_datasets(tmp_path)
    sets = list_datasets(path)
    assert [(d.index, d.fcs_version, d.events, d.channels) for d in sets] == [
        (1, "2.0", 60, 2),
        (2, "3.0", 60, 2),
    ]
    ev = read_events(path)
    assert (ev.dataset, ev.n_datasets) == (2, 2)
    np.testing.assert_array_equal(ev.data, b.astype(np.float32))
    assert {"lmd_fcs3_dataset_chosen", "lmd_dfc_from_fcs2_dataset"} <= set(ev.quirks)
    assert ev.keyword("$CYT") == "Cytomics FC 500"  # completed from the FCS 2.0 dataset
    names, matrix = parse_spillover(ev)  # $DFC1TO2 of the FCS 2.0 dataset, FLi = detector i
    assert names == ["FL1", "FL2"]
    np.testing.assert_array_equal(matrix, [[1, 0.125], [0, 1]])
    first = read_events(path, dataset=1)
    assert first.dataset == 1 and first.pnn == ("FL1 Lin", "FL2 Lin")
    np.testing.assert_array_equal(first.data, a.astype(np.float32))
    with pytest.raises(ReadError, match="holds 2 datasets; there is no dataset 3"):
        read_events(path, dataset=3)


def test_not_a_file_and_not_fcs(tmp_path):
    with pytest.raises(ReadError, match="no such file"):
        read_events(tmp_path / "missing.fcs")
    with pytest.raises(ReadError, match="is not a file"):
        read_events(tmp_path)
    (tmp_path / "x.fcs").write_bytes(b"PK\x03\x04 not an fcs file at all")
    with pytest.raises(ReadError, match=r"^x\.fcs: not an FCS file"):
        read_events(tmp_path / "x.fcs")


# --------------------------------------------------------------------------- spillover


def _events(keywords: dict[str, str], pnn, pns=None) -> Events:
    d = len(pnn)
    kw = {k.lower().lstrip("$"): v for k, v in keywords.items()}
    return Events(np.zeros((1, d), np.float32), tuple(pnn), tuple(pns or [""] * d),
                  (1.0,) * d, kw)  # fmt: skip


def test_spillover_forms():
    pnn = ["FSC-A", "FL1-A", "FL2-A", "FL3-A"]
    ev = _events({"$SPILLOVER": "2,FL1-A,FL2-A,1,0.2,0.05,1"}, pnn)
    names, m = parse_spillover(ev)
    assert names == ["FL1-A", "FL2-A"]
    np.testing.assert_array_equal(m, [[1, 0.2], [0.05, 1]])
    # Navios/Gallios/Accuri: channel numbers instead of names
    names, _ = parse_spillover(_events({"$SPILLOVER": "2,2,3,1,0,0,1"}, pnn))
    assert names == ["FL1-A", "FL2-A"]
    # names given as $PnS (marker) are mapped to $PnN
    names, _ = parse_spillover(
        _events({"SPILL": "2,CD14,HLA-DR,1,0,0,1"}, pnn, ["", "CD14", "HLA-DR", ""])
    )
    assert names == ["FL1-A", "FL2-A"]
    # $COMP with negative off-diagonal terms is a compensation matrix: inverted
    comp = np.linalg.inv(np.array([[1, 0.25], [0, 1]]))
    value = "2," + ",".join(str(v) for v in comp.ravel())
    names, m = parse_spillover(_events({"$COMP": value}, pnn[:2]))
    np.testing.assert_allclose(m, [[1, 0.25], [0, 1]])
    # Beckman $DFCiTOj: percent of FLi in FLj, two versions of each detector in blocks
    ev = _events({"$DFC1TO2": "13.4", "$DFC2TO1": "1.5"},
                 ["FS", "FL1 Log", "FL2 Log", "FL1 Lin", "FL2 Lin"])  # fmt: skip
    names, m = parse_spillover(ev)
    assert names == ["FL1 Log", "FL2 Log", "FL1 Lin", "FL2 Lin"]
    np.testing.assert_allclose(m[:2, :2], [[1, 0.134], [0.015, 1]])
    np.testing.assert_allclose(m[2:, 2:], m[:2, :2])
    assert not m[:2, 2:].any()
    # keyword mappings work as well as Events
    assert parse_spillover({"$PAR": "2", "$P1N": "A", "$P2N": "B"}) is None
    names, _ = parse_spillover({"SPILL": "2,A,B,1,0,0,1"}, ["A", "B"])
    assert names == ["A", "B"]
    with pytest.raises(ReadError, match=r"SPILL has 3 entries after n=2"):
        parse_spillover({"SPILL": "2,A,B,1"}, ["A", "B"])


# --------------------------------------------------------------------------- speed


def test_one_million_events_read_fast(tmp_path):
    rng = np.random.default_rng(RNG_SEED)
    data = rng.random((1_000_000, 7), dtype=np.float32)
    path = tmp_path / "big.fcs"
    write_fcs(path, data, [f"c{i}" for i in range(7)])
    best = {}
    for engine in ("auto", "hladr"):
        times = []
        for _ in range(4):
            t0 = time.perf_counter()
            ev = read_fcs(path, engine=engine)[0]
            times.append(time.perf_counter() - t0)
        best[engine] = min(times)
        assert ev.n_events == 1_000_000
    assert best["auto"] < 0.15 and best["hladr"] < 0.15, best


def test_large_mixed_width_integers_skip_flowios_python_loop(tmp_path):
    rng = np.random.default_rng(RNG_SEED)
    ref = rng.integers(0, 1024, (300_000, 8))
    path = tmp_path / "mixed.fcs"
    write_fcs(path, ref, [f"c{i}" for i in range(8)], datatype="I", bits=[16, 32] * 4,
              pnr=[1024] * 8)  # fmt: skip
    t0 = time.perf_counter()
    ev, report = read_fcs(path)
    assert time.perf_counter() - t0 < 1.0  # flowio: ~4 s
    assert report.reader == "hladr" and "Python loop" in report.reader_reason
    np.testing.assert_array_equal(ev.data, ref.astype(np.float32))


# --------------------------------------------------------------------------- float32 decoder vs float64 route


def _float64_route(path) -> tuple[np.ndarray, list[str], tuple]:
    """The former decoding path: (N, D) float64 raw values, scaled in place, cast to float32."""
    buf = path.read_bytes()
    ds = fp.scan_datasets(buf, path.name)[0]
    layout = fl.resolve_layout(len(buf), ds, ds.keywords, path.name)
    channels, _ = fp.channel_table(ds.keywords, layout.n_par, path.name)
    scaling = fd.channel_scaling(channels, ds.keywords)
    raw, quirks = fd.decode_data(buf, layout, channels, path.name)
    return fd.scale_events(raw, channels, scaling), quirks, (buf, layout, channels, scaling)


def _special_floats(rng, n: int, d: int, dtype) -> np.ndarray:
    data = (rng.standard_normal((n, d)) * 10.0 ** rng.integers(-3, 6, (n, d))).astype(dtype)
    data[:4, 0] = [np.nan, np.inf, -np.inf, -0.0]
    data[4, 1] = np.finfo(dtype).smallest_subnormal
    data[5, 1] = np.finfo(dtype).max
    return data


def _scaled_float_file(path, datatype: str, byteorder: str, n: int = 500) -> None:
    rng = np.random.default_rng(RNG_SEED)
    data = _special_floats(rng, n, 5, np.float32 if datatype == "F" else np.float64)
    data[4:, 0] = rng.random(n - 4) * 4  # a log-scaled float channel ($PnE on floats, like itn_02)
    write_fcs(path, data, ["FL1", "FSC-A", "Time", "FL2", "FL3"], datatype=datatype, byteorder=byteorder,
              keywords={"$P1E": "4,0.5", "$P1R": "4", "$P2G": "3.7", "$P3G": "0.01",
                        "$TIMESTEP": "0.0123", "$P5G": "1"})  # fmt: skip


def _int_file(path, bits, byteorder: str, n: int = 700) -> None:
    """Integers with flag bits above $PnR in channel 1 and a log channel 2."""
    rng = np.random.default_rng(RNG_SEED)
    d = len(bits)
    ranges = [2 ** min(b, 20) for b in bits]
    ranges[0] = 2 ** (bits[0] - 2)  # the top two bits are flags, masked
    data = np.stack([rng.integers(0, 2 ** min(b, 62), n) for b in bits], axis=1).astype(np.uint64)
    data[:3, -1] = [2**b - 1 for b in bits[-1:]] * 3  # full-range words (rounding of 64-bit ints)
    kw = _base_kw(n, d, "I", "1,2,3,4" if byteorder == "<" else "4,3,2,1")
    kw |= _channel_kw([f"c{j}" for j in range(d)], bits, ranges,
                      pne=["0,0", "3,1"] + ["0,0"] * (d - 2), png=[1.5] + [1] * (d - 1))  # fmt: skip
    fields = [(f"c{j}", f"{byteorder}u{b // 8}") for j, b in enumerate(bits)]
    rec = np.zeros(n, dtype=fields)
    for j in range(d):
        rec[f"c{j}"] = data[:, j]
    path.write_bytes(fcs_bytes(kw, rec.tobytes(), version="3.1"))


def _in_place_matches(ref: np.ndarray, quirks: list[str], args: tuple, name: str) -> bool:
    """Decode over an aligned writable copy of the file where possible; check it is bit-identical."""
    buf, layout, *rest = args
    raw = np.empty(len(buf) + 64, np.uint8)
    pad = -(raw.ctypes.data + layout.start) % 64
    copy = memoryview(raw[pad : pad + len(buf)])
    copy[:] = buf
    if not fd.decodes_in_place(copy, layout):
        with pytest.raises(ValueError, match="in place"):
            fd.decode_events(copy, layout, *rest, name, in_place=True)
        return False
    out, out_quirks = fd.decode_events(copy, layout, *rest, name, in_place=True)
    assert np.shares_memory(out, raw) and out.flags.c_contiguous and out.dtype == np.float32
    np.testing.assert_array_equal(out.view(np.uint32), ref.view(np.uint32))
    assert out_quirks == quirks
    return True


@pytest.mark.parametrize("byteorder", ["little", "big"])
@pytest.mark.parametrize("datatype", ["F", "D"])
def test_decode_events_is_bit_identical_to_float64_route_floats(tmp_path, datatype, byteorder):
    path = tmp_path / "f.fcs"
    _scaled_float_file(path, datatype, byteorder)
    ref, quirks, args = _float64_route(path)
    out, out_quirks = fd.decode_events(*args, path.name)
    assert out.dtype == np.float32 and out.flags.c_contiguous and out.flags.owndata
    np.testing.assert_array_equal(out.view(np.uint32), ref.view(np.uint32))
    assert out_quirks == quirks
    assert _in_place_matches(ref, quirks, args, path.name) == (datatype == "F")


@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize("bits", [[8] * 3, [16] * 4, [32] * 4, [64] * 3, [16, 32, 8, 64]], ids=str)
def test_decode_events_is_bit_identical_to_float64_route_integers(tmp_path, bits, byteorder):
    path = tmp_path / "i.fcs"
    _int_file(path, bits, byteorder)
    ref, quirks, args = _float64_route(path)
    out, out_quirks = fd.decode_events(*args, path.name)
    np.testing.assert_array_equal(out.view(np.uint32), ref.view(np.uint32))
    assert out_quirks == quirks == ["pnr_bitmask_applied"]
    assert _in_place_matches(ref, quirks, args, path.name) == (bits == [32] * 4)


def test_decode_events_matches_float64_route_on_other_layouts(tmp_path):
    """24-bit, bit-packed, 10-in-16-bit, FCS 3.2 mixed types, mixed $BYTEORD, ASCII (files of the tests above)."""

    def folder(name: str):
        (tmp_path / name).mkdir()
        return tmp_path / name

    for order in ("1,2,3", "3,2,1"):
        test_24_bit_integers(folder(order), order)
    for order, label in (("<", "le"), (">", "be")):
        test_bit_packed_12_bit(folder(f"packed_{label}"), order)
        test_fcs32_per_channel_datatype(folder(f"fcs32_{label}"), order)
    for case in (test_10_bit_in_16_bit_words_with_off_by_one, test_mixed_byteord, test_ascii_fixed_and_delimited):
        case(folder(case.__name__))
    files = [f for f in tmp_path.rglob("*.*") if f.suffix in (".fcs", ".lmd") and f.name != "short.fcs"]
    assert len(files) == 10
    for path in files:
        ref, quirks, args = _float64_route(path)
        out, out_quirks = fd.decode_events(*args, path.name)
        np.testing.assert_array_equal(out.view(np.uint32), ref.view(np.uint32), err_msg=str(path))
        assert out_quirks == quirks


# --------------------------------------------------------------------------- large files: hladr decoder


def _flowio_values(path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flow = flowio.FlowData(io.BytesIO(path.read_bytes()))
        return flow.as_array(preprocess=True).astype(np.float32)


@pytest.mark.parametrize("kind", ["F", "D", "I16", "I32"])
def test_large_standard_files_use_hladr_decoder_with_flowios_values(tmp_path, kind):
    """DATA of 4 MiB or more: our decoder (flowio's copies cost 4x the matrix), same values as flowio."""
    rng = np.random.default_rng(RNG_SEED)
    n = 300_000 if kind != "I16" else 600_000
    names = ["FSC-A", "FL1-A", "Time", "FL2-A"]
    kw = {"$P1G": "2.5", "$P3G": "0.01", "$TIMESTEP": "0.01"}
    if kind in ("F", "D"):
        data = rng.standard_normal((n, 4)) * 1000
        data[:, 1] = rng.random(n) * 4
        kw |= {"$P2E": "4,0.5", "$P2R": "4"}
        data[:, 2] = np.sort(np.abs(data[:, 2]))  # a time channel runs forward (the reader checks it)
        write_fcs(tmp_path / "big.fcs", data, names, datatype=kind, byteorder="big", keywords=kw)
    else:
        data = rng.integers(0, 1024, (n, 4))
        data[:, 2] = np.sort(data[:, 2])  # a time channel runs forward (the reader checks it)
        kw |= {"$P2E": "4,1"}
        bits = int(kind[1:])  # 16 bits: $PnR 65536, or flowio masks in a Python loop and is not used
        write_fcs(tmp_path / "big.fcs", data, names, datatype="I", bits=bits, byteorder="big",
                  pnr=[1024 if bits == 32 else 65536] * 4, keywords=kw)  # fmt: skip
    ev, report = read_fcs(tmp_path / "big.fcs")
    assert report.reader == "hladr" and report.reader_reason.startswith("large DATA"), report
    assert report.data_bytes >= 4 << 20 and report.flowio_error is None
    np.testing.assert_array_equal(ev.data, _flowio_values(tmp_path / "big.fcs"))
    assert ev.data.flags.c_contiguous and ev.data.dtype == np.float32


def test_one_million_float32_big_endian_reads_with_one_matrix_of_extra_memory(tmp_path):
    """The file is read once into one buffer and cast once: ~1x the float32 matrix besides the result.

    Speed is measured in benchmarks/bench_template.py, not asserted here.
    """
    rng = np.random.default_rng(RNG_SEED)
    data = rng.random((1_000_000, 8), dtype=np.float32) * 1000
    path = tmp_path / "big.fcs"
    write_fcs(path, data, [f"c{i}" for i in range(8)], byteorder="big")
    del data
    read_events(path)  # first call: imports, caches
    tracemalloc.start()
    try:
        ev = read_events(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    matrix = ev.data.nbytes
    assert ev.data.shape == (1_000_000, 8) and ev.data.dtype == np.float32
    assert peak - matrix <= 1.3 * matrix, f"{(peak - matrix) / matrix:.2f}x the matrix besides the result"


def test_header_data_end_zero_past_99999999_is_not_a_mismatch():
    """Files over 100 MB: HEADER cannot hold the DATA end (fcswrite writes the begin, end 0)."""
    n, d = 5_000_000, 8
    kw = _base_kw(n, d, "F", "4,3,2,1") | _channel_kw([f"c{j}" for j in range(d)], [32] * d, [1024] * d)
    kw |= {"$BEGINDATA": "0" * 12, "$ENDDATA": "0" * 12}
    d0 = 58 + len(_text(kw))
    kw |= {"$BEGINDATA": str(d0).zfill(12), "$ENDDATA": str(d0 + 4 * n * d - 1).zfill(12)}
    text = _text(kw)
    header = f"FCS3.1    {58:>8d}{57 + len(text):>8d}{d0:>8d}{0:>8d}{0:>8d}{0:>8d}".encode()
    ds = fp.scan_datasets(header + text, "big.fcs")[0]  # HEADER and TEXT are all the layout needs
    layout = fl.resolve_layout(d0 + 4 * n * d, ds, ds.keywords, "big.fcs")
    assert (layout.start, layout.n_events, layout.quirks) == (d0, n, ())
    other = fp.scan_datasets(header.replace(f"{d0:>8d}".encode(), f"{d0 + 8:>8d}".encode()) + text, "x")[0]
    assert "header_text_offset_mismatch" in fl.resolve_layout(d0 + 4 * n * d, other, other.keywords, "x").quirks
