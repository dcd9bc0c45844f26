"""Gating-ML 2.0 template -> plain frozen numbers (parsed with flowkit).

``load_template(path)`` reads a Gating-ML 2.0 file (first checked against the
limits of ``_check.py`` while streamed, then parsed into flowkit's gate and
transform objects, without flowkit's ``GatingStrategy``) and returns a frozen
``GateTemplate`` (``_template.py``) holding what the engine in ``engine.py`` needs
as small frozen dataclasses: per gate its kind, parent, dimensions (channel name or
ratio, compensation reference, scale transform, limits), vertices, ellipsoid and
Boolean operands.

Quadrant gates are flattened: each quadrant becomes a rectangle gate (the
divider values around its location give the limits) whose ``quadrant_of`` names
the quadrant gate; the quadrant gate itself selects nothing and is not listed.
Every problem raises ``GateError`` with one line naming the file.

When the caller names a cache folder (``load_template(path, cache_dir=...)``), the
parsed gates are kept there as JSON (``_cache.py`` stores the bytes); ``_write_cache``
and ``_read_cache`` here turn the dataclasses into JSON and back, so a later run
with the same template skips flowkit.
flowkit is imported inside the functions that use it: its import alone takes ~1.5 s,
which a run with a cached template never pays.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ...errors import GateError
from . import _kernels as K
from ._cache import cache_key, write_cache_file
from ._check import precheck, read_template
from ._template import Dimension, GateTemplate, Ratio, SpectrumMatrix, TemplateGate, Transform
from ._transform_params import transform_params

__all__ = ["load_template", "parse_template"]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].strip()


def _schema_error() -> str:
    """The first complaint of flowkit's Gating-ML 2.0 schema about the file it last validated ('' if none)."""
    try:
        from flowkit._utils.xml_common import gml_schema  # heavy (~1.5 s): only for a template not yet cached

        err = gml_schema.error_log[0]
    except (ImportError, AttributeError, IndexError):
        return ""
    message = re.sub(r"\{[^}]*\}", "", _first_line(ValueError(err.message)))  # names without their namespace
    return f"not valid Gating-ML 2.0 (line {err.line}: {message})"


def _flowkit_parse(raw: bytes) -> tuple[dict, dict, dict]:
    """flowkit's own objects for a template: (gate by id as (gate, parent id), transformations, matrices).

    This is ``flowkit.parse_gating_xml`` without its ``GatingStrategy``, whose
    gate tree is rebuilt after every gate added (1,000 gates nested 60 deep took
    29 s); the checks that tree made (parents exist, no cycle, unique ids) are
    ``precheck``'s and ``_parse_bytes``'s. The schema validation is flowkit's.
    """
    from flowkit._utils import xml_common, xml_utils  # heavy (~1.5 s): only for a template not yet cached

    doc_type, root, gating_ns, data_type_ns, xform_ns = xml_common._get_xml_type(io.BytesIO(raw))
    if doc_type != "gatingml":
        raise ValueError("a FlowJo workspace, not a Gating-ML 2.0 file")
    gml = xml_utils._construct_gates(root, gating_ns, data_type_ns)
    gates = {g_id: (g.convert_to_parent_class(), g.parent) for g_id, g in gml.items()}
    return (gates, xml_utils._construct_transforms(root, xform_ns, data_type_ns),
            xml_utils._construct_matrices(root, xform_ns, data_type_ns))


def _convert_transform(name: str, xf_id: str, xf) -> Transform | Ratio:
    from flowkit import transforms as fkt  # heavy (~1.5 s): only for a template not yet cached

    def num(*values) -> tuple[float, ...]:
        out = tuple(float(v) for v in values)
        if not all(math.isfinite(v) for v in out):
            raise GateError(f"{name}: transformation {xf_id!r} has a non-numeric parameter")
        return out

    if isinstance(xf, fkt.RatioTransform):
        a, b, c = num(xf.param_a, xf.param_b, xf.param_c)
        return Ratio(xf_id, str(xf.dimensions[0]), str(xf.dimensions[1]), a, b, c)
    if isinstance(xf, fkt.LinearTransform):
        t, a = num(xf.param_t, xf.param_a)
        ok, out = t + a > 0, Transform(xf_id, "linear", t, a=a)
    elif isinstance(xf, fkt.LogTransform):
        t, m = num(xf.param_t, xf.param_m)
        ok, out = t > 0 and m > 0, Transform(xf_id, "log", t, m=m)
    elif isinstance(xf, fkt.AsinhTransform):
        t, m, a = num(xf.param_t, xf.param_m, xf.param_a)
        ok, out = t > 0 and m > 0 and m + a > 0, Transform(xf_id, "asinh", t, m=m, a=a)
    elif isinstance(xf, fkt.LogicleTransform):
        t, w, m, a = num(xf.param_t, xf.param_w, xf.param_m, xf.param_a)
        ok = t > 0 and w >= 0 and m > 0 and 2 * w <= m and -a <= w and a + w <= m - w
        out = Transform(xf_id, "logicle", t, w, m, a)
    elif isinstance(xf, fkt.HyperlogTransform):
        t, w, m, a = num(xf.param_t, xf.param_w, xf.param_m, xf.param_a)
        ok = t > 0 and w > 0 and m > 0 and 2 * w <= m and -a <= w and a + w <= m - w
        out = Transform(xf_id, "hyperlog", t, w, m, a)
    else:
        raise GateError(f"{name}: transformation {xf_id!r} ({type(xf).__name__}) is not supported")
    if not ok or not _computable(out):
        raise GateError(f"{name}: transformation {xf_id!r} has parameters outside their valid range")
    return out


def _computable(xf: Transform) -> bool:
    """Whether the engine's constants of ``xf`` are finite numbers (huge M or T make them overflow)."""
    codes = {"linear": K.XF_LINEAR, "log": K.XF_LOG, "asinh": K.XF_ASINH, "logicle": K.XF_LOGICLE,
             "hyperlog": K.XF_HYPERLOG}
    try:
        with np.errstate(all="raise"):
            p = transform_params(codes[xf.kind], xf.t, xf.w, xf.m, xf.a)
    except (ArithmeticError, ValueError):
        return False
    return bool(np.all(np.isfinite(p)))


def parse_template(path: str | Path) -> tuple[tuple[TemplateGate, ...], tuple[SpectrumMatrix, ...], str]:
    """Read a Gating-ML 2.0 file: (gates in document order, spectrum matrices, file SHA-256).

    Raises
    ------
    GateError
        The file cannot be read, is not Gating-ML 2.0, or uses something the
        engine does not support (the message is one line naming the file).
    """
    return _parse_bytes(read_template(path), Path(path).name)


def _parse_bytes(raw: bytes, name: str) -> tuple[tuple[TemplateGate, ...], tuple[SpectrumMatrix, ...], str]:
    """``parse_template`` on a template's bytes (``read_template``), ``name`` naming it in messages."""
    order = precheck(raw, name)  # limits first: flowkit's parse of a huge template would take minutes
    from flowkit._models import dimension as fk_dim  # heavy (~1.5 s): only for a template not yet cached
    from flowkit._models import gates as fk_gates

    try:
        fk_gml, fk_xforms, fk_matrices = _flowkit_parse(raw)
    except Exception as exc:  # noqa: BLE001 - flowkit raises many types for a bad file
        raise GateError(f"{name}: not a usable Gating-ML 2.0 template: {_schema_error() or _first_line(exc)}") from None

    xforms: dict[str, Transform | Ratio] = {k: _convert_transform(name, k, v) for k, v in fk_xforms.items()}
    matrices = []
    for m_id, m in fk_matrices.items():
        if m_id.casefold() in ("fcs", "uncompensated"):
            raise GateError(f"{name}: spectrumMatrix id {m_id!r} is reserved (compensation-ref 'FCS' and "
                            "'uncompensated')")
        spec = np.asarray(m.matrix, dtype=np.float64)
        if spec.ndim != 2 or spec.shape[0] != len(m.detectors) or spec.shape[1] != len(m.detectors):
            raise GateError(f"{name}: spectrumMatrix {m_id!r} is not square (only square matrices are supported)")
        if not np.all(np.isfinite(spec)) or abs(np.linalg.det(spec)) < 1e-12:
            raise GateError(f"{name}: spectrumMatrix {m_id!r} is singular or not numeric")
        fluor = tuple(str(f) for f in m.fluorochromes) if m.fluorochromes else tuple(m.detectors)
        if len(fluor) != spec.shape[0] or len(set(fluor)) != len(fluor) or len(set(m.detectors)) != len(m.detectors):
            raise GateError(f"{name}: spectrumMatrix {m_id!r} must list each fluorochrome and detector once, "
                            "one per row and column")
        matrices.append(SpectrumMatrix(m_id, fluor, tuple(m.detectors), tuple(map(tuple, spec.tolist()))))
    matrix_ids = {m.id for m in matrices}

    def comp_ref(gate_id: str, ref: str | None) -> str:
        ref = "uncompensated" if ref is None else str(ref)
        if ref not in ("uncompensated", "FCS") and ref not in matrix_ids:
            raise GateError(f"{name}: gate {gate_id!r} refers to an unknown compensation {ref!r}")
        return ref

    def scale(gate_id: str, ref: str | None) -> Transform | None:
        if ref is None:
            return None
        xf = xforms.get(ref)
        if not isinstance(xf, Transform):
            raise GateError(f"{name}: gate {gate_id!r} refers to {ref!r}, which is not a scale transformation")
        return xf

    def dims(gate_id: str, gate) -> tuple[Dimension, ...]:
        out = []
        for d in gate.dimensions:
            lo, hi = getattr(d, "min", None), getattr(d, "max", None)
            cref = comp_ref(gate_id, d.compensation_ref)
            if isinstance(d, fk_dim.RatioDimension):
                ratio = xforms.get(d.ratio_ref)
                if not isinstance(ratio, Ratio):
                    raise GateError(f"{name}: gate {gate_id!r} refers to an unknown ratio {d.ratio_ref!r}")
                out.append(Dimension(None, ratio, cref, scale(gate_id, d.transformation_ref), lo, hi))
            else:
                out.append(Dimension(str(d.id), None, cref, scale(gate_id, d.transformation_ref), lo, hi))
        return tuple(out)

    gates: list[TemplateGate] = []
    for g_id, (gate, parent) in fk_gml.items():
        if isinstance(gate, fk_gates.QuadrantGate):
            dividers = {dv.id: dv for dv in gate.dimensions}
            for q_id, quad in gate.quadrants.items():
                q_dims = []
                for ref in quad.divider_refs:
                    dv = dividers[ref]
                    lo, hi = quad.get_divider_range(ref)
                    q_dims.append(
                        Dimension(str(dv.dimension_ref), None, comp_ref(q_id, dv.compensation_ref),
                                  scale(q_id, dv.transformation_ref), lo, hi)
                    )
                gates.append(TemplateGate(q_id, "rectangle", parent, tuple(q_dims), quadrant_of=g_id))
        elif isinstance(gate, fk_gates.RectangleGate):
            if not gate.dimensions:
                raise GateError(f"{name}: rectangle gate {g_id!r} has no dimension")
            gates.append(TemplateGate(g_id, "rectangle", parent, dims(g_id, gate)))
        elif isinstance(gate, fk_gates.PolygonGate):
            verts = tuple((float(v[0]), float(v[1])) for v in gate.vertices)
            if len(gate.dimensions) != 2 or len(verts) < 3:
                raise GateError(f"{name}: polygon gate {g_id!r} needs 2 dimensions and at least 3 vertices")
            gates.append(TemplateGate(g_id, "polygon", parent, dims(g_id, gate), vertices=verts))
        elif isinstance(gate, fk_gates.EllipsoidGate):
            cov = np.asarray(gate.covariance_matrix, dtype=np.float64)
            n = len(gate.dimensions)
            if cov.shape != (n, n) or len(gate.coordinates) != n or abs(np.linalg.det(cov)) == 0.0:
                raise GateError(f"{name}: ellipsoid gate {g_id!r} has an invalid mean or covariance matrix")
            gates.append(
                TemplateGate(g_id, "ellipsoid", parent, dims(g_id, gate),
                             mean=tuple(float(c) for c in gate.coordinates),
                             covariance=tuple(map(tuple, cov.tolist())),
                             distance_square=float(gate.distance_square))
            )
        elif isinstance(gate, fk_gates.BooleanGate):
            refs = tuple((str(r["ref"]), bool(r["complement"])) for r in gate.gate_refs)
            if not refs or (gate.type == "not" and len(refs) != 1):
                raise GateError(f"{name}: Boolean gate {g_id!r} needs operands ('not' takes exactly one)")
            gates.append(TemplateGate(g_id, "boolean", parent, operator=gate.type, refs=refs))
        else:
            raise GateError(f"{name}: gate {g_id!r} ({type(gate).__name__}) is not supported")

    by_id = {g.id: g for g in gates}
    quad_gates = {g.quadrant_of for g in gates if g.quadrant_of}
    for g in gates:
        for ref in [r for r, _ in g.refs] + ([g.parent] if g.parent else []):
            if ref in quad_gates and ref not in by_id:
                raise GateError(f"{name}: gate {g.id!r} refers to quadrant gate {ref!r}; refer to one of its quadrants")
            if ref not in by_id:
                raise GateError(f"{name}: gate {g.id!r} refers to an unknown gate {ref!r}")
    if not gates:
        raise GateError(f"{name}: the template defines no gate")
    rank = {g_id: i for i, g_id in enumerate(order)}
    gates.sort(key=lambda g: rank.get(g.id, len(rank)))
    return tuple(gates), tuple(matrices), hashlib.sha256(raw).hexdigest()



def _gate_from_dict(d: dict) -> TemplateGate:
    dims = []
    for dim in d["dimensions"]:
        xf = dim["transform"]
        ratio = dim["ratio"]
        dims.append(Dimension(
            channel=dim["channel"],
            ratio=Ratio(**ratio) if ratio else None,
            compensation_ref=dim["compensation_ref"],
            transform=Transform(**xf) if xf else None,
            min=dim["min"],
            max=dim["max"],
        ))
    return TemplateGate(
        id=d["id"], kind=d["kind"], parent=d["parent"], dimensions=tuple(dims),
        vertices=tuple(tuple(v) for v in d["vertices"]), mean=tuple(d["mean"]),
        covariance=tuple(tuple(r) for r in d["covariance"]), distance_square=d["distance_square"],
        operator=d["operator"], refs=tuple((r[0], bool(r[1])) for r in d["refs"]), quadrant_of=d["quadrant_of"],
    )


def _read_cache(folder: Path, sha: str) -> tuple[tuple[TemplateGate, ...], tuple[SpectrumMatrix, ...]] | None:
    f = folder / f"{cache_key(sha)}.json"
    try:
        doc = json.loads(f.read_text(encoding="utf-8"))
        gates = tuple(_gate_from_dict(g) for g in doc["gates"])
        matrices = tuple(
            SpectrumMatrix(m["id"], tuple(m["fluorochromes"]), tuple(m["detectors"]),
                           tuple(tuple(r) for r in m["spectrum"]))
            for m in doc["matrices"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no cache, or an unreadable one: parse the file again
    return gates, matrices


def _write_cache(folder: Path, sha: str, gates, matrices) -> None:
    text = json.dumps({"gates": [asdict(g) for g in gates], "matrices": [asdict(m) for m in matrices]})
    write_cache_file(folder, f"{cache_key(sha)}.json", text.encode("utf-8"))


def load_template(path: str | Path, *, cache_dir: str | Path | None = None) -> GateTemplate:
    """Parse a Gating-ML 2.0 template into a frozen ``GateTemplate``.

    flowkit (whose import alone takes ~1.5 s) parses a template. With a ``cache_dir``
    (chosen by the shell: ``hladr run`` and ``hladr gate`` pass ``$HLADR_CACHE/templates``
    or ``~/.cache/hladr/templates``) the plain-number result is kept there as JSON,
    keyed by the file's SHA-256 and the hladr version, so later runs with the same
    template do not import flowkit at all; the returned template carries the folder,
    where the engine keeps its compiled arrays too. Without one (None) nothing is read
    from or written to disk besides the template itself.

    Raises
    ------
    GateError
        The file cannot be read, is not Gating-ML 2.0, or uses an unsupported
        feature (a non-square spectrum matrix, an unknown transform, ...). The
        message is one line naming the file.
    """
    raw = read_template(path)
    sha = hashlib.sha256(raw).hexdigest()
    folder = None if cache_dir is None else Path(cache_dir)
    kept = None if folder is None else str(folder)
    cached = _read_cache(folder, sha) if folder is not None else None
    if cached is not None:
        return GateTemplate(str(path), sha, cached[0], cached[1], cache_dir=kept)
    gates, matrices, sha = _parse_bytes(raw, Path(path).name)
    if folder is not None:
        _write_cache(folder, sha, gates, matrices)
    return GateTemplate(str(path), sha, gates, matrices, cache_dir=kept)
