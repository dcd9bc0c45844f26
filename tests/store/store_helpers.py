"""Helpers of the store's tests (imported by the test modules of this folder)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def hladr_process(args: list[str], *, code: str | None = None, **kw) -> subprocess.Popen:
    """``python -m hladr ARGS`` (or ``python -c CODE ARGS``) in a child process, this tree's hladr first."""
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "hladr", *args]
    return subprocess.Popen(cmd, env=env, **kw)
