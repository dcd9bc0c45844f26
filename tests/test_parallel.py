"""One tube on several threads: slices cover every row once, and no result depends on the thread count."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from hladr import _parallel as P
from hladr.compensate import compensated_channel
from hladr.fcs import _load as L
from hladr.fcs.read import read_fcs, spillover_of
from hladr.fcs.write import write_fcs
from hladr.gating.gatingml.engine import apply_monocyte_template, load_template
from hladr.simulate.simulator import simulate_sample_tube

TEMPLATE = Path(__file__).parent / "data" / "monocytes_template.xml"


@pytest.mark.parametrize("n", [0, 1, 4095, 4096, 4097, 50_000, 1_000_003])
@pytest.mark.parametrize("parts", [1, 2, 3, 8])
def test_row_slices_cover_every_row_once_on_block_bounds(n, parts):
    slices = P.row_slices(n, parts)
    assert 1 <= len(slices) <= parts
    assert slices[0][0] == 0 and slices[-1][1] == n
    for (_, hi), (lo, _) in zip(slices, slices[1:], strict=False):
        assert hi == lo and lo % P.ALIGN_ROWS == 0  # contiguous, on whole engine blocks
    assert all(lo < hi for lo, hi in slices) or n == 0


def test_thread_count_explicit_auto_and_invalid(monkeypatch):
    monkeypatch.setattr(P, "usable_cores", lambda: 4)
    assert P.thread_count(10, 3) == 3  # explicit: taken as given
    assert P.thread_count(P.MIN_ROWS_PER_THREAD - 1) == 1  # too few rows for a second thread
    assert P.thread_count(2 * P.MIN_ROWS_PER_THREAD) == 2
    assert P.thread_count(100 * P.MIN_ROWS_PER_THREAD) == 4  # never more than the cores
    assert P.thread_count(1000, None, min_rows=100) == 4
    with pytest.raises(ValueError, match="at least 1"):
        P.thread_count(10, 0)


def test_map_slices_returns_row_order_and_uses_threads():
    names: set[str] = set()
    lock = threading.Lock()
    barrier = threading.Barrier(3, timeout=10)  # passes only if three slices really run at the same time

    def fn(lo, hi):
        with lock:
            names.add(threading.current_thread().name)
        if lo < 3 * P.ALIGN_ROWS:
            barrier.wait()
        return np.arange(lo, hi)

    out = P.map_slices(fn, 12 * P.ALIGN_ROWS, 3)
    assert [(lo, hi) for lo, hi, _ in out] == P.row_slices(12 * P.ALIGN_ROWS, 3 * P.SLICES_PER_THREAD)
    assert np.array_equal(np.concatenate([r for _, _, r in out]), np.arange(12 * P.ALIGN_ROWS))
    assert len(names) == 3


def test_map_slices_raises_after_every_slice_ended():
    done = []

    def fn(lo, hi):
        if lo == 0:
            raise RuntimeError("slice 0 failed")
        done.append(lo)
        return lo

    with pytest.raises(RuntimeError, match="slice 0 failed"):
        P.map_slices(fn, 8 * P.ALIGN_ROWS, 2)
    assert sorted(done) == [k * P.ALIGN_ROWS for k in range(1, 8)]  # the other thread finished its slices


def test_parallel_body_read_stops_at_the_first_gap(tmp_path):
    path = tmp_path / "f.bin"
    payload = np.random.default_rng(1).integers(0, 256, 3 << 20, dtype=np.uint8)
    path.write_bytes(payload.tobytes())
    buf = np.zeros(4 << 20, np.uint8)  # larger than the file: as if it shrank since fstat
    with open(path, "rb", buffering=0) as fh:
        got = L._read_body(fh, memoryview(buf)[100:], 100, threads=3)
    assert got == len(payload) - 100
    assert np.array_equal(buf[100 : len(payload)], payload[100:])


@pytest.fixture(scope="module")
def tube(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("par") / "P001.fcs"
    simulate_sample_tube(path, rng=np.random.default_rng(11), hladr_abc=12_000, n_events=60_000)
    return path


def test_tube_results_do_not_depend_on_threads(tube):
    ev1, _ = read_fcs(tube, threads=1)
    ev3, _ = read_fcs(tube, threads=3)  # the file read in 12 slices of bytes by 3 threads
    assert np.array_equal(ev1.data, ev3.data) and ev1.sha256 == ev3.sha256
    tpl = load_template(TEMPLATE)
    r1 = apply_monocyte_template(tpl, ev1, threads=1)
    r3 = apply_monocyte_template(tpl, ev1, threads=3)
    assert r1.counts == r3.counts and r1.n_monocytes > 1000
    assert np.array_equal(r1.mask, r3.mask) and np.array_equal(r1.indices, r3.indices)
    spill = spillover_of(ev1)
    pe1 = compensated_channel(ev1, spill, "PE-A", r1.indices, threads=1)
    pe3 = compensated_channel(ev1, spill, "PE-A", r1.indices, threads=3)
    assert np.array_equal(pe1, pe3)


@pytest.mark.parametrize("byteorder", ["big", "little"])
@pytest.mark.parametrize("datatype", ["F", "I", "D"])
def test_decoder_threads_give_identical_events(tmp_path, byteorder, datatype):
    """Our decoder, in place (F/I 32-bit) and not (D), with a scaled time channel, on 1 and 3 threads."""
    rng = np.random.default_rng(3)
    n = 40_000
    data = np.column_stack([np.arange(n), rng.integers(0, 260_000, (n, 3))]).astype(np.float64)
    path = tmp_path / "t.fcs"
    write_fcs(path, data, ["Time", "FSC-A", "SSC-A", "PE-A"], datatype=datatype, bits=64 if datatype == "D" else 32,
              byteorder=byteorder, keywords={"$TIMESTEP": "0.01"})
    one, rep = read_fcs(path, engine="hladr", threads=1)
    three, _ = read_fcs(path, engine="hladr", threads=3)
    assert rep.reader == "hladr"
    assert np.array_equal(one.data, three.data)
    assert np.allclose(one.data[:, 0], data[:, 0] * 0.01)  # $TIMESTEP applied in every slice
    assert np.array_equal(one.data[:, 1:], data[:, 1:].astype(np.float32))


def test_skipping_the_digest_changes_nothing_else(tube):
    with_digest, _ = read_fcs(tube)
    without, _ = read_fcs(tube, sha256=False)
    assert without.sha256 == "" and len(with_digest.sha256) == 64
    assert np.array_equal(with_digest.data, without.data)
