"""Per-event PE -> antibodies bound per cell (AB/C); the monocyte summary.

Calling contract: ``summarise_monocytes(pe, curve)`` takes the compensated
PE values of the gated monocytes and a ``BeadCurve`` and returns a frozen
``HladrSummary`` (median AB/C, geometric mean, counts, flags).

Notes
-----
``AB/C = 10**(intercept + slope*log10(PE))`` for PE > 0 (QuantiBRITE: one PE per
antibody): the bead curve as :func:`hladr.beads.calibrate.apply_bead_curve` applies it
(``BeadCurve.pe_molecules``; the summary runs the same compiled kernel over the monocytes).
The sample value is the median AB/C over gated monocytes; events with
PE <= 0 rank lowest (AB/C 0) and are counted (``n_nonpositive``), never dropped.
The geometric mean is over positive values. A median PE below the lowest or above
the highest bead level used in the fit is an extrapolation and is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _kernels
from ._stats import MAD_TO_SD, mad
from .beads.calibrate import BeadCurve

__all__ = ["HladrSummary", "summarise_monocytes"]


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


def summarise_monocytes(pe: np.ndarray, curve: BeadCurve) -> HladrSummary:
    """Median and geometric-mean AB/C of the gated monocytes, with extrapolation flags."""
    pe = np.ascontiguousarray(pe, dtype=np.float64)
    n = int(pe.size)
    if n == 0:
        return HladrSummary(0, 0, None, None, None, None, ("no_monocytes",))
    med_abc, geo_abc, npos = _kernels.abc_summary(pe, curve.intercept, curve.slope)
    med_pe = float(np.median(pe))
    mad_pe = float(mad(pe, med_pe))
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
        rcv_pct=100.0 * MAD_TO_SD * mad_pe / med_pe if med_pe > 0 else None,
        flags=tuple(flags),
    )
