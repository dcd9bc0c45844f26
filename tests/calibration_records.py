"""Typed calibrations built by hand, for the tests of the results store and the calibration history.

The store keeps ``Calibration`` records; these tests need many with chosen slopes, MFIs,
dates and instruments, and some with text no lot file would pass (control characters in
a lot id, to prove the history prints none), so they are built from their parts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from hladr.beads.calibrate import BeadCurve, BeadLevel
from hladr.beads.lots import LEVEL_NAMES, Lot
from hladr.beads.record import AcquisitionSettings, Calibration

PE = (638.0, 6930.0, 31008.0, 67601.0)


def make_calibration(
    n: int,
    *,
    date: str | None = "20-NOV-2026",
    serial: str | None = "V33896202",
    instrument: str | None = "FACSCanto II",
    lot: str = "96597",
    slope: float = 1.01,
    intercept: float = -0.31,
    mfi: Sequence[float] = (1200.0, 12800.0, 56500.0, 122000.0),
    accepted: bool = True,
) -> Calibration:
    """A calibration whose bead file is number ``n`` of instrument ``serial`` (its id follows from both and the lot)."""
    levels = tuple(
        BeadLevel(name, pe, float(m), 2000 + k, (5.0 + k) / 100.0, False, True, fitted_pe=pe, residual_pct=0.1 * k)
        for k, (name, pe, m) in enumerate(zip(LEVEL_NAMES, PE, mfi, strict=True))
    )
    curve = BeadCurve(slope=slope, intercept=intercept, r2=0.9999, levels=levels, accepted=accepted, flags=(),
                      reasons=() if accepted else ("slope out of range",), pe_channel="PE-A", singlets=8000,
                      events=10000)
    settings = AcquisitionSettings(instrument=instrument, serial=serial, pe_channel="PE-A", pe_voltage="520",
                                   pe_gain="1", date=date, spillover=None)
    sha = hashlib.sha256(f"{serial}|{n}".encode()).hexdigest()
    return Calibration(curve=curve, lot=Lot(id=lot, product="BD QuantiBRITE PE", pe_per_bead=PE), settings=settings,
                       inputs=((f"beads_{n}.fcs", sha),), software_version="0.1.0")
