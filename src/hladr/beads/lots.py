"""QuantiBRITE lot files -> validated ``Lot``.

Lot values are data: one TOML file per lot in the top-level ``calibration/``
folder (shipped inside the package) and in a user lot folder (``$HLADR_LOTS`` or
``~/.config/hladr/lots``)::

    [lot]
    id = "96597"
    product = "BD QuantiBRITE PE"
    pe_per_bead = [638, 6930, 31008, 67601]   # low, med-low, med-high, high
    expiry = 2027-03-31     # optional: last day of use, from the lot certificate
    source = "..."          # optional: where the values come from (certificate)

(The bundled 96597 file states no expiry: the published values carry no
certificate date.)

``list_lots()`` lists every lot file; ``add_lot(file)`` validates a lot file and
copies it into the user lot folder (``hladr lots add``); ``resolve_lot(...)`` chooses the
lot of a calibration from what the user named (``--lot-file``, ``--lot``, the worklist). ``Lot.expired(on)``
tells whether a lot is past its expiry date on a given day; the caller decides
whether that is a warning or a failure.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import re
import tomllib
import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .._atomic import write_atomic
from ..errors import LotError

__all__ = [
    "Lot",
    "LEVEL_NAMES",
    "read_lot_file",
    "find_lot",
    "resolve_lot",
    "lot_folders",
    "parse_lot",
    "list_lots",
    "add_lot",
    "user_lot_folder",
    "format_lot",
    "format_lot_table",
]

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

    def expired(self, on: _dt.date) -> bool:
        """True when the lot is past its expiry date on day ``on``.

        The expiry date is the last day the lot may be used (``on == expiry`` is
        not expired). A lot without a stated expiry never expires.
        """
        return self.expiry is not None and on > self.expiry


_LOT_ID = re.compile(r"(?=.{1,64}$)[!-~]+(?: [!-~]+)*")  # printable ASCII, single inner spaces
MAX_LOT_FILE_BYTES = 64 * 1024  # a lot file is a few lines; a larger one is not a lot file


def _lot_id(value: object, where: str) -> str:
    """The lot id: text (or an integer) of printable ASCII characters, single spaces between them.

    Anything else is refused: a zero-width space, a Cyrillic or full-width digit or any
    other look-alike inside "96597" would make a second lot that prints like the first.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise LotError(f"{where}: [lot] id must be text such as \"96597\", not a {_kind(value)}")
    text = str(value).strip()
    if not text:
        raise LotError(f"{where}: [lot] id is missing")
    if not _LOT_ID.fullmatch(text):
        shown = text.encode("ascii", "backslashreplace").decode()[:80]
        raise LotError(f"{where}: [lot] id {shown!r} may hold only printable ASCII characters "
                       "and single spaces, at most 64 (no invisible or look-alike characters)")
    return text


def _kind(value: object) -> str:
    return {bool: "boolean", str: "text", int: "integer", float: "number", dict: "table", list: "list"}.get(
        type(value), type(value).__name__)


def _pe_values(values: object, where: str) -> tuple[float, float, float, float]:
    """Four finite, positive, increasing numbers (TOML integers or floats; not text, not booleans)."""
    if not isinstance(values, list) or len(values) != 4:
        raise LotError(f"{where}: pe_per_bead must list four values (low, med-low, med-high, high)")
    pe = []
    for name, v in zip(LEVEL_NAMES, values, strict=True):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise LotError(f"{where}: pe_per_bead values must be numbers (the {name} value is a {_kind(v)})")
        if not math.isfinite(v):
            raise LotError(f"{where}: pe_per_bead {name} is {v} (not a finite number)")
        pe.append(float(v))
    if any(v <= 0 for v in pe) or any(b <= a for a, b in zip(pe, pe[1:], strict=False)):
        shown = ", ".join(f"{v:g}" for v in pe)
        raise LotError(f"{where}: pe_per_bead must be four positive increasing values, got [{shown}]")
    return tuple(pe)  # type: ignore[return-value]


def _text_field(lot: dict, key: str, default: str, where: str) -> str:
    value = lot.get(key, default)
    if not isinstance(value, str):
        raise LotError(f"{where}: [lot] {key} must be text, not a {_kind(value)}")
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in value):
        raise LotError(f"{where}: [lot] {key} contains control or invisible characters")
    return value


def parse_lot(table: dict, *, where: str) -> Lot:
    """Validate the ``[lot]`` table of a lot file.

    Refused with a ``LotError`` naming the field: an id that is not plain ASCII text
    (see :func:`_lot_id`), ``pe_per_bead`` that is not four finite positive
    increasing numbers (NaN, inf, text and booleans included), a product or source
    that is not text, an expiry that is not a date.
    """
    lot = table.get("lot") if isinstance(table, dict) else None
    if not isinstance(lot, dict):
        raise LotError(f"{where}: no [lot] table")
    lot_id = _lot_id(lot.get("id", ""), where)
    pe = _pe_values(lot.get("pe_per_bead"), where)
    expiry = lot.get("expiry")
    if isinstance(expiry, _dt.datetime):  # TOML date-time: the day is what a certificate states
        expiry = expiry.date()
    if expiry is not None and not isinstance(expiry, _dt.date):
        if not isinstance(expiry, str):
            raise LotError(f"{where}: expiry is not a date (YYYY-MM-DD) but a {_kind(expiry)}")
        try:
            expiry = _dt.date.fromisoformat(expiry)
        except ValueError:
            raise LotError(f"{where}: expiry {expiry[:40]!r} is not a date (YYYY-MM-DD)") from None
    return Lot(
        id=lot_id,
        product=_text_field(lot, "product", "BD QuantiBRITE PE", where),
        pe_per_bead=pe,
        expiry=expiry,
        source=_text_field(lot, "source", "", where),
        path=where,
    )


def read_lot_file(path: str | os.PathLike) -> Lot:
    """Read and validate a lot TOML file (``--lot-file``)."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_LOT_FILE_BYTES:
            raise LotError(f"{p}: larger than {MAX_LOT_FILE_BYTES // 1024} KiB: not a lot file")
        table = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LotError(f"{p}: lot file not found") from None
    except UnicodeDecodeError:
        raise LotError(f"{p}: lot file is not UTF-8 text") from None
    except OSError as exc:
        raise LotError(f"{p}: lot file cannot be read ({exc.strerror or type(exc).__name__})") from None
    except tomllib.TOMLDecodeError as exc:
        raise LotError(f"{p}: lot file is not valid TOML ({exc})") from None
    except RecursionError:  # tomllib recurses per nesting level: a deeply nested file is not a lot file
        raise LotError(f"{p}: lot file is nested too deeply to be a lot file") from None
    return parse_lot(table, where=str(p))


def lot_folders() -> list[Path]:
    """Folders searched for ``--lot ID``: bundled first, then the user's."""
    folders: list[Path] = []
    bundled = resources.files("hladr").joinpath("calibration")
    if bundled.is_dir():
        folders.append(Path(str(bundled)))
    else:  # running from a source checkout (editable install): top-level calibration/
        repo = Path(__file__).resolve().parents[3] / "calibration"
        if repo.is_dir():
            folders.append(repo)
    user = user_lot_folder()
    if user.is_dir():
        folders.append(user)
    return folders


def user_lot_folder() -> Path:
    """The user lot folder: ``$HLADR_LOTS``, else ``~/.config/hladr/lots`` (may not exist yet)."""
    env = os.environ.get("HLADR_LOTS")
    return Path(env) if env else Path.home() / ".config" / "hladr" / "lots"


def list_lots() -> list[Lot]:
    """Every lot file in the lot folders, bundled first, each folder sorted by file name.

    Raises ``LotError`` naming the first invalid file (as ``find_lot`` would).
    """
    return [read_lot_file(f) for folder in lot_folders() for f in sorted(folder.glob("*.toml"))]


def add_lot(path: str | os.PathLike, *, folder: str | os.PathLike | None = None) -> Path:
    """Validate a lot file and copy it, unchanged, into the user lot folder.

    Parameters
    ----------
    path : path
        The lot TOML file (``[lot]`` with ``id``, ``pe_per_bead``, optional
        ``expiry``, ``product`` and ``source``).
    folder : path, optional
        Destination folder; :func:`user_lot_folder` when ``None``. Created when missing.

    Returns
    -------
    Path
        The new file, ``<folder>/<id>.toml``.

    Raises
    ------
    LotError
        The file is invalid (four positive increasing values, an id, an expiry
        that is a date), or a lot with the same id is already registered (bundled
        or user) or already in ``folder``.

    Notes
    -----
    The file is copied byte for byte (comments and the certificate reference
    stay), through a temporary file and a rename, so a failure leaves no half
    file behind.
    """
    lot = read_lot_file(path)
    dest_dir = Path(folder) if folder is not None else user_lot_folder()
    known = {k.id: k.path for k in list_lots()}
    if dest_dir.is_dir():
        known.update({k.id: k.path for k in (read_lot_file(f) for f in sorted(dest_dir.glob("*.toml")))})
    if lot.id in known:
        raise LotError(f"{path}: lot {lot.id!r} is already registered ({known[lot.id]}); lot ids must be unique")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", lot.id).strip("._") or "lot"
    dest = dest_dir / f"{name}.toml"
    if dest.exists():
        raise LotError(f"{path}: {dest} already exists; rename or remove it first")
    write_atomic(dest, Path(path).read_bytes(), mode=0o644)
    return dest


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


def resolve_lot(
    *, lot_id: str | None = None, lot_file: str | None = None, worklist_lot: str | None = None
) -> tuple[Lot, str | None]:
    """The bead lot of a calibration, and a note for the user when it was chosen without being named.

    In this order: the lot file given (``--lot-file``), the lot id given (``--lot``), the
    ``lot`` of the worklist's bead row, else the only registered lot (the note says so).

    Raises
    ------
    LotError
        An unknown id, an invalid lot file, or no lot named and not exactly one registered.
    """
    if lot_file:
        return read_lot_file(lot_file), None
    if lot_id:
        return find_lot(lot_id), None
    if worklist_lot:
        return find_lot(worklist_lot), None
    known = list_lots()
    if len(known) == 1:
        return known[0], f"no lot given: using the only registered lot {known[0].id}"
    ids = ", ".join(lot.id for lot in known) or "none"
    raise LotError(f"no bead lot given and several are registered ({ids}): use --lot ID or --lot-file FILE")


def _expiry_text(lot: Lot, today: _dt.date) -> str:
    if lot.expiry is None:
        return "not stated"
    days = (lot.expiry - today).days
    if lot.expired(today):
        return f"{lot.expiry.isoformat()} (EXPIRED {-days} day{'s' if days != -1 else ''} ago)"
    return f"{lot.expiry.isoformat()} (valid, {days} day{'s' if days != 1 else ''} left)"


def _folder_kind(lot: Lot) -> str:
    try:
        return "user" if Path(lot.path).resolve().parent == user_lot_folder().resolve() else "bundled"
    except OSError:
        return "?"


def format_lot(lot: Lot, *, today: _dt.date) -> str:
    """Text description of one lot (``hladr lots show``); expiry judged on ``today``."""
    values = ", ".join(f"{n} {v:,.0f}" for n, v in zip(LEVEL_NAMES, lot.pe_per_bead, strict=True))
    return "\n".join([
        f"lot {lot.id}",
        f"  product:     {lot.product}",
        f"  PE per bead: {values}",
        f"  expiry:      {_expiry_text(lot, today)}",
        f"  source:      {lot.source or 'not stated'}",
        f"  file:        {lot.path} ({_folder_kind(lot)})",
    ])


def format_lot_table(lots: list[Lot], *, today: _dt.date) -> str:
    """One line per lot (``hladr lots list``); expiry judged on ``today``."""
    lines = [f"{'id':<12} {'product':<20} {'PE per bead (low..high)':<28} {'expiry':<34} {'folder':<8} file"]
    for lot in lots:
        values = "/".join(f"{v:.0f}" for v in lot.pe_per_bead)
        lines.append(f"{lot.id:<12} {lot.product[:20]:<20} {values:<28} {_expiry_text(lot, today):<34} "
                     f"{_folder_kind(lot):<8} {lot.path}")
    return "\n".join(lines)
