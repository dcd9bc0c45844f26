"""Limits of a Gating-ML template, and the streaming check that enforces them before flowkit parses it.

``read_template(path)`` reads a template's bytes (a regular file of at most
``MAX_TEMPLATE_BYTES``); ``precheck(raw, name)`` walks them once with lxml's
``iterparse`` (no DTD, no entities, no network) and returns the gate and
quadrant ids in document order, or raises ``GateError`` with one line naming
the file and, where there is one, the gate at fault.

Why the limits: flowkit rebuilds its gate graph after every gate it adds (10,000
sibling gates took 289 s to parse) and holds a template as an lxml tree (a
polygon of 1M vertices took 2.5 GB), so a hostile or broken template must be
refused while it is streamed, before flowkit sees it. Hand-drawn gates are far
inside them: a polygon has at most a few hundred vertices, a lab's template a
few dozen gates nested a few deep. Numbers are refused when they are not finite
or beyond ``MAX_ABS_VALUE`` (no measurement or transformed value comes near it,
and squares of coordinates must not overflow), with the gate's id.
"""

from __future__ import annotations

import io
import math
import os
import stat
from pathlib import Path

from ...errors import GateError

__all__ = ["MAX_TEMPLATE_BYTES", "MAX_ELEMENTS", "MAX_XML_DEPTH", "MAX_GATES", "MAX_VERTICES", "MAX_GATE_DEPTH",
           "MAX_OPERANDS", "MAX_DIMENSIONS", "MAX_ABS_VALUE", "read_template", "precheck"]

MAX_TEMPLATE_BYTES = 16 * 2**20  # a 10,000-vertex polygon takes ~1.5 MB
MAX_ELEMENTS = 200_000  # XML elements in all (a vertex is three)
MAX_XML_DEPTH = 32  # element nesting; Gating-ML needs six
MAX_GATES = 1_000  # gates, each quadrant counting as one; flowkit's parse grows with their square
MAX_VERTICES = 10_000  # per polygon; a hand-drawn polygon has a few hundred
MAX_GATE_DEPTH = 64  # gates on a chain of parents and Boolean operands; a real template nests a few deep
MAX_OPERANDS = 200  # Boolean operands in all; flowkit walks its gate graph once for each (a real gate has 2-5)
MAX_DIMENSIONS = 50  # per gate; an ellipsoid's test costs their square per event (real gates have 1-3)
MAX_ABS_VALUE = 1e30  # largest magnitude of any number in a template

_NS_GATING = "http://www.isac-net.org/std/Gating-ML/v2.0/gating"
_NS_XF = "http://www.isac-net.org/std/Gating-ML/v2.0/transformations"
_NS_DT = "http://www.isac-net.org/std/Gating-ML/v2.0/datatypes"
_GATE_KINDS = ("RectangleGate", "PolygonGate", "EllipsoidGate", "QuadrantGate", "BooleanGate")
_NUMBER_ATTRS = {"value", "min", "max", "location", "T", "W", "M", "A", "B", "C"}
_OWNERS = {"transformation": "transformation", "spectrumMatrix": "spectrumMatrix"}


def read_template(path: str | Path) -> bytes:
    """The bytes of a template file; ``GateError`` if it is not a regular file or is larger than the limit.

    The size is checked before reading (and the read is bounded), so a huge
    file, a device or a pipe is refused at once instead of being read.
    """
    p = Path(path)
    try:
        st = os.stat(p)
        if not stat.S_ISREG(st.st_mode):
            raise GateError(f"{p}: the Gating-ML template is not a regular file")
        if st.st_size > MAX_TEMPLATE_BYTES:
            raise GateError(f"{p}: the Gating-ML template is {st.st_size:,} bytes; at most "
                            f"{MAX_TEMPLATE_BYTES:,} are accepted")
        with open(p, "rb") as f:
            raw = f.read(MAX_TEMPLATE_BYTES + 1)
    except OSError as exc:
        raise GateError(f"{p}: cannot read the Gating-ML template ({exc.strerror or type(exc).__name__})") from None
    if len(raw) > MAX_TEMPLATE_BYTES:
        raise GateError(f"{p}: the Gating-ML template is larger than {MAX_TEMPLATE_BYTES:,} bytes")
    return raw


def _local(tag: object) -> tuple[str, str]:
    """(namespace, local name) of an lxml tag or attribute name."""
    if not isinstance(tag, str):  # comments and processing instructions
        return "", ""
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def _number(name: str, owner: str, what: str, text: str | None) -> float:
    """``text`` as a finite number of magnitude at most ``MAX_ABS_VALUE``, or ``GateError``."""
    try:
        v = float((text or "").strip())
    except ValueError:
        v = math.nan
    if not (math.isfinite(v) and abs(v) <= MAX_ABS_VALUE):
        raise GateError(f"{name}: {owner}: {what} {(text or '')[:40]!r} is not a finite number "
                        f"(at most {MAX_ABS_VALUE:g} in magnitude)")
    return v


class _Scan:
    """What ``precheck`` collects while streaming: gates, their parents and operands, vertices."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.order: list[str] = []
        self.parent: dict[str, str | None] = {}
        self.deps: dict[str, list[str]] = {}
        self.owner = "the template"  # what the numbers being read belong to
        self.gate: str | None = None
        self.vertices = self.dimensions = self.operands = 0

    def add_gate(self, gate_id: str | None, kind: str) -> None:
        if not gate_id or not gate_id.strip():
            raise GateError(f"{self.name}: a {kind} has no id")
        if gate_id in self.parent:
            raise GateError(f"{self.name}: gate id {gate_id!r} is defined twice; gate ids must be unique")
        if len(self.order) >= MAX_GATES:
            raise GateError(f"{self.name}: more than {MAX_GATES:,} gates; a template may define at most {MAX_GATES:,}")
        self.order.append(gate_id)
        self.parent[gate_id] = None
        self.deps[gate_id] = []

    def start(self, el, depth: int) -> None:
        """Check one element as it opens (its attributes are known then)."""
        ns, local = _local(el.tag)
        attrs = {_local(k)[1]: v for k, v in el.attrib.items()}
        if depth == 2:
            self.gate, self.owner = None, "the template"
            if ns == _NS_GATING and local.endswith("Gate"):
                if local not in _GATE_KINDS:
                    raise GateError(f"{self.name}: gate {attrs.get('id')!r} is a {local}, which is not a Gating-ML "
                                    f"2.0 gate type ({', '.join(_GATE_KINDS)})")
                self.add_gate(attrs.get("id"), local)
                self.gate, self.owner, self.vertices, self.dimensions = attrs["id"], f"gate {attrs['id']!r}", 0, 0
                self.parent[self.gate] = attrs.get("parent_id")
            elif local in _OWNERS:
                self.owner = f"{_OWNERS[local]} {attrs.get('id')!r}"
        elif self.gate is not None and ns == _NS_GATING:
            if local == "Quadrant":
                self.add_gate(attrs.get("id"), "Quadrant")
                self.deps[attrs["id"]].append(self.gate)
            elif local == "gateReference":
                self.deps[self.gate].append(attrs.get("ref") or "")
                self.operands += 1
                if self.operands > MAX_OPERANDS:
                    raise GateError(f"{self.name}: more than {MAX_OPERANDS} Boolean operands (gateReference) in all; "
                                    f"at most {MAX_OPERANDS} are accepted")
            elif local in ("dimension", "divider") and depth == 3:
                self.dimensions += 1
                if self.dimensions > MAX_DIMENSIONS:
                    raise GateError(f"{self.name}: gate {self.gate!r} has more than {MAX_DIMENSIONS} dimensions")
            elif local == "vertex":
                self.vertices += 1
                if self.vertices > MAX_VERTICES:
                    raise GateError(f"{self.name}: polygon gate {self.gate!r} has more than {MAX_VERTICES:,} "
                                    f"vertices; at most {MAX_VERTICES:,} are accepted")
        if ns not in (_NS_GATING, _NS_XF, _NS_DT):
            return
        for key, text in attrs.items():
            if key in _NUMBER_ATTRS:
                v = _number(self.name, self.owner, f"{local} value" if key == "value" else key, text)
                if key == "T" and ns == _NS_XF and v <= 0:
                    raise GateError(f"{self.name}: {self.owner}: T must be positive, not {text!r}")
        if local == "dimension" and "min" in attrs and "max" in attrs:
            if float(attrs["min"]) > float(attrs["max"]):
                raise GateError(f"{self.name}: {self.owner}: a dimension has min {attrs['min']} > max {attrs['max']}")

    def end(self, el) -> None:
        """Check one element as it closes (its text is known then)."""
        ns, local = _local(el.tag)
        if ns == _NS_GATING and local == "value" and self.gate is not None:
            _number(self.name, self.owner, "divider value", el.text)

    def check_graph(self) -> None:
        """Parents and operands that exist, no cycle, no chain longer than ``MAX_GATE_DEPTH``."""
        for g in self.order:
            p = self.parent[g]
            if p is not None and p not in self.parent:
                raise GateError(f"{self.name}: gate {g!r} has parent {p!r}, which the template does not define")
            for r in self.deps[g]:
                if r not in self.parent:
                    raise GateError(f"{self.name}: Boolean gate {g!r} refers to gate {r!r}, which the template "
                                    "does not define")
        depth: dict[str, int] = {}
        for root in self.order:  # iterative depth-first search: a chain must not exhaust Python's stack
            stack, on_path = [root], {root}
            while stack:
                g = stack[-1]
                todo = [d for d in self._after(g) if d not in depth]
                for d in todo:
                    if d in on_path:
                        raise GateError(f"{self.name}: gate {g!r} depends on itself (through {d!r}): its parents "
                                        "or Boolean operands form a cycle")
                if todo:
                    stack.append(todo[0])
                    on_path.add(todo[0])
                    if len(stack) > MAX_GATE_DEPTH:
                        raise GateError(f"{self.name}: gate {todo[0]!r} is nested more than {MAX_GATE_DEPTH} gates "
                                        "deep (parents and Boolean operands)")
                    continue
                depth[g] = 1 + max((depth[d] for d in self._after(g)), default=0)
                if depth[g] > MAX_GATE_DEPTH:
                    raise GateError(f"{self.name}: gate {g!r} is nested more than {MAX_GATE_DEPTH} gates deep "
                                    "(parents and Boolean operands)")
                on_path.discard(stack.pop())

    def _after(self, g: str) -> list[str]:
        """The gates ``g`` depends on: its parent, its Boolean operands, its quadrant gate."""
        p = self.parent[g]
        return ([p] if p is not None else []) + self.deps[g]


def precheck(raw: bytes, name: str) -> tuple[str, ...]:
    """Stream a template and refuse it if it breaks a limit; return its gate and quadrant ids in file order.

    Raises
    ------
    GateError
        Not XML, a DOCTYPE (no template needs one; entities could expand or read
        files), too large or too deep, an unknown gate type, a duplicate or
        missing id, a number that is not finite, a transform with T <= 0, a
        dimension with min > max, a parent or operand that is not defined, a
        cycle. One line naming the file and the gate at fault.
    """
    from lxml import etree  # heavy: only a template not yet cached is checked while it streams

    scan = _Scan(name)
    depth = elements = 0
    try:
        for event, el in etree.iterparse(io.BytesIO(raw), events=("start", "end"), resolve_entities=False,
                                         load_dtd=False, no_network=True, huge_tree=False):
            if event == "end":
                scan.end(el)
                depth -= 1
                if depth == 1:  # a top-level element is done: free it
                    el.clear()
                    parent = el.getparent()
                    if parent is not None:
                        parent.remove(el)
                continue
            depth += 1
            elements += 1
            if elements == 1 and el.getroottree().docinfo.doctype:
                raise GateError(f"{name}: the template has a DOCTYPE declaration; Gating-ML 2.0 needs none")
            if depth > MAX_XML_DEPTH:
                raise GateError(f"{name}: XML elements nested more than {MAX_XML_DEPTH} deep")
            if elements > MAX_ELEMENTS:
                raise GateError(f"{name}: more than {MAX_ELEMENTS:,} XML elements; at most {MAX_ELEMENTS:,} are "
                                "accepted")
            scan.start(el, depth)
    except etree.XMLSyntaxError as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else "syntax error"
        raise GateError(f"{name}: not a usable Gating-ML 2.0 template: not well-formed XML ({msg})") from None
    scan.check_graph()
    return tuple(scan.order)
