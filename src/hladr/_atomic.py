"""Atomic file writes for the shell: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: str | os.PathLike, data: str | bytes, *, mode: int | None = None,
                 overwrite: bool = True) -> None:
    """Write ``data`` (text as UTF-8, newlines as given) to ``path`` via a temporary file in the same folder.

    The folder is created if needed. ``mode``: the file's permissions; default
    ``0o666`` less the umask (``mkstemp`` creates 0600; outputs are shared lab files).
    ``overwrite=False``: never replace an existing ``path``, even one created by
    another process while this one wrote (the complete file is hard-linked into
    place, which fails if the name exists): ``FileExistsError``. On a file system
    without hard links the check is made just before the rename instead.
    On any error the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        if overwrite:
            os.replace(tmp, path)
        else:
            _place_new(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _place_new(tmp: str, path: Path) -> None:
    """Give the complete file ``tmp`` the name ``path``, which must not exist (no clobbering)."""
    try:
        os.link(tmp, path)  # atomic, and fails with EEXIST when the name is taken
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "file exists", str(path)) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if path.exists() or path.is_symlink():  # no hard links here: check, then rename
            raise FileExistsError(errno.EEXIST, "file exists", str(path)) from None
        os.replace(tmp, path)
        return
    Path(tmp).unlink()
