"""Per-event PE -> antibodies bound per cell (AB/C); the monocyte summary.

Calling contract: ``pe_to_abc(pe, curve)`` gives the AB/C of each event;
``summarise_monocytes(pe, curve)`` takes the compensated PE values of the gated
monocytes and the run's ``BeadCurve`` and returns a frozen ``HladrSummary``
(median AB/C, geometric mean, median PE and its robust CV, counts, flags). Both
wrap the Numba kernels of :mod:`hladr._kernels`.

Notes
-----
``AB/C = 10**(intercept + slope*log10(PE))`` for PE > 0 (QuantiBRITE: one PE per
antibody). The sample value is the median AB/C over gated monocytes; events with
PE <= 0 rank lowest (AB/C 0) and are counted (``n_nonpositive``), never dropped.
The geometric mean is over positive values. A median PE below the lowest or above
the highest bead level used in the fit is an extrapolation and is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _kernels
from .beads.calibrate import BeadCurve

__all__ = ["HladrSummary", "summarise_monocytes", "pe_to_abc"]


@dataclass(frozen=True)
class HladrSummary:
    """HLA-DR of one tube's monocytes."""

    n_monocytes: int
    n_nonpositive: int
    median_pe: float | None
    hladr_abc: float | None
    hladr_abc_geomean: float | None
    rcv_pct: float | None
    flags: tuple[str, ...] = ()


def pe_to_abc(pe: np.ndarray, curve: BeadCurve) -> np.ndarray:
    """AB/C per event (float64); 0 where PE <= 0 or NaN.

    Parameters
    ----------
    pe : (N,) float ndarray
        Compensated PE of each event.
    curve : BeadCurve
        The accepted calibration.
    """
    pe = np.ascontiguousarray(pe, dtype=np.float64)
    if pe.ndim != 1:
        raise ValueError(f"pe must be 1-D, got shape {pe.shape}")
    return _kernels.abc_from_pe(pe, curve.intercept, curve.slope)


def summarise_monocytes(pe: np.ndarray, curve: BeadCurve) -> HladrSummary:
    """Median and geometric-mean AB/C of the gated monocytes, with extrapolation flags."""
    pe = np.ascontiguousarray(pe, dtype=np.float64)
    n = int(pe.size)
    if n == 0:
        return HladrSummary(0, 0, None, None, None, None, ("no_monocytes",))
    med_abc, geo_abc, npos = _kernels.abc_summary(pe, curve.intercept, curve.slope)
    med_pe = float(np.median(pe))
    mad = float(np.median(np.abs(pe - med_pe)))
    flags: list[str] = []
    lo, hi = curve.mfi_range
    if med_pe < lo:
        flags.append("extrapolated_below_low_bead")
    elif med_pe > hi:
        flags.append("extrapolated_above_high_bead")
    if not med_abc > 0:
        flags.append("hladr_not_measurable")
    return HladrSummary(
        n_monocytes=n,
        n_nonpositive=n - int(npos),
        median_pe=med_pe,
        hladr_abc=float(med_abc) if med_abc > 0 else None,
        hladr_abc_geomean=float(geo_abc) if np.isfinite(geo_abc) else None,
        rcv_pct=100.0 * 1.4826 * mad / med_pe if med_pe > 0 else None,
        flags=tuple(flags),
    )
