"""Exception types of hladr.

Bad input raises one of these; a fit that the data do not support is *not* an
exception but a falsy result (see :class:`hladr.beads.calibrate.FitFailure`). Every message is one
line that names the file or parameter at fault and, where possible, what to do.
"""

from __future__ import annotations

__all__ = [
    "HladrError",
    "ReadError",
    "ChannelError",
    "CompensationError",
    "GateError",
    "CalibrationError",
    "LotError",
    "ConfigError",
    "StoreError",
    "StoreBusyError",
]


class HladrError(Exception):
    """Base class of every error hladr raises on purpose."""


class ReadError(HladrError):
    """An FCS file cannot be read (missing, truncated, malformed)."""


class ChannelError(HladrError):
    """A channel the analysis needs (CD14, HLA-DR, scatter, ...) is not in the file."""


class CompensationError(HladrError):
    """The spillover matrix cannot be used with this file (a channel it lists is missing, or it is singular)."""


class GateError(HladrError):
    """A gate cannot be applied (wrong shape, unknown channel, bad template)."""


class CalibrationError(HladrError):
    """A calibration record or bead file cannot be used."""


class LotError(HladrError):
    """A QuantiBRITE lot is unknown or its file is invalid."""


class ConfigError(HladrError):
    """A configuration, worklist or rule table is invalid."""


class StoreError(HladrError):
    """The results store cannot be opened, read or written."""


class StoreBusyError(StoreError):
    """The results store stayed locked by another process for the whole wait (``$HLADR_STORE_WAIT``)."""
