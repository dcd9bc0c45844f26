"""The worklist CSV: read it strictly, or refuse it with one line naming the row.

A worklist decides which files are read and what is written next to their
results, so it is checked before any work starts (``hladr run`` exits 2):

- text: UTF-8 (with or without BOM), no NUL bytes, at most ``MAX_WORKLIST_BYTES``;
  UTF-16 ("Unicode text" from Excel) is refused with what to do;
- layout: a header row with ``file`` and ``role``, cells separated by ``,``,
  ``;`` or tab (the separator that gives both names), standard CSV quoting
  (a broken quote is refused, not read as one huge cell), no cell longer than
  the csv module's limit (131,072 characters), no row with more filled cells
  than the header;
- header: no duplicate names (case- and space-insensitive), no unnamed column
  holding values, no control characters, and no name of a column hladr itself
  writes (``sha256``, ``qc``, ``hladr_abc``, ...): input must never stand in
  for a result or its provenance;
- rows: ``role`` is ``beads`` or ``sample``, ``file`` is given, each file is
  listed once (the same tube twice would be two results for one tube), and,
  when the run folder is given, every ``file`` and ``gates`` path lies inside
  it after resolving ``..`` and symlinks (unless ``allow_outside``).

Two tubes may share a ``sample_id`` (a repeated acquisition of one sample); that
is not refused here: :mod:`hladr.batch.checks` flags both results ``duplicate_sample_id``.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from ..errors import ConfigError
from ..safe_text import printable

__all__ = [
    "read_worklist",
    "tube_path",
    "inside",
    "SPEC_RESULT_COLUMNS",
    "PROVENANCE_COLUMNS",
    "WORKLIST_COLUMNS",
    "RESERVED_COLUMNS",
    "RUN_ID_COLUMN",
    "MAX_WORKLIST_BYTES",
]

# results.csv: the SPEC.md section 5 columns, then provenance, the worklist's extra columns, then run_id
SPEC_RESULT_COLUMNS = (
    "sample_id", "subject_id", "visit", "file", "monocyte_count", "hladr_abc",
    "hladr_abc_geomean", "ferritin_ng_ml", "phenotype", "qc", "flags",
)
PROVENANCE_COLUMNS = ("qc_reasons", "sha256", "calibration_id", "ruleset", "software_version")
# the id shared by every file of one output set: results.csv's last column (after the extra columns)
RUN_ID_COLUMN = "run_id"
WORKLIST_COLUMNS = ("file", "role", "sample_id", "subject_id", "visit", "ferritin", "ferritin_unit", "gates")
# output columns that only hladr fills: a worklist column of that name would shadow or forge them
RESERVED_COLUMNS = tuple(c for c in (*SPEC_RESULT_COLUMNS, *PROVENANCE_COLUMNS, RUN_ID_COLUMN)
                         if c not in WORKLIST_COLUMNS)
MAX_WORKLIST_BYTES = 16 * 2**20  # a day's worklist is a few kB; a larger file is not a worklist
_DELIMITERS = (",", ";", "\t")


def _refuse(where: str, what: str, line: int | None = None) -> ConfigError:
    at = f" line {line}" if line else ""
    return ConfigError(f"{printable(where)}{at}: {what}")


def _text_of(p: Path) -> str:
    """The worklist's text, or a refusal saying what the file is instead."""
    where = str(p)
    try:
        if p.stat().st_size > MAX_WORKLIST_BYTES:
            raise _refuse(where, f"worklist is larger than {MAX_WORKLIST_BYTES // 2**20} MiB: not a worklist")
        data = p.read_bytes()
    except FileNotFoundError:
        raise _refuse(where, "worklist not found") from None
    except IsADirectoryError:
        raise _refuse(where, "worklist is a folder, not a CSV file") from None
    except OSError as exc:
        raise _refuse(where, f"worklist cannot be read ({exc.strerror or type(exc).__name__})") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _refuse(where, "worklist is UTF-16 text; save it as 'CSV UTF-8' and try again")
    if b"\x00" in data:
        raise _refuse(where, "worklist contains NUL bytes (a binary file?); save it as 'CSV UTF-8'")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _refuse(where, f"worklist is not UTF-8 text (invalid byte at offset {exc.start}); "
                             "save it as 'CSV UTF-8'") from None
    if not text.strip():
        raise _refuse(where, "worklist is empty (expected a header row with 'file' and 'role')")
    return text


def _records(text: str, delimiter: str, where: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every CSV record; a broken quote or a huge cell is refused."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"',
                        doublequote=True, skipinitialspace=False, strict=True)
    out = []
    try:
        for cells in reader:
            out.append((reader.line_num, cells))
    except csv.Error as exc:
        line = reader.line_num
        why = (f"a cell is longer than {csv.field_size_limit():,} characters" if "field larger" in str(exc)
               else f"not valid CSV ({exc}); check the quotes")
        raise _refuse(where, why, line) from None
    return out


def _norm(name: str) -> str:
    return name.strip().lower()


def _header_and_rows(text: str, where: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Pick the separator whose first record names both ``file`` and ``role``; parse with it."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    candidates = [d for d in _DELIMITERS if d in first] or [","]
    error: ConfigError | None = None
    for d in candidates:
        try:
            records = _records(text, d, where)
        except ConfigError as exc:
            error = error or exc
            continue
        records = [(n, c) for n, c in records if any(x.strip() for x in c)]
        if records and {"file", "role"} <= {_norm(h) for h in records[0][1]}:
            return records[0][1], records[1:]
    if error is not None:
        raise error
    raise _refuse(where, "worklist has no 'file' and 'role' columns in its first row "
                         "(columns separated by ',', ';' or tab)")


def _check_header(raw: list[str], body: list[tuple[int, list[str]]], where: str) -> list[str | None]:
    """Normalised column names (None: an unnamed, empty column that is ignored)."""
    names: list[str | None] = []
    seen: dict[str, int] = {}
    for i, h in enumerate(raw):
        name = _norm(h)
        if not name:
            if any(i < len(cells) and cells[i].strip() for _, cells in body):
                raise _refuse(where, f"column {i + 1} has no name in the header but holds values; name it", 1)
            names.append(None)
            continue
        if printable(name) != name:
            raise _refuse(where, f"column name {printable(name)!r} contains control characters", 1)
        if name in seen:
            raise _refuse(where, f"column {name!r} appears twice in the header (columns {seen[name] + 1} "
                                 f"and {i + 1}); keep one", 1)
        if name in RESERVED_COLUMNS:
            raise _refuse(where, f"column {name!r} is written by hladr itself; rename it "
                                 f"(e.g. 'worklist_{name}') so it cannot stand in for the result", 1)
        seen[name] = i
        names.append(name)
    return names


def inside(run_dir: Path, path: Path) -> bool:
    """True when ``path`` (``..`` and symlinks resolved) lies inside ``run_dir`` (resolved too)."""
    try:
        return path.resolve().is_relative_to(run_dir.resolve())
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL in the name
        return False


def tube_path(run_dir: Path, name: str, *, allow_outside: bool = False, where: str = "worklist",
              line: int | None = None, column: str = "file") -> Path:
    """The file a worklist names, checked to lie inside the run folder (SPEC.md §5: "name inside RUN_DIR")."""
    p = Path(name)
    path = p if p.is_absolute() else run_dir / p
    if not allow_outside and (p.is_absolute() or not inside(run_dir, path)):
        raise _refuse(where, f"{column} {printable(name)!r} is outside the run folder {printable(run_dir)}; "
                             "only files inside it are read (or use --allow-outside-run-dir)", line)
    return path


def read_worklist(path: str | os.PathLike, *, run_dir: str | os.PathLike | None = None,
                  allow_outside: bool = False) -> list[dict[str, str]]:
    """Rows of a worklist CSV (header row; columns in any order; extra columns kept).

    Parameters
    ----------
    path : path
        The worklist CSV.
    run_dir : path, optional
        When given, every ``file`` and ``gates`` must lie inside it (after
        resolving ``..`` and symlinks) unless ``allow_outside``.
    allow_outside : bool
        Allow files outside ``run_dir`` (``hladr run --allow-outside-run-dir``).

    Returns
    -------
    list of dict
        One per non-empty row: lower-case column name -> stripped cell text;
        ``role`` is ``beads`` or ``sample``.

    Raises
    ------
    ConfigError
        One line naming the file, the line and what to change (see the module docstring).
    """
    p = Path(path)
    where = str(p)
    text = _text_of(p)
    raw_header, body = _header_and_rows(text, where)
    names = _check_header(raw_header, body, where)
    rd = Path(run_dir) if run_dir is not None else None
    rows: list[dict[str, str]] = []
    files: dict[str, int] = {}
    for n, cells in body:
        if len(cells) > len(names) and any(c.strip() for c in cells[len(names):]):
            raise _refuse(where, f"this row has {len(cells)} cells but the header names {len(names)} columns", n)
        row = {name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(names) if name}
        role = row.get("role", "").lower()
        if role not in ("beads", "sample"):
            raise _refuse(where, f"role must be 'beads' or 'sample', not {printable(row.get('role', ''))!r}", n)
        row["role"] = role
        if not row.get("file"):
            raise _refuse(where, "the 'file' column is empty", n)
        key = row["file"]
        if rd is not None:
            tube = tube_path(rd, row["file"], allow_outside=allow_outside, where=where, line=n)
            if row.get("gates"):
                tube_path(rd, row["gates"], allow_outside=allow_outside, where=where, line=n, column="gates")
            key = os.path.normcase(str(tube.resolve()))
        if key in files:
            raise _refuse(where, f"file {printable(row['file'])!r} is already listed on line {files[key]}; "
                                 "list each tube once", n)
        files[key] = n
        rows.append(row)
    return rows
