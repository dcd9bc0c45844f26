"""The batch manifest (``hladr batch MANIFEST.csv``): its rows, the inputs' key, and the ledger of done runs.

A manifest is a CSV with a header row; each row is one run folder and where its outputs go:

==============  ======================================================================
``run_dir``     the run folder (required)
``out_dir``     its output folder (required; one per row)
``worklist``    the worklist CSV (default: ``RUN_DIR/worklist.csv`` when present)
``calibration`` an accepted calibration record instead of the folder's bead tube
``lot``         the bead lot id (``--lot``); ``lot_file``: a lot TOML (``--lot-file``)
``gates``       a Gating-ML 2.0 template replacing the automated gates (``--gates``)
==============  ======================================================================

Relative paths are taken from the manifest's folder; empty cells mean "not given".

A run's **key** is the SHA-256 of everything that decides its results: the SHA-256 of every
input file (the run folder's FCS files, the worklist and each file it names, the calibration
record, the lot file, the templates), the bead lot the run would use, the configuration's
digest, the rule table, the flag table's version and hladr's version. The **ledger**
(``<manifest name>.done.json`` beside the manifest, written atomically after each run) keeps,
per output folder, the key of the run that wrote it, its run id and the SHA-256 of its
``results.json``: a row whose key is unchanged and whose outputs are still those is skipped.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .. import __version__
from .._atomic import write_atomic
from ..beads.lots import resolve_lot
from ..errors import ConfigError
from ..flags import FLAGS_VERSION
from ..results import RunConfig
from ..safe_text import printable
from .worklist import read_worklist, tube_path

__all__ = ["MANIFEST_COLUMNS", "ManifestRow", "read_manifest", "run_key", "Ledger", "OUTPUT_FILES",
           "outputs_digest"]

MANIFEST_COLUMNS = ("run_dir", "out_dir", "worklist", "calibration", "lot", "lot_file", "gates")
_REQUIRED = ("run_dir", "out_dir")
OUTPUT_FILES = ("results.csv", "results.json", "calibration.json", "report.html")
LEDGER_FORMAT = 1
_FCS_SUFFIXES = (".fcs", ".lmd")


@dataclass(frozen=True)
class ManifestRow:
    """One run of the manifest, its paths resolved from the manifest's folder."""

    line: int
    run_dir: str
    out_dir: str
    worklist: str | None = None
    calibration: str | None = None
    lot: str | None = None
    lot_file: str | None = None
    gates: str | None = None

    @property
    def name(self) -> str:
        """How the summary names the run: its line and folder."""
        return f"line {self.line} ({printable(self.run_dir)})"


def read_manifest(path: str | os.PathLike) -> list[ManifestRow]:
    """The manifest's rows; a manifest that cannot be used raises ConfigError (the batch does not start)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{printable(p)}: cannot read the manifest ({why})") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    unknown = [h for h in header if h not in MANIFEST_COLUMNS]
    if unknown:
        raise ConfigError(f"{printable(p)}: unknown manifest column {printable(unknown[0])!r} "
                          f"(columns: {', '.join(MANIFEST_COLUMNS)})")
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise ConfigError(f"{printable(p)}: the manifest has no {missing[0]!r} column (a header row with "
                          f"run_dir and out_dir is required)")
    base = p.resolve().parent
    rows: list[ManifestRow] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(reader, start=2):
        if None in raw:
            raise ConfigError(f"{printable(p)}, line {n}: more cells than columns")
        cells = {k.strip(): (v or "").strip() for k, v in raw.items()}
        if not any(cells.values()):
            continue
        for c in _REQUIRED:
            if not cells.get(c):
                raise ConfigError(f"{printable(p)}, line {n}: {c} is empty")
        at = {k: str(base / os.path.expanduser(v)) if v else None for k, v in cells.items() if k != "lot"}
        row = ManifestRow(line=n, run_dir=at["run_dir"] or "", out_dir=at["out_dir"] or "",
                          worklist=at.get("worklist"), calibration=at.get("calibration"),
                          lot=cells.get("lot") or None, lot_file=at.get("lot_file"), gates=at.get("gates"))
        out = os.path.normpath(row.out_dir)
        if out in seen:
            raise ConfigError(f"{printable(p)}, line {n}: out_dir {printable(row.out_dir)} is also line "
                              f"{seen[out]}'s; each run needs its own output folder")
        seen[out] = n
        rows.append(row)
    if not rows:
        raise ConfigError(f"{printable(p)}: the manifest lists no run folders")
    return rows


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def run_key(row: ManifestRow, *, allow_outside: bool = False) -> str:
    """The SHA-256 of the run's inputs and settings (see the module docstring).

    Raises ConfigError (or another HladrError, OSError) for a run that could not start: the same
    checks of the worklist and the lot as ``hladr run``'s, made before anything is hashed.
    """
    rd = Path(row.run_dir)
    if not rd.is_dir():
        raise ConfigError(f"{printable(rd)}: run folder not found")
    files: dict[str, Path] = {}
    for f in sorted(rd.iterdir()):
        if f.is_file() and f.suffix.lower() in _FCS_SUFFIXES:
            files[f"run_dir/{f.name}"] = f
    wl = Path(row.worklist) if row.worklist else rd / "worklist.csv"
    worklist_lot = None
    if row.worklist or wl.is_file():
        files["worklist"] = wl
        rows = read_worklist(wl, run_dir=rd, allow_outside=allow_outside)
        for r in rows:
            for column in ("file", "gates"):
                if r.get(column):
                    named = tube_path(rd, r[column], allow_outside=allow_outside, column=column)
                    files[f"worklist/{column}/{r[column]}"] = named
        beads = [r for r in rows if r["role"] == "beads"]
        worklist_lot = (beads[0].get("lot") or None) if beads else None
    for what in ("calibration", "lot_file", "gates"):
        value = getattr(row, what)
        if value:
            files[what] = Path(value)
    lot = None
    if not row.calibration:  # the lot the run would use (its own lookup, the only registered lot, ...)
        lot, _ = resolve_lot(lot_id=row.lot, lot_file=row.lot_file, worklist_lot=worklist_lot)
    config = RunConfig(gates_file=str(Path(row.gates).resolve()) if row.gates else None)
    rules = resources.files("hladr").joinpath(f"data/rules/{config.ruleset}.toml").read_bytes()
    record = {
        "files": {label: _sha_of(label, path) for label, path in sorted(files.items())},
        "lot": lot.to_dict() if lot is not None else None,
        "config_sha256": config.digest(),
        "rules_sha256": hashlib.sha256(rules).hexdigest(),
        "flags_version": FLAGS_VERSION,
        "hladr": __version__,
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def _sha_of(label: str, path: Path) -> str:
    """The file's SHA-256; a tube the run cannot read is part of the key as such (the run fails that tube alone)."""
    try:
        return file_sha256(path)
    except OSError as exc:
        if label.startswith(("run_dir/", "worklist/file/")):
            return f"unreadable: {exc.strerror or exc}"
        raise ConfigError(f"{printable(path)}: cannot read the {label.split('/')[0]} ({exc.strerror or exc})") from None


def outputs_digest(out_dir: str | os.PathLike) -> tuple[str, dict] | None:
    """(SHA-256 of results.json, its parsed content) when every output file is there, else None."""
    out = Path(out_dir)
    if not all((out / name).is_file() for name in OUTPUT_FILES):
        return None
    try:
        data = (out / "results.json").read_bytes()
        return hashlib.sha256(data).hexdigest(), json.loads(data)
    except (OSError, ValueError):
        return None


class Ledger:
    """``<manifest>.done.json``: per output folder, the key, run id and results.json digest of its done run."""

    def __init__(self, manifest: str | os.PathLike) -> None:
        m = Path(manifest).resolve()
        self.path = m.with_name(m.stem + ".done.json")
        self.entries: dict[str, dict] = {}
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"{printable(self.path)}: the batch ledger cannot be read ({exc}); "
                                  "move it away to run every row again") from None
            if not isinstance(data, dict) or data.get("format") != LEDGER_FORMAT \
                    or not isinstance(data.get("runs"), dict):
                raise ConfigError(f"{printable(self.path)}: not an hladr batch ledger; move it away to run "
                                  "every row again")
            self.entries = data["runs"]

    @staticmethod
    def _slot(row: ManifestRow) -> str:
        return os.path.normpath(os.path.abspath(row.out_dir))

    def is_done(self, row: ManifestRow, key: str) -> dict | None:
        """The run's results.json content when the row is done with this key and its outputs are untouched."""
        entry = self.entries.get(self._slot(row))
        if not entry or entry.get("key") != key:
            return None
        found = outputs_digest(row.out_dir)
        if found is None or found[0] != entry.get("results_sha256"):
            return None
        return found[1]

    def record(self, row: ManifestRow, key: str, *, status: int) -> dict | None:
        """Keep the row as done (atomically, at once); its results.json content, or None without complete outputs."""
        found = outputs_digest(row.out_dir)
        if found is None:
            return None
        self.entries[self._slot(row)] = {"key": key, "run_id": found[1].get("run_id"),
                                         "results_sha256": found[0], "run_dir": row.run_dir, "exit": status}
        write_atomic(self.path, json.dumps({"format": LEDGER_FORMAT, "runs": self.entries}, indent=1,
                                           sort_keys=True) + "\n")
        return found[1]
