"""Spillover compensation: the file's own matrix, applied to the channels it lists.

Calling contract: ``compensate(events, spill)`` takes ``Events`` and a
``Spillover`` (:class:`hladr.events.Spillover`, read from the file's keywords by
:func:`hladr.fcs.read.spillover_of`: this module never reads a file) and returns
new ``Events`` whose listed channels are compensated (``observed @ inv(S)``, rows
of ``S`` = spilling channel, as in FCS $SPILLOVER) and whose other channels are
unchanged. A matrix normally lists only some detectors (BD lists the -A
channels, not the -H ones): those are left as they are. ``in_place=True``
overwrites the input's matrix instead of copying it; the input ``Events`` are
then spent (:meth:`hladr.events.Events.hand_over`: reading their ``data`` raises).
"""

from __future__ import annotations

import numpy as np

from . import _kernels
from ._parallel import map_slices, thread_count
from .errors import CompensationError
from .events import Events, Spillover

__all__ = ["compensate", "can_compensate_in_place", "compensated_channel"]


def _inverse(events: Events, spill: Spillover | None) -> np.ndarray | None:
    """Inverse of the spillover matrix, or None when there is nothing to compensate (no or identity matrix)."""
    if spill is None or spill.is_identity():
        return None
    missing = [c for c in spill.channels if c not in events.pnn]
    if missing:
        raise CompensationError(
            f"{events.path}: spillover lists channels not in the file: {', '.join(missing)}"
        )
    try:
        return np.linalg.inv(spill.matrix)
    except np.linalg.LinAlgError:
        raise CompensationError(f"{events.path}: the spillover matrix is singular") from None


def can_compensate_in_place(events: Events) -> bool:
    """Whether ``compensate(events, ..., in_place=True)`` can overwrite ``events.data``
    (a writeable, C-contiguous float32 array)."""
    data = events.data
    return data.dtype == np.float32 and data.flags.c_contiguous and data.flags.writeable


def compensate(events: Events, spill: Spillover | None, *, in_place: bool = False, threads: int | None = 1) -> Events:
    """Compensate the channels ``spill`` lists; identity matrices return ``events`` as is.

    ``threads``: slices of rows compensated at once by that many threads (None: by the cores this
    process may use and the number of events; ``hladr._parallel``); each row is computed on its
    own, so the values are the same for any number.

    ``in_place=True`` writes the compensated values into ``events.data`` itself
    instead of a new matrix (no second copy of a large tube): the returned
    ``Events`` shares that array, and the input ``events`` are spent (their values
    are no longer the raw ones, so reading their ``data`` raises ``RuntimeError``;
    :meth:`~hladr.events.Events.hand_over`). It needs a writeable, C-contiguous
    float32 matrix (:func:`can_compensate_in_place`). The values are the same
    either way. Nothing to compensate (no or identity matrix) returns ``events``
    as is, not spent.

    Raises
    ------
    CompensationError
        The matrix names a channel that is not in the file, or is singular.
    ValueError
        ``in_place`` on a matrix that cannot be overwritten.
    """
    inv = _inverse(events, spill)
    if inv is None:
        return events
    cols = np.array([events.index(c) for c in spill.channels], dtype=np.int64)
    if in_place:
        if not can_compensate_in_place(events):
            raise ValueError("in-place compensation needs a writeable C-contiguous float32 event matrix")
        data = out = events.hand_over()  # checked and inverted first: a refusal leaves the input intact
    else:
        data = np.ascontiguousarray(events.data, dtype=np.float32)
        out = data.copy()
    map_slices(lambda lo, hi: _kernels.compensate_columns(data[lo:hi], cols, inv, out[lo:hi]),
               data.shape[0], thread_count(data.shape[0], threads))
    return events.with_data(out, compensated=tuple(spill.channels))


def compensated_channel(
    events: Events, spill: Spillover | None, channel: str, rows: np.ndarray | None, *,
    threads: int | None = None,
) -> np.ndarray:
    """float64 compensated values of one channel for the events ``rows`` (e.g. the gated monocytes).

    The same numbers as ``compensate(events, spill).column(channel)[rows]`` but
    in double precision, as the Gating-ML engine computes them, and touching only
    the listed rows and the columns that spill into ``channel``: a template run
    never compensates the whole matrix. ``rows=None``: every event, in order
    (no index array); ``compensated_channel(ev, s, c, None)[rows]`` equals
    ``compensated_channel(ev, s, c, rows)`` bit for bit. ``threads``: as in
    ``gatingml.evaluate`` (slices of ``rows`` gathered at once; same result).

    Raises
    ------
    CompensationError
        As :func:`compensate`.
    KeyError
        ``channel`` is not in the file.
    """
    col = events.index(channel)
    cols, weights = np.array([col], dtype=np.int64), np.ones(1)
    inv = _inverse(events, spill)
    if inv is not None and channel in spill.channels:
        j = spill.channels.index(channel)
        nz = np.flatnonzero(inv[:, j])
        cols = np.array([events.index(spill.channels[a]) for a in nz], dtype=np.int64)
        weights = np.ascontiguousarray(inv[nz, j], dtype=np.float64)
    data = events.data
    if rows is None:
        out = np.empty(data.shape[0], dtype=np.float64)
        map_slices(lambda lo, hi: _kernels.weighted_sum_all(data[lo:hi], cols, weights, out[lo:hi]),
                   data.shape[0], thread_count(data.shape[0], threads))
        return out
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    # a large tube's rows are far apart in memory: gathering them waits on memory, so slices overlap the waits
    parts = map_slices(lambda lo, hi: _kernels.weighted_sum_rows(data, rows[lo:hi], cols, weights),
                       len(rows), thread_count(data.shape[0], threads))
    return parts[0][2] if len(parts) == 1 else np.concatenate([p for _, _, p in parts])
