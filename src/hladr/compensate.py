"""Spillover compensation: the file's own matrix, applied to the channels it lists.

Calling contract: ``spillover_of(events)`` returns a frozen ``Spillover`` (or
None when the file has none); ``compensate(events, spill)`` returns new
``Events`` whose listed channels are compensated (``observed @ inv(S)``, rows of
``S`` = spilling channel, as in FCS $SPILLOVER) and whose other channels are
unchanged. A matrix normally lists only some detectors (BD lists the -A
channels, not the -H ones): those are left as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _kernels
from .errors import HladrError
from .events import Events

__all__ = ["Spillover", "spillover_of", "compensate"]


class CompensationError(HladrError):
    """The spillover matrix cannot be used with this file."""


@dataclass(frozen=True, eq=False)
class Spillover:
    """A spillover matrix over named channels."""

    channels: tuple[str, ...]
    matrix: np.ndarray

    def to_dict(self) -> dict:
        return {"channels": list(self.channels), "matrix": self.matrix.round(6).tolist()}

    def same_as(self, other: Spillover | None, *, tol: float = 1e-4) -> bool:
        """Same channels and values (within ``tol``): beads and samples must agree."""
        if other is None:
            return False
        return self.channels == other.channels and bool(
            np.allclose(self.matrix, other.matrix, atol=tol, rtol=0)
        )


def spillover_of(events: Events) -> Spillover | None:
    """The file's spillover ($SPILLOVER, SPILL, $COMP, $DFCiTOj), or None."""
    from .read import parse_spillover

    found = parse_spillover(events.keywords, list(events.pnn))
    if found is None:
        return None
    names, matrix = found
    return Spillover(tuple(names), np.asarray(matrix, dtype=np.float64))


def compensate(events: Events, spill: Spillover | None) -> Events:
    """Compensate the channels ``spill`` lists; identity matrices return ``events`` as is.

    Raises
    ------
    CompensationError
        The matrix names a channel that is not in the file, or is singular.
    """
    if spill is None or np.allclose(spill.matrix, np.eye(len(spill.channels))):
        return events
    missing = [c for c in spill.channels if c not in events.pnn]
    if missing:
        raise CompensationError(
            f"{events.path}: spillover lists channels not in the file: {', '.join(missing)}"
        )
    try:
        inv = np.linalg.inv(spill.matrix)
    except np.linalg.LinAlgError:
        raise CompensationError(f"{events.path}: the spillover matrix is singular") from None
    cols = np.array([events.index(c) for c in spill.channels], dtype=np.int64)
    data = np.ascontiguousarray(events.data, dtype=np.float32)
    out = _kernels.compensate_columns(data, cols, inv)
    return events.with_data(out, compensated=tuple(spill.channels))
