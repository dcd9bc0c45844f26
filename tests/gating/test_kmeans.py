"""Our k-means (hladr.gating._kmeans): the Lloyd kernel against its NumPy twin and scikit-learn's KMeans, and
the gate computed with its second estimate in a second thread against the gate computed in one."""

from __future__ import annotations

import numpy as np
import pytest

from hladr.gating import _kmeans


def _blobs(seed: int) -> np.ndarray:
    """Eight Gaussian clouds of unequal size and spread in 4 dimensions (the gate's features)."""
    r = np.random.default_rng(seed)
    return np.vstack([r.normal(r.normal(0, 3, 4), r.uniform(0.2, 1.5), size=(int(r.integers(50, 3000)), 4))
                      for _ in range(8)])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [6, 12])
def test_kmeans_is_scikit_learns_and_its_twins(seed, k):
    from sklearn.cluster import KMeans

    X = _blobs(seed)
    labels, centres = _kmeans.kmeans(X, k, seed)
    labels_ref, centres_ref = _kmeans.kmeans(X, k, seed, reference=True)
    np.testing.assert_array_equal(labels, labels_ref)
    np.testing.assert_allclose(centres, centres_ref, rtol=0, atol=1e-12)
    km = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(X)
    assert np.mean(labels == km.labels_) >= 0.999
    np.testing.assert_allclose(centres, km.cluster_centers_, atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_kmeans_plusplus_is_scikit_learns_to_the_last_bit(seed):
    """Ours because importing scikit-learn for it cost a second of every automated run; theirs bit for bit."""
    from sklearn.cluster import kmeans_plusplus

    rng = np.random.default_rng(100 + seed)
    for _ in range(40):
        n = int(rng.integers(12, 20_000))
        d = int(rng.integers(1, 6))
        k = int(rng.integers(1, min(13, n)))
        X = np.ascontiguousarray(rng.normal(size=(n, d)) * rng.uniform(0.1, 5, d) + rng.uniform(-3, 3, d))
        if rng.uniform() < 0.3:
            X = np.round(X, 1)  # ties
        s = int(rng.integers(0, 1000))
        want_c, want_i = kmeans_plusplus(X, k, random_state=s)
        got_c, got_i = _kmeans.kmeans_plusplus(X, k, s)
        np.testing.assert_array_equal(got_i, want_i)
        np.testing.assert_array_equal(got_c, want_c)


def test_an_empty_cluster_takes_the_farthest_row():
    """Two centres start on the same spot: one cluster is empty after the first assignment and takes
    the row farthest from its centre, as scikit-learn does; kernel and twin agree."""
    X = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [5.0, 5.0], [5.1, 5.0], [9.0, 9.0]])
    X = X - X.mean(axis=0)
    start = np.array([X[0], X[0], X[3]])
    for fn in (_kmeans.lloyd, _kmeans.lloyd_ref):
        labels, centres = fn(np.ascontiguousarray(X), start.copy(), 1e-12, 300)
        assert sorted(np.bincount(labels, minlength=3).tolist()) == [1, 2, 3]
        assert labels[5] != labels[3] and labels[0] == labels[1] == labels[2]


def test_gate_with_the_second_estimate_in_a_thread_is_the_same(tmp_path):
    """threads=2 computes the k-means estimate beside the mixture fit: every figure is the same."""
    from hladr.channels import find_panel
    from hladr.compensate import compensate
    from hladr.fcs.read import read_events, spillover_of
    from hladr.gating.automated import fit_monocyte_gate
    from hladr.simulate.tube_events import simulate_sample_events
    from hladr.simulate.tube_files import write_tube

    for seed, profile in ((3, "severe-sepsis"), (4, "healthy")):
        sim = simulate_sample_events(rng=np.random.default_rng(seed), instrument="cytoflex", hladr_abc=3000,
                                     n_events=200_000, profile=profile)
        path = tmp_path / f"t{seed}.fcs"
        write_tube(path, sim, sample_id="t")
        ev = read_events(path)
        panel = find_panel(ev)
        ev = compensate(ev, spillover_of(ev))
        one, two = (fit_monocyte_gate(ev, panel, threads=t) for t in (1, 2))
        assert bool(one) == bool(two)
        assert one.to_dict() == two.to_dict()
        if one:
            np.testing.assert_array_equal(one.apply(ev).mask, two.apply(ev).mask)
