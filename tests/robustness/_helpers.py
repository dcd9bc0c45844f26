"""Helpers of the robustness tests (imported by the test modules of this folder)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
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



RUN_ID = re.compile(rb"\d{8}T\d{6}Z-[0-9a-f]{12}")


def without_run_id(path: Path) -> bytes:
    """An output file's bytes with its run id taken out, to compare two runs' outputs (each run has its own id).

    results.csv: the ``run_id`` column removed; a JSON file: its top-level ``run_id``
    removed (and the document dumped again); any other file: every run id's text removed.
    """
    data = path.read_bytes()
    if path.suffix == ".csv":
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
        if rows and "run_id" in rows[0]:
            k = rows[0].index("run_id")
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerows([c for j, c in enumerate(r) if j != k] for r in rows)
            return buf.getvalue().encode("utf-8")
        return data
    if path.suffix == ".json":
        doc = json.loads(data)
        if isinstance(doc, dict):
            doc.pop("run_id", None)
        return json.dumps(doc, indent=2).encode()
    return RUN_ID.sub(b"", data)
