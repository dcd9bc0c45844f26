"""Hostile and broken Gating-ML templates (issue 12): one clean line, quickly; never a traceback or a hang.

Limits (``hladr.gating.gatingml._check``) are refused while the file is streamed, before
flowkit parses it; a template without a single ``monocytes`` gate stops ``hladr
run`` before any tube is analysed (exit 2); bad numbers, ids, references and
transforms are refused with the gate's id; a seeded fuzzer over the test
template checks that parse + compile + apply either works or raises a
``HladrError``.
"""

from __future__ import annotations

import copy
import csv
import os
import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from lxml import etree

from hladr.cli import main
from hladr.errors import ChannelError, GateError, HladrError
from hladr.fcs.read import read_events
from hladr.gating.gatingml import _check as L
from hladr.gating.gatingml.engine import apply_monocyte_template, load_template

TEMPLATE = Path(__file__).resolve().parents[1] / "data" / "monocytes_template.xml"
_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<gating:Gating-ML xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating" '
    'xmlns:transforms="http://www.isac-net.org/std/Gating-ML/v2.0/transformations" '
    'xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">\n'
)


def _logicle(**params: str) -> str:
    """A logicle transformation ``Logicle`` (T=262144, W=0.5, M=4.5, A=0 unless given)."""
    p = {"T": "262144", "W": "0.5", "M": "4.5", "A": "0", **params}
    attrs = " ".join(f'transforms:{k}="{v}"' for k, v in p.items())
    return (f'<transforms:transformation transforms:id="Logicle"><transforms:logicle {attrs}/>'
            "</transforms:transformation>")


def _dim(name: str, lo=None, hi=None, xf: str | None = None) -> str:
    attrs = 'gating:compensation-ref="uncompensated"'
    attrs += f' gating:transformation-ref="{xf}"' if xf else ""
    attrs += f' gating:min="{lo}"' if lo is not None else ""
    attrs += f' gating:max="{hi}"' if hi is not None else ""
    return f'<gating:dimension {attrs}><data-type:fcs-dimension data-type:name="{name}"/></gating:dimension>'


def _rect(gate_id: str, parent: str | None = None, lo=1, hi=None, name: str = "FSC-A", xf: str | None = None) -> str:
    par = f' gating:parent_id="{parent}"' if parent else ""
    return f'<gating:RectangleGate gating:id="{gate_id}"{par}>{_dim(name, lo, hi, xf)}</gating:RectangleGate>\n'


def _polygon(gate_id: str, verts, parent: str | None = None) -> str:
    par = f' gating:parent_id="{parent}"' if parent else ""
    vs = "".join(f'<gating:vertex><gating:coordinate data-type:value="{x}"/><gating:coordinate '
                 f'data-type:value="{y}"/></gating:vertex>' for x, y in verts)
    return f'<gating:PolygonGate gating:id="{gate_id}"{par}>{_dim("FSC-A")}{_dim("SSC-A")}{vs}</gating:PolygonGate>\n'


def _write(path: Path, body: str) -> Path:
    path.write_text(_HEAD + body + "</gating:Gating-ML>\n", encoding="utf-8")
    return path


def _star(n: int) -> list[tuple[float, float]]:
    """A wavy ring of ``n`` vertices around the scatter plot's centre (a large hand-drawn-like polygon)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = 1 + 0.3 * np.sin(7 * t)
    return list(zip((100000 + 50000 * r * np.cos(t)).round(3), (100000 + 50000 * r * np.sin(t)).round(3), strict=True))


def _refused(path: Path, *words: str, seconds: float = 3.0) -> str:
    """``load_template`` refuses ``path`` quickly with one line naming the file and ``words``."""
    t0 = time.perf_counter()
    with pytest.raises(GateError) as exc:
        load_template(path)
    elapsed = time.perf_counter() - t0
    msg = str(exc.value)
    assert elapsed < seconds, f"refusal took {elapsed:.1f} s"
    assert "\n" not in msg and path.name in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    from hladr.simulate.simulator import simulate_run

    d = tmp_path_factory.mktemp("gml_run")
    simulate_run(d, seed=11, instrument="canto", n_samples=1, events_per_tube=5000, bead_events=3000)
    return d


@pytest.fixture(scope="module")
def tube(run_dir):
    with open(run_dir / "worklist.csv", newline="") as fh:
        f = next(r for r in csv.DictReader(fh) if r["role"] == "sample")["file"]
    return read_events(str(run_dir / f))


def _run(run_dir: Path, out: Path, capsys, *extra: str) -> tuple[int, list[str]]:
    """``hladr run`` in-process: (exit status, stderr lines)."""
    status = main(["run", str(run_dir), "--out", str(out), "--quiet", *extra])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return status, err.strip().splitlines()


# --------------------------------------------------------------------------- 1. limits, refused fast
def test_polygon_over_the_vertex_limit_is_refused_fast(tmp_path):
    path = _write(tmp_path / "big_polygon.xml", _polygon("Monocytes", _star(L.MAX_VERTICES + 1)))
    _refused(path, "'Monocytes'", f"{L.MAX_VERTICES:,}")


def test_huge_file_is_refused_before_it_is_read(tmp_path):
    """A 1M-vertex polygon (~130 MB) took > 300 s and 2.5 GB; now its size alone refuses it."""
    path = tmp_path / "million.xml"
    vertex = '<gating:vertex><gating:coordinate data-type:value="1"/><gating:coordinate data-type:value="2"/>' \
             '</gating:vertex>\n'
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(_HEAD + f'<gating:PolygonGate gating:id="Monocytes">{_dim("FSC-A")}{_dim("SSC-A")}')
        fh.write(vertex * (L.MAX_TEMPLATE_BYTES // len(vertex) + 10))
        fh.write("</gating:PolygonGate></gating:Gating-ML>\n")
    _refused(path, "bytes", seconds=1.0)


def test_too_many_gates_are_refused_fast(tmp_path):
    """10,000 sibling gates took 289 s in flowkit; one over the limit is refused while streaming."""
    body = "".join(_rect(f"G{i}") for i in range(L.MAX_GATES)) + _rect("Monocytes")
    _refused(_write(tmp_path / "many.xml", body), f"{L.MAX_GATES:,} gates")


def test_too_deep_a_chain_of_gates_is_refused(tmp_path):
    body = _rect("G0") + "".join(_rect(f"G{i}", f"G{i - 1}") for i in range(1, L.MAX_GATE_DEPTH + 1))
    _refused(_write(tmp_path / "deep.xml", body + _rect("Monocytes", f"G{L.MAX_GATE_DEPTH}")), "deep")


def test_too_many_elements_and_too_deep_xml_are_refused(tmp_path):
    many = _write(tmp_path / "elements.xml", _rect("Monocytes") + "<x/>" * (L.MAX_ELEMENTS + 1))
    _refused(many, "XML elements")
    nested = _write(tmp_path / "nested.xml", "<x>" * (L.MAX_XML_DEPTH + 1) + "</x>" * (L.MAX_XML_DEPTH + 1))
    _refused(nested, "nested")


def test_too_many_operands_or_dimensions_are_refused(tmp_path):
    refs = "".join('<gating:gateReference gating:ref="A"/>' for _ in range(L.MAX_OPERANDS + 1))
    body = _rect("A") + f'<gating:BooleanGate gating:id="Monocytes"><gating:or>{refs}</gating:or></gating:BooleanGate>'
    _refused(_write(tmp_path / "operands.xml", body), "Boolean operands")
    dims = "".join(_dim(f"FL{i}-A", 1) for i in range(L.MAX_DIMENSIONS + 1))
    body = f'<gating:RectangleGate gating:id="Monocytes">{dims}</gating:RectangleGate>'
    _refused(_write(tmp_path / "dims.xml", body), "'Monocytes'", "dimensions")


def test_template_at_every_limit_loads_quickly(tmp_path, tube):
    """1,000 gates, a chain 62 deep, 200 operands, a 10,000-vertex polygon: flowkit's gate tree took 29 s."""
    chain = _rect("C0") + "".join(_rect(f"C{i}", f"C{i - 1}") for i in range(1, 60))
    siblings = "".join(_rect(f"G{i}", "C59") for i in range(L.MAX_GATES - 62))
    refs = "".join(f'<gating:gateReference gating:ref="G{i}"/>' for i in range(L.MAX_OPERANDS))
    body = chain + siblings + f'<gating:BooleanGate gating:id="B" gating:parent_id="C59"><gating:or>{refs}</gating:or>'
    body += "</gating:BooleanGate>" + _polygon("Monocytes", _star(L.MAX_VERTICES), parent="B")
    path = _write(tmp_path / "limits.xml", body)
    t0 = time.perf_counter()
    template = load_template(path)
    res = apply_monocyte_template(template, tube)
    elapsed = time.perf_counter() - t0
    assert len(template.gates) == L.MAX_GATES and res.gate_path[-3:] == ("C59", "B", "Monocytes")
    assert elapsed < 8.0, f"parse + compile + apply took {elapsed:.1f} s"


def test_polygon_at_the_vertex_limit_compiles_and_gates_quickly(tmp_path, tube):
    """The band table was built edge by edge in Python: 24 s for 10,000 vertices (244 s for 100,000)."""
    from hladr.gating.gatingml._static import static_arrays

    body = _polygon("Monocytes", [(x, y) for x, y in _star(L.MAX_VERTICES)])
    template = load_template(_write(tmp_path / "limit.xml", body))
    t0 = time.perf_counter()
    static_arrays(template.gates[0])
    compiled = time.perf_counter() - t0
    assert compiled < 3.0, f"compile took {compiled:.1f} s"
    res = apply_monocyte_template(template, tube)
    x, y = tube.data[:, tube.pnn.index("FSC-A")], tube.data[:, tube.pnn.index("SSC-A")]
    assert 0 < res.n_monocytes < tube.n_events and res.mask[(x - 100000) ** 2 + (y - 100000) ** 2 < 30000 ** 2].all()


# --------------------------------------------------------------------------- 2 and 4. the monocyte gate, at run start
@pytest.mark.parametrize("ids", [("Cells", "Lymphocytes"), ("Monocytes", "MONOCYTES"), ("monocytes", "Monocytes")])
def test_template_without_one_monocytes_gate_stops_the_run(run_dir, tmp_path, capsys, ids):
    path = _write(tmp_path / "lab.xml", "".join(_rect(i) for i in ids))
    out = tmp_path / "out"
    status, err = _run(run_dir, out, capsys, "--gates", str(path))
    assert status == 2 and len(err) == 1, err
    assert "lab.xml" in err[0] and "monocytes" in err[0] and all(repr(i) in err[0] for i in ids), err[0]
    assert not (out / "results.csv").exists()  # nothing was analysed


def test_per_tube_template_without_monocytes_stops_the_run(run_dir, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    _write(run / "lab.xml", _rect("Cells"))
    with open(run / "worklist.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["gates"] = "lab.xml" if r["role"] == "sample" else ""
    with open(run / "worklist.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    status, err = _run(run, tmp_path / "out", capsys)
    assert status == 2 and len(err) == 1 and "lab.xml" in err[0] and "'Cells'" in err[0], err


def test_duplicate_ids_are_refused(tmp_path):
    same = _rect("A") + _rect("Monocytes", "A") + _rect("B") + _rect("Monocytes", "B", lo=2)
    _refused(_write(tmp_path / "dup.xml", same), "'Monocytes'", "twice")


# --------------------------------------------------------------------------- 3. numbers
_SQUARE = [(1000, 1000), (9000, 1000), (9000, 9000), (1000, 9000)]


@pytest.mark.parametrize("case, body", [
    ("nan_min", _rect("Monocytes", lo="NaN", hi=5)),
    ("inf_max", _rect("Monocytes", lo=1, hi="INF")),
    ("text_min", _rect("Monocytes", lo="abc")),
    ("min_over_max", _rect("Monocytes", lo=10, hi=5)),
    ("nan_vertex", _polygon("Monocytes", _SQUARE[:2] + [("NaN", 5)])),
    ("inf_vertex", _polygon("Monocytes", _SQUARE[:2] + [(5, "-INF")])),
    ("huge_vertex", _polygon("Monocytes", _SQUARE[:2] + [(1e308, 5)])),
    ("text_vertex", _polygon("Monocytes", _SQUARE[:2] + [("12,5", 5)])),
])
def test_bad_numbers_are_refused_naming_the_gate(tmp_path, case, body):
    _refused(_write(tmp_path / f"{case}.xml", _rect("Cells") + body), "'Monocytes'")


@pytest.mark.parametrize("param, value", [("T", "0"), ("T", "-262144"), ("M", "1e6"), ("M", "1e300"), ("T", "NaN")])
def test_nonsense_transform_parameters_are_refused(tmp_path, param, value):
    path = _write(tmp_path / "xf.xml", _logicle(**{param: value}) + _rect("Monocytes", lo=0.1, xf="Logicle"))
    _refused(path, "'Logicle'")


# --------------------------------------------------------------------------- 5. structure, channels, files
@pytest.mark.parametrize("case, body, words", [
    ("unknown_type", '<gating:CircleGate gating:id="Monocytes"/>', ("CircleGate", "'Monocytes'")),
    ("undefined_parent", _rect("Monocytes", "Nobody"), ("'Nobody'", "'Monocytes'")),
    ("parent_cycle", _rect("A", "Monocytes") + _rect("Monocytes", "A"), ("cycle",)),
    ("own_parent", _rect("Monocytes", "Monocytes"), ("cycle",)),
    ("boolean_cycle", _rect("A", "Monocytes") + '<gating:BooleanGate gating:id="Monocytes"><gating:and>'
     '<gating:gateReference gating:ref="A"/><gating:gateReference gating:ref="A"/></gating:and></gating:BooleanGate>',
     ("cycle",)),
    ("no_id", '<gating:RectangleGate>' + _dim("FSC-A", 1) + "</gating:RectangleGate>" + _rect("Monocytes"),
     ("no id",)),
    ("doctype", "", ("DOCTYPE",)),
])
def test_broken_structure_is_refused(tmp_path, case, body, words):
    path = _write(tmp_path / f"{case}.xml", body)
    if case == "doctype":
        path.write_text('<?xml version="1.0"?><!DOCTYPE g [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                        + _HEAD.split("\n", 1)[1] + _rect("Monocytes") + "</gating:Gating-ML>")
    _refused(path, *words)


def test_a_pipe_is_refused_not_waited_for(tmp_path):
    fifo = tmp_path / "gates.xml"
    os.mkfifo(fifo)
    caught: list[BaseException] = []

    def load() -> None:
        try:
            load_template(fifo)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            caught.append(exc)

    worker = threading.Thread(target=load, daemon=True)  # the old code blocked in open() for ever
    worker.start()
    worker.join(3.0)
    assert not worker.is_alive() and len(caught) == 1 and isinstance(caught[0], GateError), caught
    assert "regular file" in str(caught[0])


def test_channel_absent_from_the_file_fails_the_sample_with_one_line(run_dir, tmp_path, capsys):
    path = _write(tmp_path / "lab.xml", _rect("Cells") + _rect("Monocytes", "Cells", name="APC-Cy7-A"))
    out = tmp_path / "out"
    status, err = _run(run_dir, out, capsys, "--gates", str(path))
    assert status == 1
    with open(out / "results.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    assert row["qc"] == "fail" and "APC-Cy7-A" in str(row)
    with pytest.raises(ChannelError, match="'APC-Cy7-A'"):
        apply_monocyte_template(load_template(path), read_events(str(next(run_dir.glob("P*.fcs")))))


# --------------------------------------------------------------------------- fuzzing the template parser
_NUMBERS = ["NaN", "INF", "-INF", "1e308", "-1e308", "1e29", "-5", "0", "abc", "", "1e-320", "262144", "0.5", "4.5"]


_GML = "{http://www.isac-net.org/std/Gating-ML/v2.0/gating}"


def _mutate(tree: etree._ElementTree, rng: random.Random) -> bytes:
    """One to three random edits of a template: renumber, delete, duplicate, re-link, rename, truncate."""
    root = tree.getroot()
    for _ in range(rng.randint(1, 3)):
        elements = [e for e in root.iter() if isinstance(e.tag, str) and e is not root]
        ids = [v for e in elements for k, v in e.attrib.items() if k.endswith("}id")]
        op = rng.choices(["number", "scale", "delete", "duplicate", "relink", "raw"], [30, 20, 15, 15, 12, 8])[0]
        candidates = [e for e in elements if e.attrib] if op in ("number", "scale", "relink") else elements
        if not candidates:
            break
        el = rng.choice(candidates)
        if op == "raw":
            raw = etree.tostring(tree)
            return raw[: rng.randrange(len(raw))] if rng.random() < 0.5 else raw.replace(b"gating:", b"gating:x", 1)
        if op == "delete":
            el.getparent().remove(el)
        elif op == "duplicate":
            el.addnext(copy.deepcopy(el))
        elif op == "relink":
            key = rng.choice([k for k in el.attrib] + [f"{_GML}parent_id"])
            el.set(key, rng.choice(ids + ["monocytes", "MONOCYTES", "", "nope", "FCS", "SSC-A", "Logicle"]))
        else:
            numeric = [k for k, v in el.attrib.items() if v.replace(".", "").replace("-", "").isdigit()]
            if not numeric:
                continue
            key = rng.choice(numeric)
            if op == "number":
                el.set(key, rng.choice(_NUMBERS))
            else:  # a plausible but different number: gates that still work, in odd shapes
                el.set(key, repr(float(el.get(key)) * rng.choice([-1.0, 0.0, 0.5, 1.0001, 2.0, 1e6])))
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


def test_fuzzed_templates_work_or_fail_cleanly(tmp_path, tube):
    """Parse + compile + apply of ~200 mutated templates: a result or a HladrError, never another exception."""
    rng = random.Random(12)
    original = etree.parse(str(TEMPLATE))
    outcomes = {"ok": 0, "refused": 0}
    for case in range(200):
        raw = _mutate(copy.deepcopy(original), rng)
        path = tmp_path / f"fuzz{case}.xml"
        path.write_bytes(raw)
        t0 = time.perf_counter()
        try:
            res = apply_monocyte_template(load_template(path), tube)
            assert 0 <= res.n_monocytes <= tube.n_events
            outcomes["ok"] += 1
        except HladrError as exc:
            assert "\n" not in str(exc) and str(exc), (case, exc)
            outcomes["refused"] += 1
        except Exception as exc:  # noqa: BLE001 - the invariant under test
            pytest.fail(f"case {case}: {type(exc).__name__}: {exc}\n{raw.decode('utf-8', 'replace')}")
        assert time.perf_counter() - t0 < 5.0, f"case {case} took too long"
    assert outcomes["ok"] > 10 and outcomes["refused"] > 50, outcomes
