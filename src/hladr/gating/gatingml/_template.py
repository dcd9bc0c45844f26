"""A parsed Gating-ML 2.0 template as plain frozen numbers.

:class:`GateTemplate` holds every gate of a template (:class:`TemplateGate`: its kind,
parent, dimensions, vertices, ellipsoid and Boolean operands), its compensation matrices
(:class:`SpectrumMatrix`) and the file's SHA-256. A dimension (:class:`Dimension`) is a
channel or a ratio (:class:`Ratio`), a compensation reference, a scale transform
(:class:`Transform`) and limits. Nothing of flowkit's object model survives in these
records, so a template holds exactly the numbers that were applied (STYLE habit 3).
``_parse.py`` builds them (and keeps them as JSON in the template cache); ``_compile.py``,
``_static.py`` and ``engine.py`` read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...errors import GateError

__all__ = ["Transform", "Ratio", "Dimension", "SpectrumMatrix", "TemplateGate", "GateTemplate"]


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

