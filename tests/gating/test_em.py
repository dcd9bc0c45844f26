"""Our Gaussian-mixture EM (hladr.gating._em) and the scores of a fitted mixture (_mixture_scores, the k-means
assignment): kernels against their NumPy twins, fits against scikit-learn's
GaussianMixture on the rows the gate fits, and the gate it gives against the gate scikit-learn gives."""

from __future__ import annotations

import numpy as np
import pytest

from hladr.channels import find_panel
from hladr.compensate import compensate
from hladr.fcs.read import read_events, spillover_of
from hladr.gating import _em, _kmeans
from hladr.gating import _mixture_scores as S
from hladr.gating import mixture as gm
from hladr.gating.automated import fit_monocyte_gate
from hladr.rules import load_rules

RULES = load_rules()


def _spd(rng: np.random.Generator, k: int, d: int) -> np.ndarray:
    A = rng.normal(size=(k, d, d))
    return A @ A.transpose(0, 2, 1) + 0.05 * np.eye(d)


def _blobs(rng: np.random.Generator, n: int, d: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    centres = rng.normal(scale=4.0, size=(k, d))
    X = centres[rng.integers(0, k, n)] + rng.normal(scale=0.7, size=(n, d))
    return X, centres


# --------------------------------------------------------------------------- kernels and twins
@pytest.mark.parametrize("d", [1, 3, 4])
def test_precision_cholesky_agrees_with_reference(d):
    covs = _spd(np.random.default_rng(d), 6, d)
    p, ld, ok = _em.precision_cholesky(covs)
    pr, ldr, okr = _em.precision_cholesky_ref(covs)
    assert ok and okr
    np.testing.assert_allclose(p, pr, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ld, ldr, rtol=1e-10)
    # prec @ prec.T is the inverse covariance
    np.testing.assert_allclose(p @ p.transpose(0, 2, 1), np.linalg.inv(covs), rtol=1e-8, atol=1e-10)


def test_precision_cholesky_reports_a_covariance_that_is_not_positive_definite():
    covs = _spd(np.random.default_rng(0), 3, 4)
    covs[1] = np.diag([1.0, -1.0, 1.0, 1.0])
    assert not _em.precision_cholesky(covs)[2]
    assert not _em.precision_cholesky_ref(covs)[2]
    covs[1] = np.nan
    assert not _em.precision_cholesky(covs)[2]


@pytest.mark.parametrize("d", [4, 3, 2])  # four features take their own written-out kernels
@pytest.mark.parametrize("n", [0, 1, 7, 3001])
def test_log_scores_and_m_step_agree_with_reference(n, d):
    rng = np.random.default_rng(n)
    k = 5
    X = rng.normal(scale=3.0, size=(n, d)) + 5.0
    X[: n // 10] = -300.0  # far from every component: exponents that underflow
    Xt = np.ascontiguousarray(X.T)
    w = rng.dirichlet(np.ones(k))
    means = rng.normal(scale=3.0, size=(k, d))
    prec, ld, _ = _em.precision_cholesky(_spd(rng, k, d))
    out, ref = np.empty((k, n)), np.empty((k, n))
    _em.log_scores(Xt, w, means, prec, ld, out)
    _em.log_scores_ref(Xt, w, means, prec, ld, ref)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)
    lb, lbr = (_em.e_step(Xt, w, means, prec, ld, o, reference=r) for o, r in ((out, False), (ref, True)))
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-12)
    if n:
        np.testing.assert_allclose(out.sum(axis=0), 1.0, rtol=1e-12)
        assert lb == pytest.approx(lbr, rel=1e-12)
    resp = np.ascontiguousarray(rng.dirichlet(np.ones(k), size=n).T)
    resp[2] = 0.0  # an empty component: scikit-learn's 10 eps keeps nk > 0
    got, want = _em.m_step(Xt, resp, 1e-3), _em.m_step_ref(Xt, resp, 1e-3)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_em_fit_kernel_and_reference_agree():
    rng = np.random.default_rng(3)
    X, centres = _blobs(rng, 2000, 4, 5)
    resp = np.zeros((X.shape[0], 5))
    resp[rng.choice(X.shape[0], 5, replace=False), np.arange(5)] = 1.0
    fast = _em.em_fit(X, resp, reg_covar=1e-3, tol=1e-6, max_iter=300)
    ref = _em.em_fit(X, resp, reg_covar=1e-3, tol=1e-6, max_iter=300, reference=True)
    assert fast[4] == ref[4] and fast[5] and ref[5]  # same iterations, converged
    for a, b in zip(fast[:4], ref[:4], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(_em.predict(X, *fast[:3]), np.argmax(fast[3], axis=1))


def test_em_fit_stops_at_max_iter():
    rng = np.random.default_rng(4)
    X, _ = _blobs(rng, 500, 3, 4)
    resp = np.zeros((500, 4))
    resp[:4, np.arange(4)] = 1.0
    *_, n_iter, converged = _em.em_fit(X, resp, reg_covar=1e-3, tol=0.0, max_iter=3)
    assert n_iter == 3 and not converged


# --------------------------------------------------------------------------- against scikit-learn
def _sklearn_gmm(X, k, seed, tol):
    """The gate's mixtures as scikit-learn fits them (what ``gm.gaussian_mixture`` replaced)."""
    from sklearn.mixture import GaussianMixture

    g = GaussianMixture(n_components=k, covariance_type="full", random_state=seed, max_iter=300,
                        reg_covar=1e-3, init_params="k-means++", tol=tol).fit(X)
    return gm.Gmm(g.weights_, g.means_, g.covariances_, g.predict_proba(X), g.n_iter_)


_TUBES = [(5, "healthy", "canto"), (33, "sepsis", "navios"), (35, "severe-sepsis", "cytoflex"),
          (41, "sepsis", "canto")]


@pytest.fixture(scope="module")
def tubes(tmp_path_factory):
    from hladr.simulate.tube_events import simulate_sample_events
    from hladr.simulate.tube_files import write_tube

    out = []
    for seed, profile, inst in _TUBES:
        ev = simulate_sample_events(rng=np.random.default_rng(seed), instrument=inst, hladr_abc=1500,
                                    n_events=40_000, profile=profile)
        path = tmp_path_factory.mktemp("em") / f"{seed}.fcs"
        write_tube(path, ev, sample_id=str(seed))
        e = read_events(path)
        out.append((compensate(e, spillover_of(e)), find_panel(e)))
    return out


def test_em_fits_the_gates_mixtures_as_scikit_learn_does(tubes, monkeypatch):
    """Same start (k-means++ with the same seed), same iterations, same parameters to rounding."""
    calls = []
    real = gm.gaussian_mixture

    def record(X, k, seed, tol):
        calls.append((X.copy(), k, seed, tol))
        return real(X, k, seed, tol)

    monkeypatch.setattr(gm, "gaussian_mixture", record)
    for ev, panel in tubes:
        fit_monocyte_gate(ev, panel, rules=RULES)
    assert len(calls) == 2 * len(tubes)  # the coarse debris mixture and the main one, per tube
    for X, k, seed, tol in calls:
        ours, sk = real(X, k, seed, tol), _sklearn_gmm(X, k, seed, tol)
        assert ours.n_iter == sk.n_iter
        np.testing.assert_allclose(ours.weights, sk.weights, rtol=1e-6)
        np.testing.assert_allclose(ours.means, sk.means, rtol=1e-6)
        np.testing.assert_allclose(ours.covariances, sk.covariances, rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(ours.resp, sk.resp, rtol=1e-6, atol=1e-9)


def test_gate_is_the_one_scikit_learns_mixture_gives(tubes, monkeypatch):
    """The monocyte mask, event for event, and every self-check figure."""
    ours = [fit_monocyte_gate(ev, panel, rules=RULES) for ev, panel in tubes]
    monkeypatch.setattr(gm, "gaussian_mixture", _sklearn_gmm)
    theirs = [fit_monocyte_gate(ev, panel, rules=RULES) for ev, panel in tubes]
    assert sum(bool(g) for g in ours) >= 3
    for (ev, _), a, b in zip(tubes, ours, theirs, strict=True):
        assert bool(a) == bool(b) and a.checks == b.checks
        if a:
            np.testing.assert_array_equal(a.apply(ev).mask, b.apply(ev).mask)
            np.testing.assert_allclose(a.means, b.means, rtol=1e-6)


@pytest.mark.parametrize("d", [4, 3])
@pytest.mark.parametrize("n", [0, 1, 2, 2001])
def test_mahalanobis_scores_agree_with_reference(n, d):
    rng = np.random.default_rng(n)
    k = 6
    Xt = np.ascontiguousarray(rng.normal(scale=3.0, size=(d, n)))
    means = rng.normal(size=(k, d))
    precs = np.linalg.inv(_spd(rng, k, d))
    log_norm = rng.normal(size=k)
    got = np.empty((k, n)), np.empty((k, n))
    ref = np.empty((k, n)), np.empty((k, n))
    S.mahalanobis_scores(Xt, means, precs, log_norm, *got)
    S.mahalanobis_scores_ref(Xt, means, precs, log_norm, *ref)
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    lp, d2 = gm.component_scores(Xt.T, means, precs, log_norm)
    assert lp.shape == d2.shape == (n, k)
    np.testing.assert_allclose(d2, ref[1].T, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n", [0, 1, 500])
def test_best_of_agrees_with_reference(n):
    rng = np.random.default_rng(n)
    scores = np.round(rng.normal(size=(7, n)), 1)  # ties, broken by the first component as np.argmax does
    scores[3, : n // 5] = -np.inf
    for allowed in (np.ones(7, bool), np.array([0, 1, 0, 1, 1, 0, 0], bool), np.zeros(7, bool),
                    np.array([0, 0, 0, 0, 0, 0, 1], bool)):
        np.testing.assert_array_equal(S.best_of(scores, allowed), S.best_of_ref(scores, allowed))


@pytest.mark.parametrize("n", [0, 1, 3000])
def test_nearest_centre_agrees_with_reference_and_scikit_learn(n):
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(n)
    X, _ = _blobs(rng, max(n, 50), 4, 6)
    km = KMeans(n_clusters=6, n_init=1, random_state=0).fit(X)
    R = X[:n]
    Rt = np.ascontiguousarray(R.T)
    got = _kmeans.nearest_centre(Rt, km.cluster_centers_)
    np.testing.assert_array_equal(got, _kmeans.nearest_centre_ref(Rt, km.cluster_centers_))
    np.testing.assert_array_equal(got, km.predict(R) if n else np.zeros(0, dtype=np.int64))
