"""QuantiBRITE lot files -> validated ``Lot``.

Lot values are data: one TOML file per lot in the top-level ``calibration/``
folder (shipped inside the package) and in a user lot folder (``$HLADR_LOTS`` or
``~/.config/hladr/lots``)::

    [lot]
    id = "96597"
    product = "BD QuantiBRITE PE"
    pe_per_bead = [638, 6930, 31008, 67601]   # low, med-low, med-high, high
"""

from __future__ import annotations

import datetime as _dt
import os
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import LotError

__all__ = ["Lot", "LEVEL_NAMES", "read_lot_file", "find_lot", "lot_folders", "parse_lot"]

LEVEL_NAMES = ("low", "med-low", "med-high", "high")


@dataclass(frozen=True)
class Lot:
    """One bead lot: four certified PE molecules per bead, low to high."""

    id: str
    product: str
    pe_per_bead: tuple[float, float, float, float]
    expiry: _dt.date | None = None
    source: str = ""
    path: str = ""

    def to_dict(self) -> dict:
        """Plain record for results and calibration files."""
        return {
            "id": self.id,
            "product": self.product,
            "pe_per_bead": list(self.pe_per_bead),
            "expiry": self.expiry.isoformat() if self.expiry else None,
            "source": self.source,
            "path": self.path,
        }


def parse_lot(table: dict, *, where: str) -> Lot:
    """Validate the ``[lot]`` table of a lot file (four positive increasing values)."""
    lot = table.get("lot")
    if not isinstance(lot, dict):
        raise LotError(f"{where}: no [lot] table")
    lot_id = str(lot.get("id", "")).strip()
    if not lot_id:
        raise LotError(f"{where}: [lot] id is missing")
    values = lot.get("pe_per_bead")
    if not isinstance(values, list) or len(values) != 4:
        raise LotError(f"{where}: pe_per_bead must list four values (low, med-low, med-high, high)")
    try:
        pe = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise LotError(f"{where}: pe_per_bead values must be numbers, got {values}") from None
    if any(v <= 0 for v in pe) or any(b <= a for a, b in zip(pe, pe[1:], strict=False)):
        raise LotError(f"{where}: pe_per_bead must be four positive increasing values, got {values}")
    expiry = lot.get("expiry")
    if expiry is not None and not isinstance(expiry, _dt.date):
        try:
            expiry = _dt.date.fromisoformat(str(expiry))
        except ValueError:
            raise LotError(f"{where}: expiry {expiry!r} is not a date (YYYY-MM-DD)") from None
    return Lot(
        id=lot_id,
        product=str(lot.get("product", "BD QuantiBRITE PE")),
        pe_per_bead=pe,  # type: ignore[arg-type]
        expiry=expiry,
        source=str(lot.get("source", "")),
        path=where,
    )


def read_lot_file(path: str | os.PathLike) -> Lot:
    """Read and validate a lot TOML file (``--lot-file``)."""
    p = Path(path)
    try:
        table = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LotError(f"{p}: lot file not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LotError(f"{p}: lot file is not valid TOML ({exc})") from None
    return parse_lot(table, where=str(p))


def lot_folders() -> list[Path]:
    """Folders searched for ``--lot ID``: bundled first, then the user's."""
    folders: list[Path] = []
    bundled = resources.files("hladr").joinpath("calibration")
    if bundled.is_dir():
        folders.append(Path(str(bundled)))
    else:  # running from a source checkout (editable install): top-level calibration/
        repo = Path(__file__).resolve().parents[2] / "calibration"
        if repo.is_dir():
            folders.append(repo)
    user = os.environ.get("HLADR_LOTS") or str(Path.home() / ".config" / "hladr" / "lots")
    if Path(user).is_dir():
        folders.append(Path(user))
    return folders


def find_lot(lot_id: str) -> Lot:
    """Find a lot by id in the lot folders."""
    seen = []
    for folder in lot_folders():
        for f in sorted(folder.glob("*.toml")):
            lot = read_lot_file(f)
            seen.append(lot.id)
            if lot.id == lot_id:
                return lot
    known = ", ".join(seen) or "none"
    raise LotError(f"unknown bead lot {lot_id!r} (known lots: {known}); use --lot-file FILE")
