"""In-place compensation and the all-rows compensated channel give exactly the copying path's numbers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from hladr.compensate import can_compensate_in_place, compensate, compensated_channel
from hladr.errors import CompensationError
from hladr.events import Events, Spillover
from hladr.gating import _kernels as GK

_M = np.array([[1.0, 0.21, 0.02], [0.08, 1.0, 0.3], [0.0, 0.05, 1.0]])


def _events(seed: int = 3, n: int = 5000) -> Events:
    rng = np.random.default_rng(seed)
    data = rng.lognormal(7, 1.5, size=(n, 4)).astype(np.float32)
    data[rng.random(n) < 0.01, 2] = np.nan
    data[rng.random(n) < 0.01, 1] = -50.0
    return Events(data, ("FSC-A", "PE-A", "FITC-A", "APC-A"), ("",) * 4, (262144.0,) * 4, {})


def test_in_place_compensation_equals_the_copy():
    ev = _events()
    spill = Spillover(("PE-A", "FITC-A", "APC-A"), _M)
    copied = compensate(ev, spill)
    assert copied.data is not ev.data
    matrix = ev.data
    raw = matrix.copy()
    done = compensate(ev, spill, in_place=True)
    assert done.data is matrix  # overwritten, not copied
    np.testing.assert_array_equal(done.data, copied.data)  # bit for bit
    assert done.compensated == copied.compensated == spill.channels
    np.testing.assert_array_equal(done.data[:, 0], raw[:, 0])
    # the input is spent: its values are no longer the file's, so reading them raises
    with pytest.raises(RuntimeError, match="handed over"):
        ev.data  # noqa: B018
    for use in (lambda: ev.n_events, lambda: ev.column("PE-A"), lambda: compensate(ev, spill),
                lambda: compensate(ev, spill, in_place=True)):
        with pytest.raises(RuntimeError, match="handed over"):
            use()
    assert ev.pnn == done.pnn and ev.keywords == done.keywords  # what it says about the file stays true


def test_in_place_compensation_needs_a_writeable_float32_matrix():
    ev = _events()
    spill = Spillover(("PE-A", "FITC-A", "APC-A"), _M)
    ro = ev.data.copy()
    ro.flags.writeable = False
    for data in (ro, np.asfortranarray(ev.data), ev.data.astype(np.float64)):
        other = dataclasses.replace(ev, data=data)
        assert not can_compensate_in_place(other)
        with pytest.raises(ValueError):
            compensate(other, spill, in_place=True)
        assert other.data is data  # refused before the matrix was handed over: the input is intact
    assert can_compensate_in_place(ev)
    with pytest.raises(CompensationError):  # a matrix that cannot be used leaves the input intact too
        compensate(ev, Spillover(("PE-A", "PerCP-A"), np.array([[1.0, 0.1], [0.0, 1.0]])), in_place=True)
    assert can_compensate_in_place(ev)
    # nothing to compensate: the input comes back untouched, in place or not
    ident = Spillover(spill.channels, np.eye(3))
    before = ev.data.copy()
    assert compensate(ev, ident, in_place=True) is ev and compensate(ev, None, in_place=True) is ev
    np.testing.assert_array_equal(ev.data, before)


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("identity", [False, True])
def test_compensated_channel_of_all_rows_equals_selected_rows(threads, identity):
    ev = _events(n=300_000)
    spill = Spillover(("PE-A", "FITC-A", "APC-A"), np.eye(3) if identity else _M)
    rows = np.sort(np.random.default_rng(0).choice(ev.n_events, size=20_000, replace=False))
    for ch in ("PE-A", "FSC-A", "APC-A"):
        full = compensated_channel(ev, spill, ch, None, threads=threads)
        assert full.dtype == np.float64 and full.shape == (ev.n_events,)
        np.testing.assert_array_equal(full[rows], compensated_channel(ev, spill, ch, rows, threads=1))
    assert compensated_channel(dataclasses.replace(ev, data=ev.data[:0]), spill, "PE-A", None).shape == (0,)


def test_gate_helpers_equal_their_plain_numpy_definitions():
    def pileup_max(x):  # the definition on a float64 copy of the column
        finite = x[np.isfinite(x)].astype(np.float64)
        if finite.size == 0:
            return np.inf
        top = finite.max()
        return float(top) if np.count_nonzero(finite >= top) >= max(2, 5e-4 * finite.size) else np.inf

    rng = np.random.default_rng(7)
    for trial in range(60):
        n = int(rng.integers(0, 5000))
        x = rng.normal(1000, 300, size=n).astype(np.float32)
        if n:
            x[rng.random(n) < 0.01 * (trial % 4)] = x.max()  # a pile-up, or none
            x[rng.random(n) < 0.01] = np.nan
            x[rng.random(n) < 0.005] = np.inf
            x[rng.random(n) < 0.005] = -np.inf
        if trial % 10 == 9:
            x[:] = np.nan
        m = np.column_stack([x[::-1], x])  # a column of a matrix, as the gate reads it
        assert GK.on_scale(m, 1, 0, 2, 5e-4)[2:] == (pileup_max(x), pileup_max(x))
        mask = rng.random(n) < rng.random()
        idx = np.flatnonzero(mask)
        k = int(rng.integers(0, idx.size + 1))
        a, b = np.random.default_rng(trial), np.random.default_rng(trial)
        want = np.sort(a.choice(idx, k, replace=False))  # the draw the gate made before
        got = GK.gather_ranked(m, mask, np.sort(b.choice(idx.size, k, replace=False)))
        np.testing.assert_array_equal(got, m[want])
        assert a.random() == b.random()  # the same random numbers consumed


def test_analyze_sample_in_place_path_gives_the_copying_path_result(tmp_path, monkeypatch):
    """The automated path compensates in place; forced back to the copy, every result field is the same."""
    from hladr import pipeline as R
    from hladr.beads.lots import find_lot
    from hladr.beads.record import calibrate_beads
    from hladr.results import SampleInput
    from hladr.simulate.simulator import simulate_run

    simulate_run(tmp_path, seed=11, instrument="canto", n_samples=2, events_per_tube=40_000)
    cal = calibrate_beads(str(tmp_path / "beads.fcs"), find_lot("96597"))
    assert cal.accepted
    calls = []
    real = R.compensate

    def spy(events, spill, **kw):
        calls.append(kw.get("in_place", False))
        return real(events, spill, **kw)

    monkeypatch.setattr(R, "compensate", spy)

    def result(path, calibration):
        d = R.analyze_sample(SampleInput(path=str(path)), calibration).to_dict()
        d.pop("timings_ms")
        return d

    for tube in ("P001_HLADR.fcs", "P002_HLADR.fcs"):
        for calibration in (cal, None):
            calls.clear()
            fast = result(tmp_path / tube, calibration)
            assert calls == [True]
            with monkeypatch.context() as m:
                m.setattr(R, "can_compensate_in_place", lambda events: False)
                calls.clear()
                slow = result(tmp_path / tube, calibration)
                assert calls == [False]
            assert fast == slow
            assert (fast["hladr_abc"] is not None) == (calibration is not None)
    # a Gating-ML template gates the raw values: that path keeps the copying compensation
    template = Path(__file__).parent / "data" / "monocytes_template.xml"
    calls.clear()
    res = R.analyze_sample(SampleInput(path=str(tmp_path / "P001_HLADR.fcs"), gates_file=str(template)), cal)
    assert calls == [False] and res.gate["template"] == template.name and res.hladr_abc is not None
