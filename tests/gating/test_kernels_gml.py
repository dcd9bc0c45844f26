"""Gating-ML kernels agree with their NumPy twins (and with FlowKit's flowutils)."""

from __future__ import annotations

import numpy as np
import pytest

from hladr.events import Events
from hladr.gating.gatingml import _kernels as K
from hladr.gating.gatingml._static import static_arrays
from hladr.gating.gatingml._template import Dimension, Ratio, TemplateGate, Transform
from hladr.gating.gatingml._transform_params import transform_params
from hladr.gating.gatingml.engine import GateTemplate, evaluate

pytestmark = pytest.mark.filterwarnings("error")

TRANSFORMS = {
    "linear": (K.XF_LINEAR, (262144.0, 0.0, 0.0, 100.0)),
    "log": (K.XF_LOG, (262144.0, 0.0, 4.5, 0.0)),
    "asinh": (K.XF_ASINH, (262144.0, 0.0, 4.5, 1.0)),
    "logicle": (K.XF_LOGICLE, (262144.0, 0.5, 4.5, 0.0)),
    "logicle_a": (K.XF_LOGICLE, (10000.0, 1.0, 4.0, 0.5)),
    "hyperlog": (K.XF_HYPERLOG, (10000.0, 1.0, 4.5, 0.0)),
    "hyperlog_a": (K.XF_HYPERLOG, (262144.0, 0.5, 4.5, 1.0)),
}


def _awkward(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.lognormal(6, 2.5, size=n)
    x[rng.random(n) < 0.2] *= -1           # negatives (compensation)
    x[rng.random(n) < 0.03] = np.nan       # NaN
    x[rng.random(n) < 0.03] = 0.0          # zeros
    x[rng.random(n) < 0.03] = 262143.0     # saturated
    x[rng.random(n) < 0.01] = np.inf
    return x


@pytest.mark.parametrize("n", [0, 1, 3000])
@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_transform_kernel_agrees_with_reference(name, n):
    kind, (t, w, m, a) = TRANSFORMS[name]
    p = transform_params(kind, t, w, m, a)
    x = _awkward(np.random.default_rng(n), n)
    got, ref = K.gml_transform(x, kind, p), K.gml_transform_ref(x, kind, p)
    assert got.shape == ref.shape == (n,)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-15, equal_nan=True)
    assert np.array_equal(np.isnan(got), np.isnan(x) | ((kind == K.XF_LOG) & (x < 0)))
    if kind in (K.XF_LOGICLE, K.XF_HYPERLOG):
        fin = np.isfinite(x)
        assert np.all(np.diff(got[fin][np.argsort(x[fin])]) >= 0)  # monotonic
        assert got[np.isposinf(x)].tolist() == [np.inf] * int(np.isposinf(x).sum())


@pytest.mark.parametrize("name", ["logicle", "logicle_a", "hyperlog", "hyperlog_a", "asinh"])
def test_transform_kernel_matches_flowutils(name):
    """Same operations as FlowKit's C code: logicle and hyperlog are bit-identical (finite input)."""
    import flowutils

    kind, (t, w, m, a) = TRANSFORMS[name]
    x = _awkward(np.random.default_rng(7), 5000)
    x = x[np.isfinite(x)]
    got = K.gml_transform(x, kind, transform_params(kind, t, w, m, a))
    if kind == K.XF_ASINH:
        np.testing.assert_allclose(got, flowutils.transforms.asinh(x, None, t=t, m=m, a=a), rtol=1e-14, atol=1e-15)
        return
    fn = flowutils.transforms.logicle if kind == K.XF_LOGICLE else flowutils.transforms.hyperlog
    np.testing.assert_array_equal(got, fn(x, None, t=t, m=m, w=w, a=a))


def _rand_events(rng: np.random.Generator, n: int, near: dict[int, list[float]] | None = None, spill: bool = True):
    """Float32 events with NaN, negative and saturated values; columns in ``near`` sit on given values."""
    data = rng.lognormal(7, 2, size=(n, 5))
    data[rng.random((n, 5)) < 0.2] *= -1
    data[rng.random((n, 5)) < 0.02] = np.nan
    data[rng.random((n, 5)) < 0.02] = 262143.0
    for col, values in (near or {}).items():
        pick = rng.random(n) < 0.5
        centre = rng.choice(values, size=n)
        data[pick, col] = centre[pick] * (1 + rng.normal(0, 1e-6, size=n)[pick])
    pnn = ("FSC-A", "SSC-A", "FL1-A", "FL2-A", "FL3-A")
    matrix = np.eye(5) + np.triu(np.full((5, 5), 0.03), 1) + np.tril(np.full((5, 5), 0.01), -1)
    kw = {"spillover": "5," + ",".join(pnn) + "," + ",".join(f"{v:g}" for v in matrix.ravel())} if spill else {}
    return Events(data.astype(np.float32), pnn, ("",) * 5, (262144.0,) * 5, kw, path="rand.fcs")


_LOGICLE = Transform("L", "logicle", 262144.0, 0.5, 4.5, 0.0)
_HYPER = Transform("H", "hyperlog", 262144.0, 0.5, 4.5, 0.0)
_ASINH = Transform("A", "asinh", 262144.0, 0.0, 4.5, 0.0)
_LOG = Transform("G", "log", 262144.0, 0.0, 5.0, 0.0)
_LIN = Transform("N", "linear", 262144.0, 0.0, 0.0, 1000.0)


def _dim(ch, xf=None, lo=None, hi=None, comp="uncompensated", ratio=None):
    return Dimension(ch, ratio, comp, xf, lo, hi)


def _random_template() -> GateTemplate:
    ratio = Ratio("R", "FL1-A", "FL2-A", 2.0, 10.0, -50.0)
    gates = (
        TemplateGate("rect", "rectangle", None, (_dim("FL1-A", _LOGICLE, 0.4, 0.8, comp="FCS"),
                                                 _dim("FL2-A", _HYPER, 0.3))),
        TemplateGate("rect2", "rectangle", "rect", (_dim("FL3-A", _ASINH, None, 0.7), _dim("SSC-A", _LOG, 0.2, 0.9),
                                                    _dim("FSC-A", _LIN, 0.01, 0.5))),
        TemplateGate("ratio", "rectangle", None, (_dim(None, _ASINH, 0.1, 0.6, ratio=ratio), _dim(None, lo=-3.0,
                                                                                                   ratio=ratio))),
        TemplateGate("poly", "polygon", None, (_dim("FL1-A", _LOGICLE, comp="FCS"), _dim("SSC-A", _ASINH, comp="FCS")),
                     vertices=((0.3, 0.3), (0.9, 0.35), (0.7, 0.9), (0.5, 0.5), (0.35, 0.8))),
        TemplateGate("poly_raw", "polygon", "poly", (_dim("FSC-A"), _dim("FL3-A")),
                     vertices=((-1000.0, -500.0), (30000.0, 0.0), (5000.0, 40000.0))),
        TemplateGate("ell", "ellipsoid", None, (_dim("FL2-A", _LOGICLE, comp="FCS"), _dim("FL3-A", _LOGICLE)),
                     mean=(0.5, 0.55), covariance=((0.02, 0.01), (0.01, 0.03)), distance_square=2.0),
        TemplateGate("ell3", "ellipsoid", None, (_dim("FSC-A"), _dim("SSC-A"), _dim("FL1-A")),
                     mean=(2000.0, 1000.0, 3000.0), covariance=((4e6, 1e6, 0), (1e6, 2e6, 0), (0, 0, 9e6)),
                     distance_square=3.0),
        TemplateGate("and", "boolean", None, operator="and", refs=(("rect", False), ("poly", True))),
        TemplateGate("or", "boolean", "ell", operator="or", refs=(("rect2", False), ("poly_raw", False))),
        TemplateGate("not", "boolean", "rect", operator="not", refs=(("ell3", False),)),
    )
    return GateTemplate("random.xml", "", gates)


@pytest.mark.parametrize("n", [0, 1, 5000])
def test_gate_kernels_agree_with_reference(n):
    tpl = _random_template()
    ev = _rand_events(np.random.default_rng(n), n)
    fast, ref = evaluate(tpl, ev), evaluate(tpl, ev, reference=True)
    assert list(fast) == list(ref) == list(tpl.gate_ids)
    for g in tpl.gate_ids:
        assert fast[g].shape == (n,) and fast[g].dtype == bool
        np.testing.assert_array_equal(fast[g], ref[g], err_msg=g)
    if n > 100:
        assert all(0 < fast[g].sum() < n for g in tpl.gate_ids)
        as64 = evaluate(tpl, ev.with_data(ev.data.astype(np.float64)))  # float64 input: the same values
        assert all(np.array_equal(as64[g], fast[g]) for g in tpl.gate_ids)


def test_raw_thresholds_are_exact_near_limits():
    """Events within a hair of the mapped-back limits: the shortcut never changes a membership."""
    tpl = _random_template()
    params = {t.kind: transform_params(K.__dict__[f"XF_{t.kind.upper()}"], t.t, t.w, t.m, t.a)
              for t in (_LOGICLE, _HYPER, _ASINH, _LOG, _LIN)}
    from hladr.gating.gatingml._static import _inverse

    near = {
        2: [_inverse(_LOGICLE, params["logicle"], y) for y in (0.4, 0.8, 0.3, 0.9)],
        3: [_inverse(_HYPER, params["hyperlog"], 0.3), _inverse(_LOGICLE, params["logicle"], 0.5)],
        4: [_inverse(_ASINH, params["asinh"], 0.7), 30000.0],
        1: [_inverse(_LOG, params["log"], y) for y in (0.2, 0.9)] + [_inverse(_ASINH, params["asinh"], 0.3)],
        0: [_inverse(_LIN, params["linear"], y) for y in (0.01, 0.5)],
    }
    ev = _rand_events(np.random.default_rng(11), 20000, near, spill=False)  # "FCS" without spillover: raw values
    fast, ref = evaluate(tpl, ev), evaluate(tpl, ev, reference=True)
    for g in tpl.gate_ids:
        np.testing.assert_array_equal(fast[g], ref[g], err_msg=g)


_STAR = tuple(
    (float(5000 + r * np.cos(a)), float(4000 + r * np.sin(a)))
    for a, r in zip(np.linspace(0, 2 * np.pi, 14, endpoint=False), [3000, 900] * 7, strict=True)
)


def _near_edges(rng: np.random.Generator, verts, n: int, inverse=None) -> np.ndarray:
    """Points on, and a hair off, the edges and vertices of a polygon (mapped to raw values by ``inverse``)."""
    v = np.array(verts)
    e = rng.integers(0, len(v), n)
    t = rng.random(n)
    t[rng.random(n) < 0.2] = 0.0  # vertices
    pts = v[e] + t[:, None] * (v[(e + 1) % len(v)] - v[e])
    scale = np.ptp(v, axis=0)
    pts += rng.normal(0, 1, size=pts.shape) * scale * rng.choice([0, 1e-12, 1e-9, 1e-6, 1e-3], size=(n, 1))
    if inverse is not None:
        pts = np.array([[inverse[0](x), inverse[1](y)] for x, y in pts])
    return pts


def test_polygon_band_tables_are_exact_near_edges():
    """Events on and next to polygon edges and vertices: band tables never change a membership."""
    from hladr.gating.gatingml._static import _inverse

    rng = np.random.default_rng(5)
    p_l = transform_params(K.XF_LOGICLE, _LOGICLE.t, _LOGICLE.w, _LOGICLE.m, _LOGICLE.a)
    p_a = transform_params(K.XF_ASINH, _ASINH.t, _ASINH.w, _ASINH.m, _ASINH.a)
    inv_l, inv_a = (lambda y: _inverse(_LOGICLE, p_l, y)), (lambda y: _inverse(_ASINH, p_a, y))
    wedge = ((0.0, 0.0), (250000.0, 200000.0), (250000.0, 240000.0), (0.0, 1.0))
    mono = ((0.45, 0.3), (0.9, 0.32), (0.95, 0.7), (0.6, 0.85), (0.5, 0.6))
    gates = (
        TemplateGate("star", "polygon", None, (_dim("FSC-A"), _dim("SSC-A")), vertices=_STAR),
        TemplateGate("wedge", "polygon", None, (_dim("FL1-A"), _dim("FL2-A")), vertices=wedge),
        TemplateGate("mono", "polygon", None, (_dim("FL3-A", _LOGICLE), _dim("SSC-A")),
                     vertices=tuple((x, y * 60000) for x, y in mono)),
        TemplateGate("both", "polygon", None, (_dim("FL3-A", _LOGICLE), _dim("FL2-A", _ASINH)), vertices=mono),
    )
    tpl = GateTemplate("bands.xml", "", gates)
    n = 4000
    data = np.zeros((4 * n, 5))
    data[:n, [0, 1]] = _near_edges(rng, _STAR, n)
    data[n:2 * n, [2, 3]] = _near_edges(rng, wedge, n)
    data[2 * n:3 * n, [4, 1]] = _near_edges(rng, gates[2].vertices, n, (inv_l, lambda y: y))
    data[3 * n:, [4, 3]] = _near_edges(rng, mono, n, (inv_l, inv_a))
    ev = Events(data.astype(np.float32), ("FSC-A", "SSC-A", "FL1-A", "FL2-A", "FL3-A"), ("",) * 5,
                (262144.0,) * 5, {}, path="edges.fcs")
    fast, ref = evaluate(tpl, ev), evaluate(tpl, ev, reference=True)
    for j, g in enumerate(tpl.gate_ids):
        np.testing.assert_array_equal(fast[g], ref[g], err_msg=g)
        assert 0.1 < fast[g][j * n:(j + 1) * n].mean() < 0.9  # the events straddle the edges
    tables = [static_arrays(g)[1] for g in gates]
    assert all(t is not None for t in tables)
    star_zones = np.isfinite(tables[0][2][:, ::2]).sum(axis=1)
    assert star_zones.max() > 2  # the concave star needs more than two edge zones in some bands
