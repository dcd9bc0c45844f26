"""A run killed (SIGKILL-like: no clean-up code runs) at each step of switching its output set in.

The child process stops with ``os._exit`` at one checkpoint of ``OutputFolder.write``.
At that instant OUT_DIR must hold the complete old set or the complete new set (with
the fallback of two renames, absent for the instant between them); the next run into
OUT_DIR must tidy the staging folder the kill left, and no complete set may be lost.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from _helpers import SRC

from hladr.batch.output_set import MARKER, OUTPUT_NAMES, prepare_output

CHILD = textwrap.dedent("""
    import os, sys
    import hladr.batch.output_set as o

    out, stop_at, mode = sys.argv[1:4]

    def checkpoint(step):
        if step == stop_at:
            os._exit(0)  # like kill -9: no finally, no clean-up

    o._checkpoint = checkpoint
    if mode == "two-renames":
        def no_exchange(a, b):
            raise NotImplementedError
        o._exchange = no_exchange

    def fill(folder):
        for name in o.OUTPUT_NAMES:
            (folder / name).write_text("new " + name)

    o.prepare_output(out).write(fill)
    os._exit(3)  # the checkpoint was never reached
""")


def _set_of(folder) -> str | None:
    """'old' or 'new' when ``folder`` holds that complete set; None when absent; fails when mixed."""
    if not folder.exists():
        return None
    tags = {(folder / n).read_text().split()[0] for n in OUTPUT_NAMES if (folder / n).exists()}
    assert len(tags) == 1 and all((folder / n).exists() for n in OUTPUT_NAMES), f"{folder}: mixed or partial"
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")], f"{folder}: temporaries"
    return tags.pop()


def _old_set(out, *, marker: bool) -> None:
    out.mkdir()
    for name in OUTPUT_NAMES:
        (out / name).write_text("old " + name)
    if marker:  # written by this hladr; without it, by an earlier one (recognised by its file names)
        (out / MARKER).write_text('{"state": "complete", "pid": 1, "host": "elsewhere"}\n')


@pytest.mark.parametrize("mode, stop_at, at_kill, after", [
    ("exchange", "staged", "old", {"out": "old"}),
    ("exchange", "filled", "old", {"out": "old"}),
    ("exchange", "complete", "old", {"out": "old", "recovered": "new"}),
    ("exchange", "exchanged", "new", {"out": "new", "recovered": "old"}),
    ("two-renames", "complete", "old", {"out": "old", "recovered": "new"}),
    ("two-renames", "moved_aside", None, {"out": "new", "previous": "old"}),
])
@pytest.mark.parametrize("marker", [True, False])
def test_kill_at_each_step(tmp_path, mode, stop_at, at_kill, after, marker):
    out = tmp_path / "out"
    _old_set(out, marker=marker)
    env = dict(os.environ, PYTHONPATH=str(SRC))
    r = subprocess.run([sys.executable, "-c", CHILD, str(out), stop_at, mode], env=env, capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    assert _set_of(out) == at_kill  # what a reader saw when the writer died
    assert any(p.name.startswith("out.tmp-") for p in tmp_path.iterdir())

    notes = prepare_output(out).notes  # the next run tidies before its work
    names = sorted(p.name for p in tmp_path.iterdir())
    assert not [n for n in names if ".tmp-" in n], names
    found = {"out": _set_of(out)}
    for p in tmp_path.iterdir():
        for kind in ("previous", "recovered"):
            if p.name.startswith(f"out.{kind}-"):
                found[kind] = _set_of(p)
    assert found == after, (found, names)
    assert notes  # the tidying is said (and kept in the next results.json)
