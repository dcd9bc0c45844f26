"""A tube's data types: the event matrix of one FCS dataset with its metadata, and its spillover.

``Events`` is what every core stage passes along: an (N, D) float32 array whose
columns are the file's channels in file order, plus the channel names, the TEXT
keywords and the SHA-256 of the file it came from. It is frozen; stages that
transform values (compensation) return a new ``Events``. The one exception is
:meth:`Events.hand_over`: in-place compensation of a large tube takes the matrix
to overwrite it, and the ``Events`` it came from is then spent (reading its
``data`` raises), so that no one reads compensated values believing them raw.

``Spillover`` is the file's spillover matrix over named channels (read from the
keywords by :func:`hladr.fcs.read.spillover_of`, applied by :mod:`hladr.compensate`).

Keyword keys are normalised to lower case without the leading ``$``
(``"cyt"``, ``"p1n"``, ``"spillover"``), the convention of flowio.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

__all__ = ["Events", "Spillover", "parse_fcs_date"]


@dataclass(frozen=True, eq=False)
class Events:
    """Events of one dataset of one FCS file.

    Parameters
    ----------
    data : (N, D) float32 ndarray
        Channel values after $PnE log decoding and $PnG gain (linear scale).
    pnn, pns : tuple of str
        $PnN and $PnS of each column ("" when $PnS is absent).
    pnr : tuple of float
        Upper limit of each column on the same scale as ``data`` (the decoded
        $PnR), used for saturation checks.
    keywords : mapping of str to str
        TEXT keywords, keys lower case without ``$``.
    path : str
        The file the events were read from.
    sha256 : str
        SHA-256 of the whole file, hex. The reader may still be computing it in
        a background thread (large files, see :mod:`hladr.fcs.read`): reading the
        attribute then waits for it, and raises the reader's ``ReadError`` if the
        file changed while it was read. ``with_data`` keeps it pending.
    dataset : int
        Which dataset of the file (1-based).
    n_datasets : int
        How many datasets the file holds.
    quirks : tuple of str
        Deviations from the FCS standard that the reader tolerated.
    compensated : tuple of str
        Channels (``pnn``) that have been compensated.
    """

    data: np.ndarray
    pnn: tuple[str, ...]
    pns: tuple[str, ...]
    pnr: tuple[float, ...]
    keywords: Mapping[str, str]
    path: str = ""
    sha256: str = ""  # a property, installed below: may be a PendingDigest until read
    dataset: int = 1
    n_datasets: int = 1
    quirks: tuple[str, ...] = ()
    compensated: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.data.ndim != 2 or self.data.shape[1] != len(self.pnn):
            raise ValueError(
                f"data has shape {self.data.shape} but {len(self.pnn)} channel names were given"
            )
        if len(self.pns) != len(self.pnn) or len(self.pnr) != len(self.pnn):
            raise ValueError("pnn, pns and pnr must have one entry per column")

    @property
    def n_events(self) -> int:
        """Number of events (rows)."""
        return int(self.data.shape[0])

    def index(self, pnn: str) -> int:
        """Column index of channel ``pnn`` (exact $PnN)."""
        try:
            return self.pnn.index(pnn)
        except ValueError:
            raise KeyError(f"channel {pnn!r} not in {list(self.pnn)}") from None

    def column(self, pnn: str) -> np.ndarray:
        """Values of channel ``pnn`` as a contiguous float32 vector."""
        return np.ascontiguousarray(self.data[:, self.index(pnn)])

    def upper_limit(self, pnn: str) -> float:
        """Decoded $PnR of channel ``pnn`` (the saturation level)."""
        return float(self.pnr[self.index(pnn)])

    def keyword(self, name: str, default: str | None = None) -> str | None:
        """A TEXT keyword by name, with or without ``$``, any case; stripped."""
        value = self.keywords.get(name.lower().lstrip("$"))
        return default if value is None else str(value).strip()

    def with_data(self, data: np.ndarray, **changes) -> Events:
        """A copy with new values (same channels), e.g. after compensation."""
        changes.setdefault("sha256", self.__dict__["_sha256"])  # a digest still being computed stays so
        return replace(self, data=data, **changes)

    def hand_over(self) -> np.ndarray:
        """The event matrix, handed over to be overwritten: these ``Events`` are spent.

        For in-place compensation of a large tube (no second copy of the matrix,
        :func:`hladr.compensate.compensate`): the caller writes new values into the
        returned array and wraps it in new ``Events`` (:meth:`with_data`). From then
        on, reading ``data`` of these ``Events`` raises ``RuntimeError`` instead of
        giving values that are no longer the file's; their keywords, channels and
        SHA-256 stay readable (they are still true).
        """
        data = self.data
        self.__dict__["_spent"] = True  # the one change of a frozen instance: live -> spent, never back
        return data

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_sha256"] = self.sha256  # a pending digest cannot cross a process boundary
        return state


class PendingDigest(Protocol):
    """A file's SHA-256 still being computed: ``result()`` waits for it (hex) or raises ``ReadError``."""

    def result(self) -> str: ...


def _get_sha256(self: Events) -> str:
    value = self.__dict__["_sha256"]
    if not isinstance(value, str):
        value = value.result()
        self.__dict__["_sha256"] = value  # a cache on a frozen instance: the value never changes
    return value


def _set_sha256(self: Events, value: str | PendingDigest) -> None:
    self.__dict__["_sha256"] = value


def _get_data(self: Events) -> np.ndarray:
    if self.__dict__.get("_spent"):
        raise RuntimeError(f"{self.path or 'events'}: this event matrix was handed over and overwritten "
                           "(in-place compensation); use the Events that compensate returned")
    return self.__dict__["_data"]


def _set_data(self: Events, value: np.ndarray) -> None:
    self.__dict__["_data"] = value


# Installed after @dataclass so that ``sha256`` and ``data`` stay ordinary constructor fields
# (``Events(..., sha256=...)``) while reading ``sha256`` may wait for a background digest and
# reading ``data`` of spent Events (:meth:`Events.hand_over`) raises.
Events.sha256 = property(_get_sha256, _set_sha256, doc="SHA-256 of the whole file, hex (waits if pending).")  # type: ignore[assignment,method-assign]
Events.data = property(_get_data, _set_data, doc="(N, D) float32 event matrix (raises once handed over).")  # type: ignore[assignment,method-assign]


@dataclass(frozen=True, eq=False)
class Spillover:
    """A spillover matrix over named channels.

    ``channels`` are $PnN names; ``matrix`` is (k, k) float64 with the spilling channel in
    rows and the detector in columns (FCS $SPILLOVER), diagonal 1.
    """

    channels: tuple[str, ...]
    matrix: np.ndarray

    def to_dict(self) -> dict:
        return {"channels": list(self.channels), "matrix": self.matrix.round(6).tolist()}

    def is_identity(self) -> bool:
        """An identity matrix: compensating changes nothing."""
        return bool(np.allclose(self.matrix, np.eye(len(self.channels))))

    def same_as(self, other: Spillover | None, *, tol: float = 1e-4) -> bool:
        """Same channels and values (within ``tol``): beads and samples must agree."""
        if other is None:
            return False
        return self.channels == other.channels and bool(
            np.allclose(self.matrix, other.matrix, atol=tol, rtol=0)
        )


_DATE_FORMATS = ("%d-%b-%Y", "%d-%b-%y", "%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d", "%d-%m-%Y")


def parse_fcs_date(text: str | None) -> _dt.date | None:
    """$DATE as a ``datetime.date`` (FCS 3.x 'dd-mmm-yyyy', FCS 2.0 'dd-mmm-yy', ISO, ...); None if unknown.

    Slash dates are read day-first; a text that is valid both ways (03/04/2026) is ambiguous and
    gives None rather than a guess.
    """
    if not text:
        return None
    t = text.strip()
    found = set()
    for fmt in _DATE_FORMATS:
        try:
            found.add(_dt.datetime.strptime(t.title() if "%b" in fmt else t, fmt).date())
        except ValueError:
            continue
    return found.pop() if len(found) == 1 else None
