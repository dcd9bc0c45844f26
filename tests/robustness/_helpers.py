"""Helpers of the robustness tests (imported by the test modules of this folder)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def clean_error(err: str, *words: str) -> str:
    """Assert ``err`` is one line about the problem (plus argparse's help hint), no traceback; return it."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert lines, "nothing on stderr"
    extra = [line for line in lines[1:] if line != "try 'hladr --help'"]
    assert not extra, f"more than one line on stderr: {lines}"
    for w in words:
        assert w in lines[0], f"{w!r} not in {lines[0]!r}"
    return lines[0]


def hladr_process(args: list[str], **kw) -> subprocess.Popen:
    """``python -m hladr ARGS`` in a child process (stdout and stderr piped unless given)."""
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.update(kw.pop("env", {}))
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen([sys.executable, "-m", "hladr", *args], env=env, **kw)
