"""Helpers of the robustness tests: run the CLI in-process, read outputs strictly."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

from hladr.cli import main

WORKLIST_HEADER = "file,role,sample_id,subject_id,visit,ferritin,ferritin_unit"
CLEAN_WORKLIST = [
    "beads.fcs,beads,BEADS-96597,,,,",
    "P001_HLADR.fcs,sample,P001,ISP-0170,D7,57.8,ng/mL",
    "P002_HLADR.fcs,sample,P002,ISP-0247,D1,273,ng/mL",
    "P003_HLADR.fcs,sample,P003,ISP-0147,D7,17474,ng/mL",
]


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``hladr.cli.main(argv)`` with stdout and stderr captured: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def assert_one_clean_line(err: str, *needles: str) -> None:
    """A refusal: exactly one line on stderr, no traceback, naming what is wrong."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "\x1b" not in err, err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def _no_constant(name: str) -> None:
    raise AssertionError(f"{name} in JSON output (JSON.parse would fail)")


def strict_json(path: Path) -> object:
    """Parse a JSON file as a strict parser (JavaScript's JSON.parse) would: no NaN, no Infinity."""
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)


def result_rows(out: Path) -> dict[str, dict[str, str]]:
    """results.csv rows by file, without the ``run_id`` column (every run has its own: rows of two runs compare)."""
    with open(out / "results.csv", newline="", encoding="utf-8") as fh:
        return {r["file"]: {k: v for k, v in r.items() if k != "run_id"} for r in csv.DictReader(fh)}


def write_worklist(path: Path, lines: list[str], header: str = WORKLIST_HEADER) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def rewrite_tube(src: Path, dst: Path, *, drop: tuple[str, ...] = (), keywords: dict[str, str] | None = None) -> Path:
    """Write ``src`` again without the channels ``drop`` (and Time), with TEXT keywords replaced.

    The events, channel names, $PnV and the other keywords stay as read, so the tube
    still matches its bead tube (instrument, PE voltage, spillover).
    """
    import re

    from hladr.fcs.read import read_events
    from hladr.fcs.write import write_fcs

    ev = read_events(src)
    keep = [i for i, n in enumerate(ev.pnn) if n not in drop and n != "Time"]
    structural = {"beginanalysis", "endanalysis", "beginstext", "endstext", "begindata", "enddata", "byteord",
                  "datatype", "mode", "nextdata", "par", "tot", "timestep"}
    kw = {f"${k.upper()}": v for k, v in ev.keywords.items()
          if k not in structural and not re.fullmatch(r"p\d+[a-z]+", k)}
    for new, old in enumerate(keep, start=1):
        if f"p{old + 1}v" in ev.keywords:
            kw[f"$P{new}V"] = ev.keywords[f"p{old + 1}v"]
    kw.update(keywords or {})
    write_fcs(dst, ev.data[:, keep], [ev.pnn[i] for i in keep], pns=[ev.pns[i] for i in keep],
              pnr=[ev.pnr[i] for i in keep], keywords=kw)
    return dst
