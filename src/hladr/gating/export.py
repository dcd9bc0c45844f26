"""The automated gates of one tube as a Gating-ML 2.0 file a technician can edit (``hladr gates export``).

Calling contract: ``export_gatingml(gate, events)`` takes a fitted :class:`MonocyteGate` and the
tube's compensated :class:`Events` (whose keywords still hold the file's spillover) and returns
the Gating-ML 2.0 text of the gate chain, which ``hladr run --gates`` / ``--gates-for`` reads back:

- ``cells``: RectangleGate FSC-A x SSC-A, the gate's scatter ranges (``min <= v < max``, as the
  automated gate);
- ``singlets`` (child of ``cells``; absent without a singlet channel): the singlet band on
  FSC-A/FSC-H (a ``fratio`` new dimension) or on the width channel;
- ``leukocytes`` (child of ``singlets``; absent without CD45): CD45 >= the gate's threshold;
- ``monocytes`` (child of the previous step): a PolygonGate on CD14 x SSC-A, both on the scale
  the mixture is fitted on, ``asinh(value / cofactor)``, written as Gating-ML's ``fasinh`` with
  ``T`` the channel's top and ``M = asinh(T / cofactor) / ln 10`` (so that a coordinate is
  ``asinh(value / cofactor) / asinh(T / cofactor)``, 0 to 1 over the channel's range).

The automated monocyte gate is a boundary in four dimensions (CD14, SSC, FSC, CD45 posterior
odds of a Gaussian mixture), which Gating-ML cannot state: its polygon is *traced*
(:func:`trace_monocytes`) as the contour where the smoothed share of monocytes among the
parent's events is one half, on a fine grid of CD14 x SSC, its largest region, simplified to at
most ``max_vertices`` vertices. How closely the traced gate selects the same events is measured
in ``benchmarks/gates_export_roundtrip.py``.

Channels that the file's spillover lists are gated compensated (``compensation-ref="FCS"``: the
file's own ``$SPILLOVER``, as the lab's templates do), the others raw (``"uncompensated"``);
limits are on the raw scale the automated gate uses. lxml is imported where the XML is written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..events import Events, Spillover
from ..safe_text import printable
from .monocyte_gate import MonocyteGate

__all__ = ["GATE_IDS", "TracedGate", "export_gatingml", "parent_mask", "trace_monocytes"]

GATE_IDS = ("cells", "singlets", "leukocytes", "monocytes_cd45_ssc", "monocytes")
GATING = "http://www.isac-net.org/std/Gating-ML/v2.0/gating"
TRANSFORMS = "http://www.isac-net.org/std/Gating-ML/v2.0/transformations"
DATATYPES = "http://www.isac-net.org/std/Gating-ML/v2.0/datatypes"
_NS = {"gating": GATING, "transforms": TRANSFORMS, "data-type": DATATYPES}

GRID_BINS = 120  # per axis, over the monocytes' extent and a margin around it
SMOOTHINGS = (1.0, 2.0, 4.0)  # Gaussian smoothings of both histograms (SD in bins) before their ratio
REGION_LEVELS = (0.15, 0.3, 0.5)  # the monocytes' share on the CD45 x SSC contour
MONOCYTE_LEVELS = (0.5,)  # the monocytes' share on the CD14 x SSC contour
MAX_VERTICES = 48


@dataclass(frozen=True)
class TracedGate:
    """The traced monocyte gates, on the mixture's scale ``asinh(value / cofactor)``: ``region`` (k, 2)
    on (CD45, SSC) (None without CD45) and ``vertices`` (k, 2) on (CD14, SSC) among the region's
    events; ``jaccard``: how the events inside both agree with the gate's monocytes (of the parent's)."""

    vertices: np.ndarray
    region: np.ndarray | None
    jaccard: float


def parent_mask(gate: MonocyteGate, events: Events) -> np.ndarray:
    """The events of the monocyte gate's parent step (leukocytes, else singlets, else cells), as the
    automated gate's kernel judges them (NaN never inside; the singlet ratio needs FSC-H > 0)."""
    p = gate.panel
    d = events.data
    f = d[:, events.index(p.fsc_a)].astype(np.float64)
    s = d[:, events.index(p.ssc_a)].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        keep = (f >= gate.fsc_range[0]) & (f < gate.fsc_range[1]) & (s >= gate.ssc_range[0]) & (s < gate.ssc_range[1])
        if gate.singlet_channel:
            m = d[:, events.index(gate.singlet_channel)].astype(np.float64)
            if gate.singlet_is_ratio:
                ok = m > 0
                m = np.where(ok, f / np.where(ok, m, 1.0), np.nan)
            keep &= (m >= gate.singlet_range[0]) & (m < gate.singlet_range[1])
        if p.cd45 and gate.cd45_min is not None:
            keep &= d[:, events.index(p.cd45)].astype(np.float64) >= gate.cd45_min
    return keep


def _asinh(gate: MonocyteGate, events: Events, rows: np.ndarray, k: int) -> np.ndarray:
    """Feature ``k`` of the mixture (CD14, SSC, FSC, CD45) of ``rows``, on the mixture's scale."""
    column = events.data[rows, events.index(gate.features[k])].astype(np.float64)
    return np.arcsinh(column / gate.cofactors[k])


def trace_monocytes(
    gate: MonocyteGate, events: Events, monocytes: np.ndarray, *, parent: np.ndarray | None = None,
    bins: int | None = None, max_vertices: int = MAX_VERTICES,
) -> TracedGate:
    """Polygons around the automated gate's monocytes (``monocytes``: its mask): CD45 x SSC, then CD14 x SSC.

    A polygon is the contour where the monocytes' share of the events (both histograms on a
    ``bins`` x ``bins`` grid over the monocytes' extent and a margin, smoothed) equals a level;
    of its closed regions the one holding the most monocytes, simplified (Visvalingam-Whyatt)
    to ``max_vertices``. CD14 x SSC alone cannot separate the monocytes of a septic tube from
    the CD14-dim cells beside them, which the mixture tells apart by CD45: with CD45 a first
    polygon on CD45 x SSC (levels :data:`REGION_LEVELS`, a low level keeps nearly every
    monocyte) takes the parent's events, and the CD14 x SSC polygon is traced among them. Each
    smoothing of :data:`SMOOTHINGS` is tried (a little keeps a sharp edge, more joins a sparse
    tail to the main cloud), and the pair whose events agree best with the gate's (Jaccard
    index) is returned.

    Raises
    ------
    ValueError
        No monocytes, or no region could be traced (a programming error for a gate that passed).
    """
    bins = GRID_BINS if bins is None else bins
    parent = parent_mask(gate, events) if parent is None else parent
    rows = np.flatnonzero(parent)
    cols = [_asinh(gate, events, rows, k) for k in range(len(gate.features))]
    is_mono = monocytes[rows]
    ok = np.isfinite(cols[0]) & np.isfinite(cols[1])
    with_cd45 = len(cols) > 3 and gate.panel.cd45 is not None
    if with_cd45:
        ok &= np.isfinite(cols[3])
    cols, is_mono = [c[ok] for c in cols], is_mono[ok]
    if not is_mono.any():
        raise ValueError("no monocytes to trace")
    n_mono = int(is_mono.sum())
    best: TracedGate | None = None
    regions: list[tuple[np.ndarray | None, np.ndarray]] = [(None, np.ones(is_mono.size, dtype=bool))]
    if with_cd45:
        regions = _candidates(cols[3], cols[1], is_mono, np.ones(is_mono.size, dtype=bool), bins, REGION_LEVELS,
                              max_vertices) or regions
    for region, in_region in regions:
        for vertices, inside in _candidates(cols[0], cols[1], is_mono, in_region, bins, MONOCYTE_LEVELS, max_vertices):
            hit = int((inside & is_mono).sum())
            jaccard = hit / (int(inside.sum()) + n_mono - hit)
            if best is None or jaccard > best.jaccard:
                best = TracedGate(vertices, region, jaccard)
    if best is None:
        raise ValueError("no monocyte region could be traced")
    return best


def _candidates(
    x: np.ndarray, y: np.ndarray, is_mono: np.ndarray, among: np.ndarray, bins: int, levels: tuple[float, ...],
    max_vertices: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(vertices, events inside and ``among``) of each traceable (smoothing, level) on x-y, traced among ``among``."""
    from matplotlib.path import Path as MplPath  # point-in-polygon: only when a gate is exported

    out = []
    rows = np.flatnonzero(among)
    xs, ys, ms = x[rows], y[rows], is_mono[rows]
    if not ms.any():
        return out
    pts = np.column_stack([xs, ys])
    for sigma in SMOOTHINGS:
        for level in levels:
            ring = _contour(xs, ys, ms, bins, sigma, level)
            if ring is None:
                continue
            vertices = _simplify(ring, max_vertices)
            inside = np.zeros(x.size, dtype=bool)
            inside[rows] = MplPath(vertices).contains_points(pts)
            out.append((vertices, inside))
    return out


def _contour(x: np.ndarray, y: np.ndarray, is_mono: np.ndarray, bins: int, sigma: float,
             level: float) -> np.ndarray | None:
    """The closed contour of the monocytes' smoothed share at ``level`` that holds the most monocytes."""
    from contourpy import contour_generator  # matplotlib's contouring: only when a gate is exported
    from matplotlib.path import Path as MplPath
    from scipy.ndimage import gaussian_filter  # SciPy's image filters: only here

    mx, my = x[is_mono], y[is_mono]
    lo = np.array([mx.min(), my.min()])
    hi = np.array([mx.max(), my.max()])
    pad = 0.15 * (hi - lo) + 0.05
    lo, hi = lo - pad, hi + pad
    ex = np.linspace(lo[0], hi[0], bins + 1)
    ey = np.linspace(lo[1], hi[1], bins + 1)
    h_all = gaussian_filter(np.histogram2d(x, y, bins=(ex, ey))[0], sigma, mode="constant")
    h_mono = gaussian_filter(np.histogram2d(mx, my, bins=(ex, ey))[0], sigma, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(h_all > 1e-3, h_mono / h_all, 0.0)
    share = np.pad(share, 1)  # a zero border: every contour is closed

    def centres(e: np.ndarray) -> np.ndarray:
        w = e[1] - e[0]
        return np.concatenate([[e[0] - w / 2], (e[:-1] + e[1:]) / 2, [e[-1] + w / 2]])

    rings = [r for r in contour_generator(centres(ex), centres(ey), share.T).lines(level) if len(r) >= 4]
    if not rings:
        return None
    mono_pts = np.column_stack([mx, my])
    ring = max(rings, key=lambda r: int(MplPath(r).contains_points(mono_pts).sum()))
    return ring[:-1] if np.allclose(ring[0], ring[-1]) else ring


def _simplify(ring: np.ndarray, most: int) -> np.ndarray:
    """Visvalingam-Whyatt on a closed ring: drop the vertex spanning the smallest triangle with its
    neighbours until ``most`` remain (a heap of areas; an entry made stale by a removal is skipped)."""
    import heapq

    pts = np.asarray(ring, dtype=np.float64)
    n = len(pts)
    if n <= most:
        return pts
    prev = [(i - 1) % n for i in range(n)]
    nxt = [(i + 1) % n for i in range(n)]
    alive = [True] * n

    def area(i: int) -> float:
        a, b, c = pts[prev[i]], pts[i], pts[nxt[i]]
        return 0.5 * abs((b[0] - a[0]) * (c[1] - a[1]) - (c[0] - a[0]) * (b[1] - a[1]))

    current = [area(i) for i in range(n)]
    heap = [(current[i], i) for i in range(n)]
    heapq.heapify(heap)
    left = n
    while left > most:
        a, i = heapq.heappop(heap)
        if not alive[i] or a != current[i]:
            continue
        alive[i] = False
        left -= 1
        p, q = prev[i], nxt[i]
        nxt[p], prev[q] = q, p
        for j in (p, q):
            current[j] = area(j)
            heapq.heappush(heap, (current[j], j))
    return pts[np.flatnonzero(alive)]


def _num(v: float) -> str:
    """A number as written in the file: the shortest text that reads back as the same double."""
    return repr(float(v))


def _comment(text: str) -> str:
    """Text safe inside an XML comment (no control characters, no ``--``)."""
    out = printable(text).replace("--", "- -")
    return out + " " if out.endswith("-") else out


def export_gatingml(
    gate: MonocyteGate, events: Events, *, spillover: Spillover | None = None, monocytes: np.ndarray | None = None,
    max_vertices: int = MAX_VERTICES, about: str = "",
) -> str:
    """The Gating-ML 2.0 text of the gate chain of ``gate`` on this tube (module docstring).

    ``events``: the tube, compensated as the gate was fitted (the polygon is traced on it);
    ``spillover``: the file's spillover (None: the file has none; every channel raw);
    ``monocytes``: the gate's mask on ``events`` if already computed; ``about``: one line for
    the file's header comment (sample, file, SHA-256).
    """
    from lxml import etree  # XML writer: only when a file is exported

    p = gate.panel
    mono = gate.apply(events).mask if monocytes is None else monocytes
    parent = parent_mask(gate, events)
    traced = trace_monocytes(gate, events, mono, parent=parent, max_vertices=max_vertices)
    listed = set(spillover.channels) if spillover is not None and not spillover.is_identity() else set()

    def q(prefix: str, name: str) -> str:
        return f"{{{_NS[prefix]}}}{name}"

    root = etree.Element(q("gating", "Gating-ML"), nsmap=_NS)
    lines = [
        f"hladr: the automated gates of one tube{': ' + about if about else ''}.",
        "The gate with id 'monocytes' selects the monocytes (hladr run, options gates and gates-for);",
        "the other gates may be renamed. Channels listed in the file's $SPILLOVER are gated compensated",
        "(compensation-ref FCS), the others raw. 'monocytes_cd45_ssc' and 'monocytes' are traced around",
        "the automated gate's monocytes (its boundary in four dimensions cannot be written in Gating-ML);",
        "their coordinates are asinh(value / cofactor) / asinh(T / cofactor) (the fasinh transforms).",
    ]
    root.append(etree.Comment("\n  " + "\n  ".join(_comment(line) for line in lines) + "\n  "))

    scale: dict[str, float] = {}  # channel -> asinh(T / cofactor), the file's coordinate unit

    def transform(tid: str, channel: str, cof: float) -> None:
        """fasinh with sinh(M ln 10) / T = 1 / cofactor: the gate's asinh(value / cofactor), divided by M ln 10."""
        top = float(events.upper_limit(channel))
        if not top > 0:  # no usable $PnR: any T > 0 keeps the relation
            top = 1000.0 * cof
        el = etree.SubElement(root, q("transforms", "transformation"), {q("transforms", "id"): tid})
        etree.SubElement(el, q("transforms", "fasinh"), {
            q("transforms", "T"): _num(top), q("transforms", "M"): _num(math.asinh(top / cof) / math.log(10)),
            q("transforms", "A"): "0"})
        scale[channel] = math.asinh(top / cof)

    transform("asinh_cd14", gate.features[0], gate.cofactors[0])
    transform("asinh_ssc", gate.features[1], gate.cofactors[1])
    if traced.region is not None:
        transform("asinh_cd45", gate.features[3], gate.cofactors[3])
    ratio = bool(gate.singlet_channel and gate.singlet_is_ratio)
    if ratio:
        el = etree.SubElement(root, q("transforms", "transformation"), {q("transforms", "id"): "fsc_ratio"})
        fr = etree.SubElement(el, q("transforms", "fratio"),
                              {q("transforms", "A"): "1", q("transforms", "B"): "0", q("transforms", "C"): "0"})
        for ch in (p.fsc_a, gate.singlet_channel):
            etree.SubElement(fr, q("data-type", "fcs-dimension"), {q("data-type", "name"): ch})

    def comp(channel: str) -> str:
        return "FCS" if channel in listed else "uncompensated"

    def dimension(gate_el, channel: str | None, lo: float | None = None, hi: float | None = None, *,
                  new: str | None = None, xf: str | None = None, comp_ref: str | None = None) -> None:
        attrs = {q("gating", "compensation-ref"): comp_ref or comp(channel)}
        if xf:
            attrs[q("gating", "transformation-ref")] = xf
        if lo is not None and np.isfinite(lo):
            attrs[q("gating", "min")] = _num(lo)
        if hi is not None and np.isfinite(hi):
            attrs[q("gating", "max")] = _num(hi)
        dim = etree.SubElement(gate_el, q("gating", "dimension"), attrs)
        if new:
            etree.SubElement(dim, q("data-type", "new-dimension"), {q("data-type", "transformation-ref"): new})
        else:
            etree.SubElement(dim, q("data-type", "fcs-dimension"), {q("data-type", "name"): channel})

    def new_gate(kind: str, gid: str, parent_id: str | None):
        attrs = {q("gating", "id"): gid}
        if parent_id:
            attrs[q("gating", "parent_id")] = parent_id
        return etree.SubElement(root, q("gating", kind), attrs)

    def vertices(gate_el, points: np.ndarray, sx: float, sy: float) -> None:
        for vx, vy in points:
            v = etree.SubElement(gate_el, q("gating", "vertex"))
            etree.SubElement(v, q("gating", "coordinate"), {q("data-type", "value"): _num(round(vx / sx, 6))})
            etree.SubElement(v, q("gating", "coordinate"), {q("data-type", "value"): _num(round(vy / sy, 6))})

    cells = new_gate("RectangleGate", "cells", None)
    dimension(cells, p.fsc_a, *gate.fsc_range)
    dimension(cells, p.ssc_a, *gate.ssc_range)
    last = "cells"
    if gate.singlet_channel:
        sing = new_gate("RectangleGate", "singlets", last)
        if ratio:
            both = {p.fsc_a, gate.singlet_channel} & listed
            dimension(sing, None, *gate.singlet_range, new="fsc_ratio", comp_ref="FCS" if both else "uncompensated")
        else:
            dimension(sing, gate.singlet_channel, *gate.singlet_range)
        last = "singlets"
    if p.cd45 and gate.cd45_min is not None:
        leuk = new_gate("RectangleGate", "leukocytes", last)
        dimension(leuk, p.cd45, gate.cd45_min, None)
        last = "leukocytes"
    if traced.region is not None:
        region = new_gate("PolygonGate", "monocytes_cd45_ssc", last)
        dimension(region, gate.features[3], xf="asinh_cd45")
        dimension(region, gate.features[1], xf="asinh_ssc")
        vertices(region, traced.region, scale[gate.features[3]], scale[gate.features[1]])
        last = "monocytes_cd45_ssc"
    poly = new_gate("PolygonGate", "monocytes", last)
    dimension(poly, gate.features[0], xf="asinh_cd14")
    dimension(poly, gate.features[1], xf="asinh_ssc")
    vertices(poly, traced.vertices, scale[gate.features[0]], scale[gate.features[1]])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True).decode("utf-8")
