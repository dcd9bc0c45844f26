"""The fitted monocyte gate as a record, and its application to every event of a tube.

Calling contract: :func:`hladr.gating.automated.fit_monocyte_gate` returns a frozen
:class:`MonocyteGate` (plain numbers: scatter ranges, a singlet band, a CD45 threshold and a
Gaussian mixture whose monocyte components define the gate) or a falsy :class:`GateFailure`;
``gate.apply(events)`` evaluates the gate on every event with one fused Numba pass
(:func:`hladr.gating._kernels.monocyte_chain`) and returns a :class:`GateResult` (final mask
and the events kept by each step). ``to_dict()`` of either is the plain record stored with
each result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._parallel import map_slices, thread_count
from ..channels import Panel
from ..events import Events
from . import _kernels

__all__ = ["MonocyteGate", "GateFailure", "GateResult"]


@dataclass(frozen=True)
class GateFailure:
    """The data do not support a gate, or the gate failed its self-check (falsy); ``reason`` is one line."""

    code: str
    reason: str
    counts: dict = field(default_factory=dict)
    checks: dict = field(default_factory=dict)
    populations: tuple = ()
    flags: tuple[str, ...] = ()  # the panel's gating flags (no CD45, no singlet channel, ...)

    def __bool__(self) -> bool:
        return False

    def to_dict(self) -> dict:
        """Plain record of what the failed gate computed (stored with the result, as MonocyteGate.to_dict)."""
        return {"method": "mixture", "failed": self.code, "checks": dict(self.checks),
                "populations": list(self.populations)}


@dataclass(frozen=True)
class GateResult:
    """Outcome of applying a gate to a tube."""

    mask: np.ndarray
    counts: dict
    flags: tuple[str, ...] = ()

    @property
    def n_monocytes(self) -> int:
        return int(self.counts["monocytes"])


@dataclass(frozen=True, eq=False)
class MonocyteGate:
    """Fitted gate chain. Scatter, singlet and CD45 limits are on the tube's raw scale; the
    mixture lives in ``asinh(value / cofactor)`` of the ``features`` channels."""

    panel: Panel
    fsc_range: tuple[float, float]
    ssc_range: tuple[float, float]
    singlet_channel: str | None
    singlet_is_ratio: bool
    singlet_range: tuple[float, float]
    cd45_min: float | None
    features: tuple[str, ...]
    cofactors: tuple[float, ...]
    means: np.ndarray
    precisions: np.ndarray
    log_norm: np.ndarray
    is_monocyte: np.ndarray
    d2max: float
    odds: float
    box: tuple[tuple[float, ...], tuple[float, ...]]
    checks: dict = field(default_factory=dict)
    populations: tuple = ()
    flags: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return True

    @property
    def cof_cd14(self) -> float:
        return self.cofactors[0]

    @property
    def cof_ssc(self) -> float:
        return self.cofactors[1]

    def to_dict(self) -> dict:
        """Plain record of the fitted parameters and self-check figures (stored with each result).

        A side of a range without a limit (no pile-up at the top of a scatter channel; no
        singlet channel at all) is ``None``, not an infinity: the record is strict JSON.
        """
        return {
            "method": "mixture",
            "fsc_range": _limits(self.fsc_range),
            "ssc_range": _limits(self.ssc_range),
            "singlet_channel": self.singlet_channel,
            "singlet_is_ratio": self.singlet_is_ratio,
            "singlet_range": _limits(self.singlet_range) if self.singlet_channel else None,
            "cd45_min": self.cd45_min,
            "features": list(self.features),
            "cofactors": list(self.cofactors),
            "mixture": {"means": self.means.tolist(), "precisions": self.precisions.tolist(),
                        "log_norm": self.log_norm.tolist(), "monocyte_components": self.is_monocyte.tolist(),
                        "d2max": self.d2max, "odds": self.odds},
            "populations": list(self.populations),
            "checks": dict(self.checks),
        }

    def _args(self, events: Events) -> tuple:
        p = self.panel
        i_sing = events.index(self.singlet_channel) if self.singlet_channel else -1
        i_cd45 = events.index(p.cd45) if (p.cd45 and self.cd45_min is not None) else -1
        return (
            events.index(p.fsc_a), i_sing, events.index(p.ssc_a), i_cd45,
            np.array([events.index(c) for c in self.features], dtype=np.int64),
            self.fsc_range[0], self.fsc_range[1], self.ssc_range[0], self.ssc_range[1],
            self.singlet_range[0], self.singlet_range[1], self.singlet_is_ratio,
            self.cd45_min if self.cd45_min is not None else -np.inf,
            np.asarray(self.cofactors, dtype=np.float64),
            np.asarray(self.box[0], dtype=np.float64), np.asarray(self.box[1], dtype=np.float64),
            self.means, self.precisions, self.log_norm, self.is_monocyte, self.d2max, self.odds,
        )

    def apply(self, events: Events, *, reference: bool = False, threads: int | None = 1) -> GateResult:
        """Evaluate the chain on every event (``reference=True``: the NumPy twin).

        ``threads``: slices of rows evaluated at once by that many threads (None: by the cores this
        process may use and the number of events, as the template path; ``hladr._parallel``). Each
        event is judged on its own, so the merged result is that of one pass.
        """
        data = np.ascontiguousarray(events.data, dtype=np.float32)
        fn = _kernels.monocyte_chain_ref if reference else _kernels.monocyte_chain
        args = self._args(events)
        parts = map_slices(lambda lo, hi: fn(data[lo:hi], *args), data.shape[0],
                           1 if reference else thread_count(data.shape[0], threads))
        if len(parts) == 1:
            mask, c = parts[0][2]
        else:
            mask = np.concatenate([p[2][0] for p in parts])
            c = np.sum([p[2][1] for p in parts], axis=0)
        counts = {
            "events": events.n_events,
            "cells": int(c[0]),
            "singlets": int(c[1]),
            "leukocytes": int(c[2]) if self.cd45_min is not None else None,
            "monocytes": int(c[3]),
        }
        return GateResult(mask=np.asarray(mask, dtype=bool), counts=counts, flags=self.flags)


def _limits(pair: tuple[float, float]) -> list[float | None]:
    """A (low, high) range for a record: an infinite side (no limit there) becomes None."""
    return [float(v) if np.isfinite(v) else None for v in pair]
