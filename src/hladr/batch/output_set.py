"""The output folder of ``hladr run``: checked before the work, written aside, switched in whole.

``prepare_output(OUT_DIR) -> OutputFolder`` runs before the analysis: it refuses
what cannot or must not be written (a file, a path under a file, an unwritable
folder, a folder of files that are not hladr outputs) and tidies what killed runs
left beside OUT_DIR. ``OutputFolder.write(fill) -> Path | None`` then writes the
set and returns where the previous set went (``None`` when there was none).

Why a folder, not file by file
    Each file replaced atomically is not enough: a failure or a kill between two
    replacements leaves e.g. a new ``results.csv`` beside the previous run's
    ``results.json``, which lab automation would import as one run. So the set is
    written into a staging folder beside OUT_DIR (``OUT_DIR.tmp-XXXXXXXX``, same
    file system) and switched in with one rename.

What a reader of OUT_DIR sees
    - OUT_DIR absent or empty: one ``rename`` makes the complete set appear.
    - OUT_DIR holding an earlier run: on Linux the two folders are exchanged in one
      step (``renameat2(RENAME_EXCHANGE)``), so OUT_DIR holds the complete old set,
      then the complete new set, never anything else; the old set, now at the
      staging name, is renamed to ``OUT_DIR.previous-<UTC time>`` (nothing is
      overwritten). Elsewhere (or on a file system without the exchange) OUT_DIR is
      renamed aside first, then the new set renamed in: for that instant OUT_DIR is
      absent, never mixed.

The marker file
    Every folder hladr writes holds ``.hladr-output`` (JSON: ``state`` "writing" or
    "complete", ``pid``, ``host``, times). It tells an hladr output folder from a
    folder of other files, and a killed run's staging folder from a live one.
    Folders written by an earlier hladr (no marker) are recognised by their file names.

After a kill
    A staging folder whose writer is dead is dealt with by the next run into the same
    OUT_DIR: an unfinished one is removed; a complete one (a set that was written but
    not switched in, or an old set exchanged out but not yet renamed) is never
    removed: it becomes OUT_DIR when OUT_DIR is absent, else ``OUT_DIR.recovered-<time>``.
"""

from __future__ import annotations

import ctypes
import datetime as _dt
import errno
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from .. import __version__
from .._atomic import write_atomic
from ..errors import ConfigError, HladrError

__all__ = ["MARKER", "OUTPUT_NAMES", "OutputFolder", "prepare_output", "check_output_file", "writable_path"]

log = logging.getLogger(__name__)

MARKER = ".hladr-output"
OUTPUT_NAMES = ("results.csv", "results.json", "calibration.json", "figures.json", "report.html", "report.pdf")
_STAGING, _PREVIOUS, _RECOVERED = ".tmp-", ".previous-", ".recovered-"


def _checkpoint(step: str) -> None:
    """Between two steps of the switch (a no-op; tests stop the process here to check each state)."""


# ---------------------------------------------------------------------------- checks before the work
def _nearest_existing(path: Path) -> Path:
    p = path
    while not (p.exists() or p.is_symlink()) and p.parent != p:
        p = p.parent
    return p


def writable_path(path: str | os.PathLike, *, what: str, folder: bool = False) -> Path:
    """Check that ``path`` can be created or replaced, without creating anything; return it absolute.

    The nearest existing ancestor must be a writable folder (a path under a regular
    file fails for root too). ``folder``: the path itself is a folder (else a file:
    an existing folder there is an error).

    Raises
    ------
    ConfigError
        One line naming ``what`` (e.g. ``"--out"``) and the path.
    """
    p = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    if p.exists() and not folder and p.is_dir():
        raise ConfigError(f"{what} {path}: is a folder; give a file name")
    if p.exists() and folder and not p.is_dir():
        raise ConfigError(f"{what} {path}: is a file, not a folder; give a folder name")
    base = _nearest_existing(p.parent)
    if not base.is_dir():
        raise ConfigError(f"{what} {path}: cannot be created: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path}: cannot be created: no permission to write in {base}")
    return p


def check_output_file(path: str | os.PathLike, *, what: str = "--out") -> Path:
    """:func:`writable_path` for one output file (``calibrate --out``, ``calibration history --out``)."""
    return writable_path(path, what=what)


def _read_marker(folder: Path) -> dict | None:
    try:
        doc = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _is_leftover(name: str) -> bool:
    """A temporary file of ``write_atomic`` for an output or the marker (``.results.csv.abc123.tmp``)."""
    return name.endswith(".tmp") and any(name.startswith(f".{n}.") for n in (*OUTPUT_NAMES, MARKER))


def _is_hladr_output(folder: Path) -> bool:
    """A folder hladr wrote: it holds the marker, or (earlier hladr) only output files and their temporaries."""
    if (folder / MARKER).is_file():
        return True
    names = [p.name for p in folder.iterdir()]
    return bool(names) and all(n in OUTPUT_NAMES or _is_leftover(n) for n in names) and "results.json" in names


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's), or we cannot tell: assume alive
    return True


def _utc_stamp() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _free_name(parent: Path, stem: str) -> Path:
    p, k = parent / stem, 2
    while p.exists() or p.is_symlink():
        p, k = parent / f"{stem}-{k}", k + 1
    return p


def _fsync_dir(folder: Path) -> None:
    if sys.platform.startswith("win"):
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- the switch
def _exchange(a: str | os.PathLike, b: str | os.PathLike) -> None:
    """Swap two folders in one step (Linux ``renameat2(RENAME_EXCHANGE)``); ``NotImplementedError`` elsewhere."""
    if not sys.platform.startswith("linux"):
        raise NotImplementedError("no atomic exchange on this platform")
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        raise NotImplementedError("renameat2 not in this C library") from None
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) != 0:
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise NotImplementedError(os.strerror(err))
        raise OSError(err, os.strerror(err), os.fspath(b))


class OutputFolder:
    """OUT_DIR of a run, checked; :meth:`write` puts a complete set there in one switch.

    ``notes`` says what :func:`prepare_output` did with what killed runs left.
    """

    def __init__(self, path: Path, given: str, notes: list[str]) -> None:
        self.path = path
        self.given = given
        self.notes = notes

    def write(self, fill: Callable[[Path], None]) -> Path | None:
        """Write the set with ``fill(folder)`` into a staging folder, then switch it in as OUT_DIR.

        Returns where the previous set went (``None``: there was none). On a failure
        before the switch, OUT_DIR is as it was, the staging folder is removed and
        ``HladrError`` says so; a failure after it leaves the new set in place and
        the old one at a name given in the returned path's place (a note is logged).
        """
        parent, name = self.path.parent, self.path.name
        parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f"{name}{_STAGING}", dir=parent))
        switched = False
        try:
            os.chmod(stage, 0o777 & ~_umask())  # mkdtemp makes 0700; outputs are shared lab files
            _write_marker(stage, "writing")
            _checkpoint("staged")
            fill(stage)
            _checkpoint("filled")
            for p in stage.iterdir():
                if p.is_file():
                    _fsync_file(p)
            _write_marker(stage, "complete")
            _fsync_dir(stage)
            _checkpoint("complete")
            previous, switched = self._switch(stage)
        except BaseException as exc:
            if not switched:
                shutil.rmtree(stage, ignore_errors=True)
            if isinstance(exc, OSError):
                raise HladrError(f"{self.given}: the outputs could not be written ({_oserror_text(exc)}); "
                                 f"{'the previous results are unchanged' if not switched else ''}".rstrip("; ")
                                 ) from None
            raise
        _fsync_dir(parent)
        return previous

    def _switch(self, stage: Path) -> tuple[Path | None, bool]:
        """Put ``stage`` at OUT_DIR; return (where the old set went, switched)."""
        out = self.path
        if out.is_dir() and not any(out.iterdir()):
            os.rmdir(out)
        if not (out.exists() or out.is_symlink()):
            os.rename(stage, out)
            _checkpoint("switched")
            return None, True
        if not _is_hladr_output(out):  # changed since the check at the start
            raise ConfigError(f"{self.given}: now holds files that are not hladr outputs; the outputs are not written")
        previous = _free_name(out.parent, f"{out.name}{_PREVIOUS}{_utc_stamp()}")
        try:
            _exchange(stage, out)
        except NotImplementedError:
            os.rename(out, previous)
            _checkpoint("moved_aside")
            try:
                os.rename(stage, out)
            except BaseException:
                os.rename(previous, out)  # put the old set back
                raise
            _checkpoint("switched")
            return previous, True
        _checkpoint("exchanged")
        try:
            os.rename(stage, previous)  # stage now holds the old set
        except OSError as exc:
            log.warning("%s: the previous results stay in %s (could not rename them: %s)", out, stage, exc)
            return stage, True
        _checkpoint("switched")
        return previous, True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _oserror_text(exc: OSError) -> str:
    return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc.strerror or exc)


def _fsync_file(p: Path) -> None:
    with open(p, "rb") as fh:
        os.fsync(fh.fileno())


def _write_marker(folder: Path, state: str) -> None:
    doc = {"hladr_version": __version__, "state": state, "pid": os.getpid(), "host": socket.gethostname(),
           "utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
    write_atomic(folder / MARKER, json.dumps(doc) + "\n")


# ---------------------------------------------------------------------------- before the work
def _tidy(out: Path) -> list[str]:
    """Deal with staging folders of killed runs beside ``out``; one note per folder touched."""
    notes: list[str] = []
    prefix = f"{out.name}{_STAGING}"
    try:
        siblings = sorted(out.parent.iterdir())
    except OSError:
        return notes
    for d in siblings:
        if not d.name.startswith(prefix) or d.is_symlink() or not d.is_dir():
            continue
        marker = _read_marker(d)
        names = [p.name for p in d.iterdir()]
        complete = (marker or {}).get("state") == "complete" or (marker is None and _is_hladr_output(d))
        if marker is not None:
            here = marker.get("host") == socket.gethostname()
            if here and _pid_alive(marker.get("pid")) and marker.get("pid") != os.getpid():
                continue  # a live run is writing or switching it
            if not here and not complete:
                continue  # another machine's run: not ours to judge
        elif not complete and any(not _is_leftover(n) for n in names):
            continue  # not recognisably hladr's
        if not complete:
            shutil.rmtree(d, ignore_errors=True)
            notes.append(f"removed {d.name}: unfinished outputs of an interrupted hladr run")
            continue
        if not (out.exists() or out.is_symlink()):
            os.rename(d, out)
            notes.append(f"an interrupted hladr run left a complete output set in {d.name}: it is now {out}")
            continue
        kept = _free_name(out.parent, f"{out.name}{_RECOVERED}{_utc_stamp()}")
        os.rename(d, kept)
        notes.append(f"an interrupted hladr run left a complete output set in {d.name}: kept as {kept}")
    return notes


def prepare_output(out_dir: str | os.PathLike) -> OutputFolder:
    """Check OUT_DIR before any work and tidy what killed runs left beside it.

    Raises
    ------
    ConfigError
        OUT_DIR is a file, lies under a file or in a folder that cannot be written,
        is the file-system root, or is a folder of files that are not hladr outputs.
    """
    given = os.fspath(out_dir)
    p = Path(os.path.abspath(os.path.expanduser(given)))
    if p.is_symlink() and p.is_dir():
        p = Path(os.path.realpath(p))  # the outputs go where the link points, the link stays
    if p.parent == p:
        raise ConfigError(f"--out {given}: the file-system root cannot be an output folder")
    writable_path(p, what="--out", folder=True)
    if p.is_dir() and any(p.iterdir()) and not _is_hladr_output(p):
        shown = ", ".join(sorted(x.name for x in p.iterdir())[:3])
        raise ConfigError(f"--out {given}: this folder holds files that are not hladr outputs ({shown}, ...); "
                          "give a new or empty folder, or the folder of an earlier hladr run")
    try:
        notes = _tidy(p)
    except OSError as exc:
        raise ConfigError(f"--out {given}: cannot tidy the folders of an interrupted run ({_oserror_text(exc)})"
                          ) from None
    return OutputFolder(p, given, notes)
