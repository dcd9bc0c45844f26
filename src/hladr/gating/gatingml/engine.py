"""Gating-ML 2.0 templates: a lab's own gates instead of the automated ones.

Calling contract: ``load_template(path, cache_dir=None)`` parses a template once
into a frozen ``GateTemplate`` (plain numbers, parsed with flowkit; with a cache
folder, chosen by the caller, the parse and the compiled gates are kept there for
the next process); ``evaluate(template,
events)`` returns one N-long bool mask per gate; ``apply_monocyte_template(
template, events)`` returns a ``TemplateGateResult`` for the gate whose id is
``monocytes`` (any case), as ``hladr run --gates`` and ``hladr gate --gates`` use
it (SPEC.md section 5).

Notes
-----
Semantics are those of Gating-ML 2.0 as implemented by FlowKit, so the gates of
the Gating-ML compliance suite give exactly its per-event truth:

- a gate's membership includes its parent's: a child is tested only on the
  events its parent kept (the kernels take the parent's event indices);
- rectangles keep ``min <= v < max``; polygons the points with an odd winding
  number (edges included as in FlowKit); ellipsoids ``(v - mu) C^-1 (v - mu)' <=
  distanceSquare``; a quadrant is the rectangle between the divider values around
  its location; Boolean gates combine the memberships of their operands;
- compensation ``"FCS"`` uses the file's own spillover (none: uncompensated),
  a template ``spectrumMatrix`` its own matrix, ``"uncompensated"`` raw values;
  a compensated value is ``observed @ inv(S)``, computed per event and only for
  the channels a gate uses;
- transforms (linear, log, asinh, logicle, hyperlog, ratio) are evaluated per
  event, in double precision, only where a gate needs them: limits and
  bounding boxes are mapped back to raw values (the transforms are monotonic) and
  only events within a safety margin of a limit are transformed.

FlowKit itself re-compensates and re-transforms the whole matrix for each gate;
this engine never copies the matrix, and a large tube's rows are cut into
slices evaluated by several threads at once (``threads``; every event is judged
on its own, so the result is the same). Speed against FlowKit:
benchmarks/README.md.

Modules: ``_check`` bounds a template's size while it is read, ``_parse`` parses it
into the frozen records of ``_template``, ``_static`` computes what a gate needs
whatever the file (kept by ``_static_cache`` in memory and, in the folder the caller
named, on disk through ``_cache``), ``_compile`` adds what depends on the file and packs it all into the
engine's arrays, ``_kernels`` is the engine (transforms and gates); this module is
the public API and the evaluation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..._parallel import map_slices, thread_count
from ...errors import GateError
from ...events import Events
from . import _kernels as K
from ._compile import Compiler
from ._parse import load_template
from ._template import Dimension, GateTemplate, Ratio, SpectrumMatrix, TemplateGate, Transform

__all__ = [
    "GateTemplate",
    "TemplateGate",
    "TemplateGateResult",
    "load_template",
    "evaluate",
    "apply_monocyte_template",
    "monocyte_gate",
    "load_monocyte_template",
]

MONOCYTE_GATE_ID = "monocytes"


@dataclass(frozen=True)
class TemplateGateResult:
    """Monocytes selected by a template.

    ``mask`` (N,) bool marks the monocytes, ``indices`` (M,) int64 lists them in
    file order (cheaper than ``mask`` to gather their PE values); ``counts`` maps
    each gate evaluated to select them (the path from the root and any Boolean
    operands), in file order, to the events it kept; ``gate_path`` lists the ids
    from the root to the monocyte gate, whose id as spelled in the template is
    ``gate_id``; ``template_sha256`` identifies the template (provenance).
    """

    mask: np.ndarray
    indices: np.ndarray
    counts: dict[str, int]
    gate_path: tuple[str, ...]
    gate_id: str
    template_sha256: str = ""
    flags: tuple[str, ...] = field(default=())
    path_masks: np.ndarray | None = field(default=None, repr=False)  # (len(gate_path), N): each gate of the path

    @property
    def n_monocytes(self) -> int:
        """Number of events in the monocyte gate."""
        return int(self.counts[self.gate_id])


# --------------------------------------------------------------------------- evaluation
def _closure(template: GateTemplate, gate_ids: Iterable[str]) -> list[TemplateGate]:
    """The gates needed for ``gate_ids`` (parents, Boolean operands), each after its dependencies."""
    order: list[TemplateGate] = []
    state: dict[str, int] = {}

    def visit(gate_id: str) -> None:
        if state.get(gate_id) == 2:
            return
        if state.get(gate_id) == 1:
            raise GateError(f"{Path(template.path).name}: gate {gate_id!r} depends on itself")
        state[gate_id] = 1
        g = template.gate(gate_id)
        for dep in ([g.parent] if g.parent else []) + [r for r, _ in g.refs]:
            visit(dep)
        state[gate_id] = 2
        order.append(g)

    for gate_id in gate_ids:
        visit(gate_id)
    return order


def _run(
    template: GateTemplate, events: Events, gate_ids: Sequence[str], target: str | None, reference: bool,
    threads: int | None = 1,
):
    """``gml_evaluate`` (or its twin) on the gates needed for ``gate_ids``: (masks, counts by id, target indices).

    With several ``threads`` the events are cut into slices of rows evaluated at
    the same time (each event is judged on its own), and the slices' results are
    joined in row order: the same masks, counts and indices as one pass.
    """
    data = events.data
    if data.dtype not in (np.float32, np.float64):
        raise GateError(f"{Path(events.path).name or 'events'}: data must be float32 or float64, not {data.dtype}")
    if not data.flags.c_contiguous:
        data = np.ascontiguousarray(data)
    gates = _closure(template, list(gate_ids) + ([target] if target else []))
    args = Compiler(template, events).program(gates, gate_ids, target)
    run = K.gml_evaluate_ref if reference else K.gml_evaluate
    parts = map_slices(lambda lo, hi: run(data[lo:hi], *args), data.shape[0],
                       1 if reference else thread_count(data.shape[0], threads))
    if len(parts) == 1:
        masks, counts, selected = parts[0][2]
    else:
        masks = np.concatenate([p[0] for _, _, p in parts], axis=1)
        counts = np.sum([p[1] for _, _, p in parts], axis=0)
        selected = np.concatenate([p[2] + lo for lo, _, p in parts])
    return masks, {g.id: int(c) for g, c in zip(gates, counts, strict=True)}, selected


def evaluate(
    template: GateTemplate,
    events: Events,
    *,
    gate_ids: Sequence[str] | None = None,
    reference: bool = False,
    threads: int | None = None,
) -> dict[str, np.ndarray]:
    """Membership of each event in each gate of a template.

    Parameters
    ----------
    template : GateTemplate
        From :func:`load_template`.
    events : Events
        The tube; channels are matched by $PnN, then $PnS.
    gate_ids : sequence of str, optional
        Gates to return (exact ids); default all. Only these and the gates they
        depend on are evaluated.
    reference : bool
        Use the pure-NumPy twins of the kernels (slow; for tests).
    threads : int, optional
        Threads evaluating slices of the events at once; default: by the cores
        this process may use and the number of events (``hladr._parallel``).
        The result does not depend on it.

    Returns
    -------
    dict of str to (N,) bool ndarray
        Per gate, True for the events in it (and in all its ancestors).

    Raises
    ------
    GateError
        An unknown gate id or an unusable compensation matrix.
    ChannelError
        A gate needs a channel the file does not have.
    """
    wanted = list(dict.fromkeys(template.gate_ids if gate_ids is None else gate_ids))
    masks, _, _ = _run(template, events, wanted, None, reference, threads)
    return {g: masks[r] for r, g in enumerate(wanted)}


def _id_list(ids: Sequence[str], most: int = 12) -> str:
    """Gate ids for a one-line message (quoted: an id may hold any character), the first ``most`` of them."""
    shown = ", ".join(repr(i) for i in ids[:most])
    return shown + (f", ... ({len(ids):,} in all)" if len(ids) > most else "")


def monocyte_gate(template: GateTemplate) -> TemplateGate:
    """The one gate whose id is ``monocytes``, ignoring case.

    Raises
    ------
    GateError
        No such gate, or several (``Monocytes`` and ``MONOCYTES`` are ambiguous
        even though Gating-ML ids are case-sensitive). One line naming the
        template and its gate ids.
    """
    name = Path(template.path).name
    hits = [g for g in template.gates if g.id.casefold() == MONOCYTE_GATE_ID]
    if not hits:
        raise GateError(f"{name}: no gate has id 'monocytes' (any case); the template defines "
                        f"{_id_list(template.gate_ids)}; rename the gate that selects the monocytes")
    if len(hits) > 1:
        raise GateError(f"{name}: several gates have id 'monocytes' when case is ignored "
                        f"({_id_list([g.id for g in hits])}); keep one")
    return hits[0]


def load_monocyte_template(path: str | Path, *, cache_dir: str | Path | None = None) -> GateTemplate:
    """``load_template``, then ``monocyte_gate``: what ``hladr run`` checks before it analyses any tube.

    ``cache_dir`` as in :func:`load_template` (None: nothing kept on disk).

    Raises
    ------
    GateError
        The template cannot be used, or has no single ``monocytes`` gate.
    """
    template = load_template(path, cache_dir=cache_dir)
    monocyte_gate(template)
    return template


def apply_monocyte_template(
    template: GateTemplate, events: Events, *, threads: int | None = None
) -> TemplateGateResult:
    """Select the monocytes with the template gate whose id is ``monocytes`` (any case).

    Only that gate, its ancestors and the operands of Boolean gates among them
    are evaluated, so gates of the template that select other populations
    cannot make a tube fail. ``threads`` as in :func:`evaluate`.

    Raises
    ------
    GateError
        No gate (or more than one) has id ``monocytes``, ignoring case (``monocyte_gate``).
    ChannelError
        A gate needs a channel the file does not have.
    """
    gate = monocyte_gate(template)
    path = template.path_to(gate.id)
    masks, counts, selected = _run(template, events, list(path), gate.id, False, threads)
    return TemplateGateResult(
        mask=masks[-1],
        indices=selected,
        counts={g: counts[g] for g in template.gate_ids if g in counts},
        gate_path=path,
        gate_id=gate.id,
        template_sha256=template.sha256,
        path_masks=masks,
    )


__all__ += ["Dimension", "Ratio", "SpectrumMatrix", "Transform"]
