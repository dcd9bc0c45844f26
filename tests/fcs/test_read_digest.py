"""The SHA-256 of a large file is computed in a background thread: same digest, and never of other bytes."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from hladr.compensate import compensate, compensated_channel
from hladr.errors import ReadError
from hladr.events import Spillover
from hladr.fcs import _load as L
from hladr.fcs.read import read_events, sha256_file
from hladr.fcs.write import write_fcs
from hladr.pipeline import analyze_sample
from hladr.results import RunConfig, SampleInput


def _tube(path: Path, n: int = 2000, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = (rng.lognormal(8, 1, size=(n, 4))).astype(np.float32)
    write_fcs(path, data, ["FSC-A", "SSC-A", "PE-A", "FITC-A"], byteorder="big")
    return data


@pytest.fixture
def background_always(monkeypatch):
    """Every file, however small, takes the background-digest path."""
    monkeypatch.setattr(L, "_BACKGROUND_HASH_BYTES", 0)


def test_background_digest_equals_the_files_sha256(tmp_path, background_always):
    path = tmp_path / "t.fcs"
    data = _tube(path)
    ev = read_events(path)
    assert isinstance(ev.__dict__["_sha256"], L.BackgroundDigest)
    comp = ev.with_data(ev.data * 2)  # a derived Events keeps the digest pending, it does not wait
    assert isinstance(comp.__dict__["_sha256"], L.BackgroundDigest)
    assert ev.sha256 == comp.sha256 == sha256_file(path)
    assert isinstance(ev.__dict__["_sha256"], str)  # resolved once, then cached
    np.testing.assert_array_equal(ev.data, data)


def test_small_files_are_hashed_inline(tmp_path):
    path = tmp_path / "t.fcs"
    _tube(path)
    ev = read_events(path)
    assert isinstance(ev.__dict__["_sha256"], str) and ev.sha256 == sha256_file(path)


def test_pickled_events_carry_the_resolved_digest(tmp_path, background_always):
    path = tmp_path / "t.fcs"
    _tube(path)
    ev = read_events(path)
    back = pickle.loads(pickle.dumps(ev))
    assert back.sha256 == sha256_file(path)
    np.testing.assert_array_equal(back.data, ev.data)


def test_a_file_changed_between_the_reads_has_no_digest(tmp_path):
    path = tmp_path / "t.fcs"
    _tube(path, seed=1)
    before = os.stat(path)
    _tube(path, n=2500, seed=2)  # rewritten: another size and mtime
    digest = L.BackgroundDigest(path, before)
    digest.main_read_done(os.stat(path))
    with pytest.raises(ReadError, match="changed while it was being read"):
        digest.result()


def test_a_file_changed_after_the_main_read_has_no_digest(tmp_path):
    path = tmp_path / "t.fcs"
    _tube(path, seed=1)
    st = os.stat(path)
    digest = L.BackgroundDigest(path, st)
    digest.main_read_done(st)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched while being hashed
    digest._future.result()
    with pytest.raises(ReadError, match="changed"):
        L.BackgroundDigest(path, st).result()  # (its main read never finished: no digest either)
    good = L.BackgroundDigest(path, os.stat(path))
    good.main_read_done(os.stat(path))
    assert good.result() == sha256_file(path)


def test_analysis_fails_the_sample_when_the_digest_fails(tmp_path, background_always, monkeypatch):
    path = tmp_path / "t.fcs"
    _tube(path)

    def changed(self):
        raise ReadError("t.fcs: the file changed while it was being read; read it again")

    monkeypatch.setattr(L.BackgroundDigest, "result", changed)
    res = analyze_sample(SampleInput(path=str(path)), None, RunConfig())
    assert res.qc == "fail" and res.sha256 is None
    assert any(f.code == "unreadable" and "changed" in f.message for f in res.flags)


@pytest.mark.parametrize("identity", [False, True])
def test_compensated_channel_of_selected_rows(identity):
    from hladr.events import Events

    rng = np.random.default_rng(3)
    data = rng.lognormal(7, 1.5, size=(5000, 4)).astype(np.float32)
    ev = Events(data, ("FSC-A", "PE-A", "FITC-A", "APC-A"), ("",) * 4, (262144.0,) * 4, {})
    m = np.eye(3) if identity else np.array([[1.0, 0.21, 0.02], [0.08, 1.0, 0.3], [0.0, 0.05, 1.0]])
    spill = Spillover(("PE-A", "FITC-A", "APC-A"), m)
    rows = np.sort(rng.choice(5000, size=700, replace=False))
    got = compensated_channel(ev, spill, "PE-A", rows)
    exact = (data[:, 1:].astype(np.float64) @ np.linalg.inv(m))[rows, 0]
    np.testing.assert_allclose(got, exact, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(got, compensate(ev, spill).column("PE-A")[rows], rtol=1e-6, atol=1e-3)
    assert compensated_channel(ev, spill, "FSC-A", rows).tolist() == data[rows, 0].astype(np.float64).tolist()
    assert compensated_channel(ev, None, "PE-A", rows[:0]).shape == (0,)
