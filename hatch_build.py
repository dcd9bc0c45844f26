"""Wheel build hook: ship ``hladr/_files.sha256``, the SHA-256 of every file the wheel installs.

``hladr validate`` (installation qualification) hashes the installed files against this list, so a
file changed, lost or added after installation is named. Only a wheel gets the list: an editable
install (``pip install -e``) runs the working copy, whose files are not fixed, and ``hladr validate``
says so. The list covers the files of ``src/hladr`` (Python caches excluded, as hatch excludes them
through .gitignore) and the bead lots force-included as ``hladr/calibration``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

LIST_NAME = "_files.sha256"
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = (".pyc", ".pyo", ".nbi", ".nbc")


def _files(root: Path, prefix: str) -> dict[str, Path]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if name.endswith(_SKIP_SUFFIXES) or name == LIST_NAME:
                continue
            path = Path(dirpath) / name
            out[f"{prefix}/{path.relative_to(root).as_posix()}"] = path
    return out


class CustomBuildHook(BuildHookInterface):
    """Writes the list into the wheel (target ``wheel``, version ``standard`` only)."""

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel" or version != "standard":
            return
        root = Path(self.root)
        files = {**_files(root / "src" / "hladr", "hladr"), **_files(root / "calibration", "hladr/calibration")}
        lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {rel}\n" for rel, p in sorted(files.items())]
        fd, tmp = tempfile.mkstemp(prefix="hladr-files-", suffix=".sha256")
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.writelines(lines)
        self._tmp = tmp
        build_data["force_include"][tmp] = f"hladr/{LIST_NAME}"

    def finalize(self, version: str, build_data: dict, artifact_path: str) -> None:
        tmp = getattr(self, "_tmp", None)
        if tmp:
            Path(tmp).unlink(missing_ok=True)
