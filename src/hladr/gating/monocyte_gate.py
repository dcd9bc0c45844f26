"""The fitted monocyte gate as a record, and its application to every event of a tube.

Calling contract: :func:`hladr.gating.automated.fit_monocyte_gate` returns a frozen
:class:`MonocyteGate` (plain numbers: scatter ranges, a singlet band, a CD45 threshold and a
Gaussian mixture whose monocyte components define the gate) or a falsy :class:`GateFailure`;
``gate.apply(events)`` evaluates the gate on every event with one fused Numba pass
(:func:`hladr.gating._kernels.monocyte_chain`) and returns a :class:`GateResult` (final mask
and the events kept by each step). ``to_dict()`` of either is the plain record stored with
each result; ``MonocyteGate.from_dict(record, panel)`` rebuilds the gate from that record
(``hladr gates export`` re-applies a stored result's gate to its tube).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._parallel import map_slices, thread_count
from ..channels import Panel
from ..errors import GateError
from ..events import Events
from . import _kernels

__all__ = ["MonocyteGate", "GateFailure", "GateResult", "monocyte_box"]


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

    @classmethod
    def from_dict(cls, record: dict, panel: Panel) -> MonocyteGate:
        """The gate a result's record (``to_dict()``) describes, for the tube whose channels are ``panel``.

        The raw-scale box around the monocyte components is not in the record: it is computed
        again from the mixture (:func:`monocyte_box`, with the covariances as the inverses of the
        precisions). Whoever re-applies the gate checks its count against the stored one.

        Raises
        ------
        GateError
            The record is not that of a fitted automated gate (a template's, a failed gate's, or
            one with missing or malformed fields); one line.
        """
        if record.get("method") != "mixture" or record.get("failed") or "mixture" not in record:
            raise GateError("the result's gate record is not that of a fitted automated gate")
        try:
            mix = record["mixture"]
            cof = tuple(float(c) for c in record["cofactors"])
            means = np.asarray(mix["means"], dtype=np.float64)
            precisions = np.asarray(mix["precisions"], dtype=np.float64)
            is_mono = np.asarray(mix["monocyte_components"], dtype=bool)
            d2max = float(mix["d2max"])
            covariances = np.linalg.inv(precisions)
            sing = record["singlet_range"]
            return cls(
                panel=panel,
                fsc_range=_range(record["fsc_range"]),
                ssc_range=_range(record["ssc_range"]),
                singlet_channel=record["singlet_channel"],
                singlet_is_ratio=bool(record["singlet_is_ratio"]),
                singlet_range=_range(sing) if sing is not None else (-np.inf, np.inf),
                cd45_min=None if record["cd45_min"] is None else float(record["cd45_min"]),
                features=tuple(str(f) for f in record["features"]),
                cofactors=cof,
                means=means,
                precisions=precisions,
                log_norm=np.asarray(mix["log_norm"], dtype=np.float64),
                is_monocyte=is_mono,
                d2max=d2max,
                odds=float(mix["odds"]),
                box=monocyte_box(means, covariances, is_mono, d2max, cof),
                checks=dict(record.get("checks") or {}),
                populations=tuple(record.get("populations") or ()),
            )
        except (KeyError, TypeError, ValueError, IndexError, np.linalg.LinAlgError) as exc:
            raise GateError(f"the result's gate record is incomplete or malformed ({exc!r})") from None

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


def _range(pair: list) -> tuple[float, float]:
    """A record's [low, high] back to a range: None (no limit) becomes an infinity."""
    lo, hi = pair
    return (-np.inf if lo is None else float(lo), np.inf if hi is None else float(hi))


def monocyte_box(
    means: np.ndarray, covariances: np.ndarray, is_mono: np.ndarray, d2max: float, cof: tuple[float, ...],
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Raw-scale box holding every point within ``d2max`` of a monocyte component (per feature,
    ``cofactor * sinh(mean -/+ sqrt(d2max * variance))``, the upper side one ulp up)."""
    half = np.sqrt(d2max * np.diagonal(covariances[is_mono], axis1=1, axis2=2))
    lo = (means[is_mono] - half).min(axis=0)
    hi = (means[is_mono] + half).max(axis=0)
    c = np.asarray(cof)
    return tuple(float(v) for v in np.sinh(lo) * c), tuple(float(v) for v in np.nextafter(np.sinh(hi) * c, np.inf))
