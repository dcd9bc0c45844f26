"""Gating-ML 2.0 template -> plain frozen numbers (parsed with flowkit).

``load_template(path)`` reads a Gating-ML 2.0 file (first checked against the
limits of ``_check`` while streamed, then parsed into flowkit's gate and
transform objects, without flowkit's ``GatingStrategy``) and returns a frozen
``GateTemplate`` holding what the engine (``engine.py``, ``_compile.py``) needs
as small frozen dataclasses: per gate its kind, parent, dimensions (channel name
or ratio, compensation reference, scale transform, limits), vertices, ellipsoid
and Boolean operands. Nothing of flowkit's object model survives the call, so a
template holds exactly the numbers that were applied (STYLE habit 3).

Quadrant gates are flattened: each quadrant becomes a rectangle gate (the
divider values around its location give the limits) whose ``quadrant_of`` names
the quadrant gate; the quadrant gate itself selects nothing and is not listed.
Every problem raises ``GateError`` with one line naming the file.

When the caller names a cache folder (``load_template(path, cache_dir=...)``), the
parsed gates are kept there as JSON (``_cache`` stores the bytes); ``_write_cache``
and ``_read_cache`` here turn the dataclasses into JSON and back, so a later run
with the same template skips flowkit.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ...errors import GateError
from ._cache import _cache_key, _write_cache_file
from ._check import precheck, read_template

__all__ = [
    "Transform", "Ratio", "Dimension", "SpectrumMatrix", "TemplateGate", "GateTemplate",
    "load_template", "parse_template",
]



@dataclass(frozen=True)
class Transform:
    """A Gating-ML scale transform: ``kind`` is linear, log, asinh, logicle or hyperlog."""

    id: str
    kind: str
    t: float
    w: float = 0.0
    m: float = 0.0
    a: float = 0.0


@dataclass(frozen=True)
class Ratio:
    """A ``fratio`` new dimension: ``a * ((numerator - b) / (denominator - c))``."""

    id: str
    numerator: str
    denominator: str
    a: float
    b: float
    c: float


@dataclass(frozen=True)
class Dimension:
    """One gate dimension: a channel (or a ratio), its compensation, transform and limits."""

    channel: str | None
    ratio: Ratio | None
    compensation_ref: str
    transform: Transform | None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class SpectrumMatrix:
    """A ``spectrumMatrix``: row i is the spectrum of fluorochrome i over the detectors."""

    id: str
    fluorochromes: tuple[str, ...]
    detectors: tuple[str, ...]
    spectrum: tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class TemplateGate:
    """One gate of a template, as plain numbers.

    ``kind`` is ``rectangle`` (also each quadrant of a quadrant gate),
    ``polygon``, ``ellipsoid`` or ``boolean``; ``parent`` is the id of the parent
    gate (None at the root); ``refs`` are the Boolean operands
    ``(gate id, use as complement)`` combined by ``operator`` (and, or, not).
    """

    id: str
    kind: str
    parent: str | None
    dimensions: tuple[Dimension, ...] = ()
    vertices: tuple[tuple[float, float], ...] = ()
    mean: tuple[float, ...] = ()
    covariance: tuple[tuple[float, ...], ...] = ()
    distance_square: float = 0.0
    operator: str = ""
    refs: tuple[tuple[str, bool], ...] = ()
    quadrant_of: str | None = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].strip()


def _schema_error() -> str:
    """The first complaint of flowkit's Gating-ML 2.0 schema about the file it last validated ('' if none)."""
    try:
        from flowkit._utils.xml_common import gml_schema

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
    from flowkit._utils import xml_common, xml_utils

    doc_type, root, gating_ns, data_type_ns, xform_ns = xml_common._get_xml_type(io.BytesIO(raw))
    if doc_type != "gatingml":
        raise ValueError("a FlowJo workspace, not a Gating-ML 2.0 file")
    gml = xml_utils._construct_gates(root, gating_ns, data_type_ns)
    gates = {g_id: (g.convert_to_parent_class(), g.parent) for g_id, g in gml.items()}
    return (gates, xml_utils._construct_transforms(root, xform_ns, data_type_ns),
            xml_utils._construct_matrices(root, xform_ns, data_type_ns))


def _convert_transform(name: str, xf_id: str, xf) -> Transform | Ratio:
    from flowkit import transforms as fkt

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
    from . import _kernels as K

    codes = {"linear": K.XF_LINEAR, "log": K.XF_LOG, "asinh": K.XF_ASINH, "logicle": K.XF_LOGICLE,
             "hyperlog": K.XF_HYPERLOG}
    try:
        with np.errstate(all="raise"):
            p = K.transform_params(codes[xf.kind], xf.t, xf.w, xf.m, xf.a)
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
    from flowkit._models import dimension as fk_dim
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


@dataclass(frozen=True)
class GateTemplate:
    """A parsed Gating-ML 2.0 template.

    Parameters
    ----------
    path : str
        The template file.
    sha256 : str
        SHA-256 of the file, hex (provenance).
    gates : tuple of TemplateGate
        Every gate in file order; each quadrant of a quadrant gate is one gate.
    matrices : tuple of SpectrumMatrix
        The template's compensation matrices.
    cache_dir : str, optional
        The cache folder it was loaded with (``load_template``): the engine keeps the
        compiled arrays of its gates there too. None: nothing is kept on disk. Not
        part of what the template is (equality ignores it).
    """

    path: str
    sha256: str
    gates: tuple[TemplateGate, ...]
    matrices: tuple[SpectrumMatrix, ...] = ()
    cache_dir: str | None = field(default=None, compare=False)

    @property
    def gate_ids(self) -> tuple[str, ...]:
        """Ids of all gates, in file order."""
        return tuple(g.id for g in self.gates)

    def gate(self, gate_id: str) -> TemplateGate:
        """The gate with exactly this id; ``GateError`` if there is none."""
        for g in self.gates:
            if g.id == gate_id:
                return g
        raise GateError(f"{Path(self.path).name}: no gate with id {gate_id!r} (gates: {', '.join(self.gate_ids)})")

    def find(self, gate_id: str, case_insensitive: bool = True) -> TemplateGate | None:
        """The gate with id ``gate_id`` (any case by default), or None.

        Raises
        ------
        GateError
            Several gates match when case is ignored.
        """
        key = gate_id.casefold() if case_insensitive else gate_id
        hits = [g for g in self.gates if (g.id.casefold() if case_insensitive else g.id) == key]
        if len(hits) > 1:
            exact = [g for g in hits if g.id == gate_id]
            if len(exact) == 1:
                return exact[0]
            raise GateError(
                f"{Path(self.path).name}: several gates match {gate_id!r}: {', '.join(g.id for g in hits)}"
            )
        return hits[0] if hits else None

    def path_to(self, gate_id: str) -> tuple[str, ...]:
        """Gate ids from the root down to ``gate_id`` (its ancestors, then itself)."""
        chain = [self.gate(gate_id)]
        while chain[-1].parent is not None:
            if len(chain) > len(self.gates):
                raise GateError(f"{Path(self.path).name}: the parents of gate {gate_id!r} form a cycle")
            chain.append(self.gate(chain[-1].parent))
        return tuple(g.id for g in reversed(chain))


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
    f = folder / f"{_cache_key(sha)}.json"
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
    _write_cache_file(folder, f"{_cache_key(sha)}.json", text.encode("utf-8"))


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
