"""Gating-ML 2.0 templates: the compliance suite's truth, monocyte templates, bad templates."""

from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path

import numpy as np
import pytest

from hladr.errors import ChannelError, GateError
from hladr.events import Events
from hladr.gating.gatingml.engine import GateTemplate, apply_monocyte_template, evaluate, load_template

pytestmark = pytest.mark.filterwarnings("error")

# Truth file "Results_<name>.txt" -> (template, gate id), as FlowKit's own tests
# (tests/gatingml_tests.py) map them: each gate in the smallest template defining it.
TRUTH = {
    "Range1": ("gml_range_gate.xml", "Range1"),
    "Range2": ("gml_time_range_gate.xml", "Range2"),
    "Rectangle1": ("gml_rect1_gate.xml", "Rectangle1"),
    "Rectangle2": ("gml_rect2_gate.xml", "Rectangle2"),
    "Rectangle3": ("gml_matrix_rect3_gate.xml", "Rectangle3"),
    "Rectangle4": ("gml_matrix_rect4_gate.xml", "Rectangle4"),
    "Rectangle5": ("gml_matrix_rect5_gate.xml", "Rectangle5"),
    "Polygon1": ("gml_poly1_gate.xml", "Polygon1"),
    "Polygon2": ("gml_poly2_gate.xml", "Polygon2"),
    "Polygon3NS": ("gml_poly3ns_gate.xml", "Polygon3NS"),
    "Polygon4": ("gml_matrix_poly4_gate.xml", "Polygon4"),
    "Ellipse1": ("gml_ellipse1_gate.xml", "Ellipse1"),
    "Ellipsoid3D": ("gml_ellipsoid3d_gate.xml", "Ellipsoid3D"),
    "FL2N-FL4N": ("gml_quadrant1_gate.xml", "FL2N-FL4N"),
    "FL2N-FL4P": ("gml_quadrant1_gate.xml", "FL2N-FL4P"),
    "FL2P-FL4N": ("gml_quadrant1_gate.xml", "FL2P-FL4N"),
    "FL2P-FL4P": ("gml_quadrant1_gate.xml", "FL2P-FL4P"),
    "FSCN-SSCN": ("gml_quadrant2_gate.xml", "FSCN-SSCN"),
    "FSCD-SSCN-FL1N": ("gml_quadrant2_gate.xml", "FSCD-SSCN-FL1N"),
    "FSCP-SSCN-FL1N": ("gml_quadrant2_gate.xml", "FSCP-SSCN-FL1N"),
    "FSCD-FL1P": ("gml_quadrant2_gate.xml", "FSCD-FL1P"),
    "FSCN-SSCP-FL1P": ("gml_quadrant2_gate.xml", "FSCN-SSCP-FL1P"),
    "RatRange1": ("gml_ratio_range1_gate.xml", "RatRange1"),
    "RatRange2": ("gml_ratio_range2_gate.xml", "RatRange2"),
    "RatRange1a": ("gml_log_ratio_range1_gate.xml", "RatRange1a"),
    "And1": ("gml_boolean_and1_gate.xml", "And1"),
    "And2": ("gml_boolean_and2_gate.xml", "And2"),
    "And3": ("gml_boolean_and3_complement_gate.xml", "And3"),
    "And4": ("gml_boolean_and4_not_gate.xml", "And4"),
    "Not1": ("gml_boolean_not1_gate.xml", "Not1"),
    "Or1": ("gml_boolean_or1_gate.xml", "Or1"),
    "Or2": ("gml_boolean_or2_gate.xml", "Or2"),
    "ParAnd2": ("gml_parent_poly1_boolean_and2_gate.xml", "ParAnd2"),
    "ParAnd3": ("gml_parent_range1_boolean_and3_gate.xml", "ParAnd3"),
    "ParQuadRect": ("gml_parent_quadrant_rect_gate.xml", "ParRectangle1"),
    "ScalePar1": ("gml_parent_rect1_rect_par1_gate.xml", "ScalePar1"),
    "ScaleRect1": ("gml_matrix_transform_logicle_rect1_gate.xml", "ScaleRect1"),
    "ScaleRange1": ("gml_transform_asinh_range1_gate.xml", "ScaleRange1"),
    "ScaleRange2": ("gml_transform_hyperlog_range2_gate.xml", "ScaleRange2"),
    "ScaleRange3": ("gml_transform_linear_range3_gate.xml", "ScaleRange3"),
    "ScaleRange4": ("gml_transform_logicle_range4_gate.xml", "ScaleRange4"),
    "ScaleRange5": ("gml_transform_logicle_range5_gate.xml", "ScaleRange5"),
    "ScaleRange6": ("gml_transform_log_range6_gate.xml", "ScaleRange6"),
    "ScaleRange1c": ("gml_matrix_transform_asinh_range1c_gate.xml", "ScaleRange1c"),
    "ScaleRange2c": ("gml_matrix_transform_hyperlog_range2c_gate.xml", "ScaleRange2c"),
    "ScaleRange3c": ("gml_matrix_transform_linear_range3c_gate.xml", "ScaleRange3c"),
    "ScaleRange4c": ("gml_matrix_transform_logicle_range4c_gate.xml", "ScaleRange4c"),
    "ScaleRange5c": ("gml_matrix_transform_logicle_range5c_gate.xml", "ScaleRange5c"),
    "ScaleRange6c": ("gml_matrix_transform_asinh_range6c_gate.xml", "ScaleRange6c"),
    "ScaleRange7c": ("gml_matrix_transform_hyperlog_range7c_gate.xml", "ScaleRange7c"),
    "ScaleRange8c": ("gml_matrix_transform_logicle_range8c_gate.xml", "ScaleRange8c"),
}


@pytest.fixture(scope="module")
def gate_ref(corpus: Path) -> Path:
    p = corpus / "FlowKit" / "gate_ref"
    if not (p / "data1.fcs").is_file():
        pytest.skip("Gating-ML compliance suite (FlowKit/gate_ref) not in the corpus")
    return p


@pytest.fixture(scope="module")
def data1(gate_ref: Path) -> Events:
    from hladr.fcs.read import read_events

    return read_events(gate_ref / "data1.fcs")


@functools.cache
def _template(path: Path) -> GateTemplate:
    return load_template(path)


def _truth(gate_ref: Path, name: str) -> np.ndarray:
    return np.loadtxt(gate_ref / "truth" / f"Results_{name}.txt", dtype=np.int64).astype(bool)


def test_every_truth_file_is_tested(gate_ref):
    found = {re.fullmatch(r"Results_(.+)\.txt", p.name).group(1) for p in (gate_ref / "truth").glob("Results_*.txt")}
    assert found == set(TRUTH)


@pytest.mark.corpus
@pytest.mark.parametrize("name", sorted(TRUTH))
def test_gate_matches_compliance_truth(gate_ref, data1, name):
    xml, gate_id = TRUTH[name]
    tpl = _template(gate_ref / "gml" / xml)
    got = evaluate(tpl, data1, gate_ids=[gate_id])[gate_id]
    truth = _truth(gate_ref, name)
    assert got.shape == truth.shape == (data1.n_events,)
    mismatch = np.flatnonzero(got != truth)
    assert mismatch.size == 0, f"{name}: {mismatch.size} events differ, first {mismatch[:10].tolist()}"


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("reference", "threads"), [(False, 1), (False, 3), (True, 1)], ids=["kernels", "kernels-3-threads", "numpy"]
)
def test_all_gates_template_matches_truth(gate_ref, data1, reference, threads):
    # 3 threads: the events are cut into slices of 4096 rows evaluated at once, then joined
    tpl = _template(gate_ref / "gml" / "gml_all_gates.xml")
    res = evaluate(tpl, data1, reference=reference, threads=threads)
    assert len(res) == 49 and tuple(res) == tpl.gate_ids
    bad = [g for g, m in res.items() if not np.array_equal(m, _truth(gate_ref, g))]
    assert bad == []


def test_non_compliant_file_of_the_suite_is_rejected(gate_ref):
    with pytest.raises(GateError, match="gml_range_gate_attr_testing.xml") as exc:
        load_template(gate_ref / "gml" / "gml_range_gate_attr_testing.xml")
    assert "\n" not in str(exc.value)


# --------------------------------------------------------------------------- hand-made templates
_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<gating:Gating-ML '
    'xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating" '
    'xmlns:transforms="http://www.isac-net.org/std/Gating-ML/v2.0/transformations" '
    'xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">\n'
)


def _dim(name: str, comp: str = "uncompensated", xf: str | None = None, lo=None, hi=None) -> str:
    attrs = f'gating:compensation-ref="{comp}"'
    attrs += f' gating:transformation-ref="{xf}"' if xf else ""
    attrs += f' gating:min="{lo}"' if lo is not None else ""
    attrs += f' gating:max="{hi}"' if hi is not None else ""
    return f'<gating:dimension {attrs}><data-type:fcs-dimension data-type:name="{name}"/></gating:dimension>'


def _polygon(gate_id: str, parent: str | None, dims: list[str], verts: list[tuple[float, float]]) -> str:
    par = f' gating:parent_id="{parent}"' if parent else ""
    vs = "".join(
        f'<gating:vertex><gating:coordinate data-type:value="{x}"/><gating:coordinate data-type:value="{y}"/>'
        "</gating:vertex>"
        for x, y in verts
    )
    return f'<gating:PolygonGate gating:id="{gate_id}"{par}>{"".join(dims)}{vs}</gating:PolygonGate>\n'


def _rect(gate_id: str, parent: str | None, dims: list[str]) -> str:
    par = f' gating:parent_id="{parent}"' if parent else ""
    return f'<gating:RectangleGate gating:id="{gate_id}"{par}>{"".join(dims)}</gating:RectangleGate>\n'


_LOGICLE = (
    '<transforms:transformation transforms:id="Logicle"><transforms:logicle transforms:T="262144" '
    'transforms:W="0.5" transforms:M="4.5" transforms:A="0"/></transforms:transformation>\n'
)


def _write(tmp_path: Path, body: str, name: str = "template.xml") -> Path:
    p = tmp_path / name
    p.write_text(_HEAD + body + "</gating:Gating-ML>\n", encoding="utf-8")
    return p


def _monocyte_template(tmp_path: Path, mono_id: str = "Monocytes") -> Path:
    body = _LOGICLE
    body += _rect("Lymphocytes", None, [_dim("FL9-A", lo=0)])  # a channel the tube does not have
    body += _polygon("Cells", None, [_dim("FSC-A"), _dim("SSC-A")],
                     [(10000, 5000), (200000, 5000), (200000, 150000), (10000, 150000)])
    body += _polygon("Singlets", "Cells", [_dim("FSC-A"), _dim("FSC-H")],
                     [(0, 0), (250000, 200000), (250000, 260000), (0, 60000)])
    body += _rect("CD45pos", "Singlets", [_dim("CD45", xf="Logicle", lo=0.5)])  # by $PnS
    body += _polygon(mono_id, "CD45pos", [_dim("FL2-A", xf="Logicle"), _dim("SSC-A")],
                     [(0.6, 20000), (1.0, 20000), (1.0, 120000), (0.6, 120000)])
    return _write(tmp_path, body)


def _monocyte_events() -> Events:
    #        FSC-A    FSC-H    SSC-A   CD45     CD14     PE
    rows = [
        [80000, 70000, 60000, 10000, 20000, 500],   # 0 monocyte
        [5000, 4000, 60000, 10000, 20000, 500],     # 1 debris: would be in every child gate
        [80000, 10000, 60000, 10000, 20000, 500],   # 2 doublet
        [80000, 70000, 60000, 10, 20000, 500],      # 3 CD45-negative
        [80000, 70000, 60000, 10000, 100, 500],     # 4 CD14-negative
        [80000, 70000, 60000, 10000, np.nan, 500],  # 5 CD14 unknown
        [80000, 70000, 10000, 10000, 20000, 500],   # 6 low SSC
    ]
    data = np.array(rows, dtype=np.float32)
    pnn = ("FSC-A", "FSC-H", "SSC-A", "FL1-A", "FL2-A", "FL3-A")
    pns = ("", "", "", "CD45", "CD14", "HLA-DR PE")
    return Events(data, pnn, pns, (262144.0,) * 6, {}, path="tube.fcs")


def test_monocyte_template_counts_and_parent_short_circuit(tmp_path):
    tpl = load_template(_monocyte_template(tmp_path))
    ev = _monocyte_events()
    res = apply_monocyte_template(tpl, ev)
    assert res.gate_id == "Monocytes"
    assert res.gate_path == ("Cells", "Singlets", "CD45pos", "Monocytes")
    assert list(res.counts.items()) == [("Cells", 6), ("Singlets", 5), ("CD45pos", 4), ("Monocytes", 1)]
    assert res.n_monocytes == 1
    assert res.mask.dtype == bool and np.flatnonzero(res.mask).tolist() == [0]
    assert res.template_sha256 == tpl.sha256 and len(tpl.sha256) == 64
    # event 1 is inside the monocyte polygon itself, but not in its ancestors
    alone = GateTemplate(tpl.path, tpl.sha256, tuple(
        dataclasses.replace(g, parent=None) if g.id == "Monocytes" else g for g in tpl.gates
    ))
    assert np.flatnonzero(evaluate(alone, ev, gate_ids=["Monocytes"])["Monocytes"]).tolist() == [0, 1, 2, 3]


def test_evaluate_all_gates_needs_every_channel(tmp_path):
    tpl = load_template(_monocyte_template(tmp_path))
    with pytest.raises(ChannelError, match="'FL9-A'"):
        evaluate(tpl, _monocyte_events())
    masks = evaluate(tpl, _monocyte_events(), gate_ids=["Cells", "CD45pos"])
    assert list(masks) == ["Cells", "CD45pos"]
    assert masks["Cells"].sum() == 6 and masks["CD45pos"].sum() == 4


def test_find_is_case_insensitive_and_missing_monocytes_is_an_error(tmp_path):
    tpl = load_template(_monocyte_template(tmp_path, mono_id="MONOCYTES"))
    assert tpl.find("monocytes").id == "MONOCYTES"
    assert tpl.find("monocytes", case_insensitive=False) is None
    no_mono = load_template(_write(tmp_path, _rect("Cells", None, [_dim("FSC-A", lo=1)]), "nomono.xml"))
    with pytest.raises(GateError, match="no gate has id 'monocytes'") as exc:
        apply_monocyte_template(no_mono, _monocyte_events())
    assert "\n" not in str(exc.value) and "nomono.xml" in str(exc.value)
    two = load_template(_write(tmp_path, _rect("Monocytes", None, [_dim("FSC-A", lo=1)])
                               + _rect("MONOCYTES", None, [_dim("FSC-A", lo=2)]), "two.xml"))
    with pytest.raises(GateError, match="several gates"):
        apply_monocyte_template(two, _monocyte_events())


def test_fcs_compensation_uses_the_files_spillover(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.uniform(-500, 5000, size=(500, 3)).astype(np.float32)
    spill = np.array([[1.0, 0.2], [0.05, 1.0]])
    kw = {"spillover": "2,FL1-A,FL2-A," + ",".join(f"{v}" for v in spill.ravel())}
    ev = Events(data, ("FSC-A", "FL1-A", "FL2-A"), ("", "", ""), (262144.0,) * 3, kw, path="comp.fcs")
    body = _rect("FL2pos", None, [_dim("FL2-A", comp="FCS", lo=1000, hi=3000)])
    body += _rect("FL2raw", None, [_dim("FL2-A", lo=1000, hi=3000)])
    tpl = load_template(_write(tmp_path, body))
    comp = data[:, 1:].astype(np.float64) @ np.linalg.inv(spill)
    res = evaluate(tpl, ev)
    np.testing.assert_array_equal(res["FL2pos"], (comp[:, 1] >= 1000) & (comp[:, 1] < 3000))
    np.testing.assert_array_equal(res["FL2raw"], (data[:, 2] >= 1000) & (data[:, 2] < 3000))
    assert not np.array_equal(res["FL2pos"], res["FL2raw"])


def test_empty_tube(tmp_path):
    tpl = load_template(_monocyte_template(tmp_path))
    ev = _monocyte_events()
    empty = ev.with_data(np.empty((0, 6), dtype=np.float32))
    res = apply_monocyte_template(tpl, empty)
    assert res.mask.shape == (0,) and set(res.counts.values()) == {0}


# --------------------------------------------------------------------------- bad templates
@pytest.mark.parametrize(
    "case",
    ["missing", "not_xml", "not_gatingml", "unknown_transform", "unknown_parent", "bad_logicle", "two_dims_not"],
)
def test_bad_template_is_a_one_line_gate_error(tmp_path, case):
    if case == "missing":
        path = tmp_path / "missing.xml"
    elif case == "not_xml":
        path = tmp_path / "garbage.xml"
        path.write_bytes(b"\x00\x01 this is not XML <<<")
    elif case == "not_gatingml":
        path = tmp_path / "other.xml"
        path.write_text('<?xml version="1.0"?><root><child/></root>')
    elif case == "unknown_transform":
        path = _write(tmp_path, _rect("G", None, [_dim("FSC-A", xf="Nope", lo=0.1)]))
    elif case == "unknown_parent":
        path = _write(tmp_path, _rect("G", "Nobody", [_dim("FSC-A", lo=1)]))
    elif case == "bad_logicle":
        xf = _LOGICLE.replace('transforms:W="0.5"', 'transforms:W="4"')
        path = _write(tmp_path, xf + _rect("G", None, [_dim("FSC-A", xf="Logicle", lo=0.1)]))
    else:
        body = _rect("A", None, [_dim("FSC-A", lo=1)]) + _rect("B", None, [_dim("SSC-A", lo=1)])
        body += ('<gating:BooleanGate gating:id="N"><gating:not><gating:gateReference gating:ref="A"/>'
                 '<gating:gateReference gating:ref="B"/></gating:not></gating:BooleanGate>\n')
        path = _write(tmp_path, body)
    with pytest.raises(GateError) as exc:
        load_template(path)
    msg = str(exc.value)
    assert "\n" not in msg and path.name in msg


def test_cached_templates_equal_freshly_parsed_ones(corpus, tmp_path):
    import subprocess
    import sys

    from hladr.gating.gatingml import _parse as _gml_parse

    checked = 0
    for xml in sorted((corpus / "FlowKit" / "gate_ref" / "gml").glob("*.xml")):
        try:
            fresh = _gml_parse.load_template(xml, cache_dir=tmp_path)  # parsed by flowkit, then cached
        except GateError:
            continue
        assert _gml_parse._read_cache(tmp_path, fresh.sha256) is not None
        cached = _gml_parse.load_template(xml, cache_dir=tmp_path)  # from the cache
        assert cached.gates == fresh.gates and cached.matrices == fresh.matrices, xml.name
        checked += 1
    assert checked >= 40
    # a process that finds the template in the cache never imports flowkit
    code = (f"import sys; from hladr.gating.gatingml.engine import load_template; "
            f"load_template({str(xml)!r}, cache_dir={str(tmp_path)!r}); print('flowkit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- cached static arrays
_ELLIPSE = (
    '<gating:EllipsoidGate gating:id="Blob">' + _dim("FSC-A") + _dim("FL2-A", xf="Logicle")
    + '<gating:mean><gating:coordinate data-type:value="80000"/><gating:coordinate data-type:value="0.8"/>'
    '</gating:mean><gating:covarianceMatrix>'
    '<gating:row><gating:entry data-type:value="4e8"/><gating:entry data-type:value="100"/></gating:row>'
    '<gating:row><gating:entry data-type:value="100"/><gating:entry data-type:value="0.01"/></gating:row>'
    '</gating:covarianceMatrix><gating:distanceSquare data-type:value="1"/></gating:EllipsoidGate>\n'
)
_STATIC_IDS = ["Monocytes", "Blob"]  # polygons (one on a logicle scale), a logicle rectangle, an ellipse


@pytest.fixture
def static_cache(tmp_path):
    """An empty cache directory, with the in-process caches of static arrays cleared before and after."""
    from hladr.gating.gatingml import _static as gst
    from hladr.gating.gatingml import _static_cache as gsc

    gst.static_arrays.cache_clear()
    gsc._stored_statics.cache_clear()
    yield tmp_path / "cache" / "templates"
    gst.static_arrays.cache_clear()
    gsc._stored_statics.cache_clear()


def _static_program(tmp_path: Path, cache: Path | None) -> tuple[GateTemplate, tuple]:
    """(template, ``program`` of its gates ``_STATIC_IDS``), from a fresh process's point of view."""
    from hladr.gating.gatingml import _compile as gmc
    from hladr.gating.gatingml import _static as gst
    from hladr.gating.gatingml import _static_cache as gsc
    from hladr.gating.gatingml import engine as gml

    gst.static_arrays.cache_clear()
    gsc._stored_statics.cache_clear()
    path = _monocyte_template(tmp_path)
    path.write_text(path.read_text().replace("</gating:Gating-ML>", _ELLIPSE + "</gating:Gating-ML>"))
    tpl = load_template(path, cache_dir=cache)
    gates = gml._closure(tpl, _STATIC_IDS)
    return tpl, gmc.Compiler(tpl, _monocyte_events()).program(gates, _STATIC_IDS, None)


def _assert_identical(got: tuple, want: tuple) -> None:
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), f"argument {i} differs"


def test_cached_static_arrays_are_bit_identical(tmp_path, static_cache):
    from hladr.gating.gatingml import _cache as _gml_cache
    from hladr.gating.gatingml import _static as gst
    from hladr.gating.gatingml import _static_cache as gsc
    from hladr.gating.gatingml import engine as gml

    tpl, fresh = _static_program(tmp_path, static_cache)
    assert gst.static_arrays.cache_info().misses == 5  # Cells, Singlets, CD45pos, Monocytes, Blob
    key = _gml_cache.cache_key(tpl.sha256)
    assert [p.name for p in static_cache.glob("*.static.npz")] == [f"{key}.static.npz"]
    # +-inf limits, 3 band tables (uint8 classes), an ellipse row
    assert np.isposinf(fresh[19]).any() and np.isneginf(fresh[19]).any() and np.isinf(fresh[23]).any()
    assert len(fresh[21]) == 3 and fresh[24].dtype == np.uint8 and np.count_nonzero(fresh[26]) == 4
    _, cached = _static_program(tmp_path, static_cache)
    assert gst.static_arrays.cache_info().misses == 0  # all read from the cache
    _assert_identical(cached, fresh)
    # what _static_arrays returns is what the cache gives back (params read-only as computed)
    gates = gml._closure(tpl, _STATIC_IDS)
    from_cache = gsc.statics(tpl.cache_dir, tpl.sha256, gates)
    gst.static_arrays.cache_clear()
    for g in gates:
        (st, table), (st0, table0) = from_cache[g], gst.static_arrays(g)
        for d, d0 in zip(st, st0, strict=True):
            assert not d[1].flags.writeable and d[1].tobytes() == d0[1].tobytes()
            assert [d[0], *d[2:]] == [d0[0], *d0[2:]]
        assert (table is None) == (table0 is None)
        if table is not None:
            assert all(a.dtype == b.dtype and a.tobytes() == b.tobytes() for a, b in zip(table, table0, strict=True))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "other_code", "short_arrays", "pickled"])
def test_corrupt_static_cache_is_recomputed(tmp_path, static_cache, damage):
    from hladr.gating.gatingml import _static as gst

    _, fresh = _static_program(tmp_path, static_cache)
    f = next(static_cache.glob("*.static.npz"))
    if damage == "garbage":
        f.write_bytes(b"\x00\x01 not an npz file" * 10)
    elif damage == "truncated":
        f.write_bytes(f.read_bytes()[:300])
    elif damage == "empty":
        f.write_bytes(b"")
    else:
        with np.load(f, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if damage == "other_code":
            arrays["code"] = np.zeros(32, dtype=np.uint8)
        elif damage == "short_arrays":
            arrays["f"] = arrays["f"][:-1]
        else:
            arrays["keys"] = np.array(list(arrays["keys"]), dtype=object)
        with open(f, "wb") as fh:
            np.savez(fh, **arrays)
    _, again = _static_program(tmp_path, static_cache)
    assert gst.static_arrays.cache_info().misses == 5  # recomputed
    _assert_identical(again, fresh)
    _, third = _static_program(tmp_path, static_cache)  # and the cache was repaired
    assert gst.static_arrays.cache_info().misses == 0
    _assert_identical(third, fresh)


def test_unwritable_static_cache_is_no_error(tmp_path):
    from hladr.gating.gatingml import _static as gst
    from hladr.gating.gatingml import _static_cache as gsc

    _, fresh = _static_program(tmp_path, tmp_path / "cache")
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    try:
        _, again = _static_program(tmp_path, blocker)
    finally:
        gst.static_arrays.cache_clear()
        gsc._stored_statics.cache_clear()
    _assert_identical(again, fresh)
